"""A small bus for the core's tests: civil registry, tax, customs, treasury."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from exchange import (
    Inspector,
    MemorySeenStore,
    PayloadIssue,
    build_envelope,
)
from exchange.sandbox import Party, Sandbox

LOOKUP = "civil.person-lookup.request"
LOOKUP_REPLY = "civil.person-lookup.response"
LODGED = "customs.declaration-lodged"
ALERT = "treasury.suspicious-transaction-alert"


def simple_validator(message_type: str, version: str, payload: Any) -> list[PayloadIssue]:
    """Stands in for the schema registry: objects with a string 'cin' for lookups."""
    if message_type == LOOKUP and not isinstance(payload.get("cin"), str):
        return [PayloadIssue("$.cin", "'cin' is a required string", "required")]
    return []


@dataclass
class Bus:
    sandbox: Sandbox
    civil: Party
    tax: Party
    customs: Party
    treasury: Party

    def inspector(self, party: Party, **kwargs: Any) -> Inspector:
        return Inspector(
            receiver=party.subsystem,
            directory=self.sandbox.directory(),
            decryption_keys=party.keys.decryption_keys(),
            **({"validator": simple_validator, "seen": MemorySeenStore()} | kwargs),
        )

    def build(
        self,
        sender: Party,
        message_type: str,
        kind: str,
        payload: bytes,
        classification: str,
        *,
        to: Party | None = None,
        **kwargs: Any,
    ) -> bytes:
        """A signed message from ``sender`` (encrypted to ``to`` when classified so)."""
        return build_envelope(
            sender.signer,
            message_type=message_type,
            schema_version="1.0.0",
            kind=kind,
            payload=payload,
            classification=classification,
            recipient=None if to is None else self.sandbox.recipient(to),
            **kwargs,
        )

    def lookup(self, payload: Any = None, **kwargs: Any) -> bytes:
        body = json.dumps(payload if payload is not None else {"cin": "AB123456"}).encode()
        return self.build(self.tax, LOOKUP, "request", body, "INTERNAL", to=self.civil, **kwargs)

    def alert(self, **kwargs: Any) -> bytes:
        body = b'{"account": "MA64011519000001205000534921", "score": 97}'
        return self.build(
            self.treasury, ALERT, "message", body, "RESTRICTED", to=self.tax, **kwargs
        )


@pytest.fixture
def bus() -> Bus:
    sandbox = Sandbox()
    civil = sandbox.add("MA/GOV/MOI/CIVIL")
    tax = sandbox.add("MA/GOV/MEF/TAX")
    customs = sandbox.add("MA/GOV/MEF/CUSTOMS")
    treasury = sandbox.add("MA/GOV/MEF/TREASURY")
    sandbox.classify(LOOKUP, "INTERNAL")
    sandbox.classify(LOOKUP_REPLY, "INTERNAL")
    sandbox.classify(LODGED, "INTERNAL")
    sandbox.classify(ALERT, "RESTRICTED")
    sandbox.provide(civil, LOOKUP, LOOKUP_REPLY)
    sandbox.grant(tax, LOOKUP, civil)
    sandbox.publish(customs, LODGED)
    sandbox.subscribe(tax, LODGED)
    sandbox.grant(treasury, ALERT, tax)
    return Bus(sandbox, civil, tax, customs, treasury)


ONE_HOUR = timedelta(hours=1)
