"""Test doubles for the ministry connectors: a recording context and deliveries."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from connectors._handlers import Delivery
from connectors.ministries import AGENCIES
from exchange import SubsystemId
from schemas import default_registry


@dataclass
class Call:
    """One thing a handler did through its context."""

    kind: str  # "request", "send" or "publish"
    message_type: str
    to: str | None
    payload: Any


@dataclass
class FakeContext:
    """A :class:`~connectors.Context` for one agency; records every call.

    ``request`` answers as the target agency would, by calling its handler directly; both
    the request and the answer must validate against their schemas, as on the bus.
    """

    me_text: str
    calls: list[Call] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def me(self) -> SubsystemId:
        return SubsystemId.parse(self.me_text)

    def request(self, message_type, to, payload, *, timeout=10.0):
        del timeout
        self.calls.append(Call("request", message_type, str(to), payload))
        assert_valid(message_type, payload)
        spec = next(s for s in AGENCIES.values() if s.subsystem == str(to))
        answer = spec.handlers[message_type](delivery(message_type, payload, self.me_text), self)
        assert_valid(spec.provides[message_type], answer)
        return answer

    def send(self, message_type, to, payload):
        self.calls.append(Call("send", message_type, str(to), payload))
        return f"sent-{next(self._ids)}"

    def publish(self, message_type, payload):
        self.calls.append(Call("publish", message_type, None, payload))
        return f"published-{next(self._ids)}"

    def of_kind(self, kind: str) -> list[Call]:
        return [call for call in self.calls if call.kind == kind]


def assert_valid(message_type: str, payload: Any) -> None:
    """Fail with the schema's own report when ``payload`` is not a valid ``message_type``."""
    report = default_registry().validate(message_type, None, payload)
    assert report.ok, (message_type, [issue.as_dict() for issue in report.errors])


_MESSAGE_IDS = itertools.count(1)


def delivery(message_type: str, payload: Any, sender: str) -> Delivery:
    """A delivery of ``payload`` as the receive pipeline would hand it to a handler."""
    entry = default_registry().get(message_type)
    return Delivery(
        message_id=f"msg-{next(_MESSAGE_IDS)}",
        message_type=message_type,
        kind=entry.kind.value,
        sender=SubsystemId.parse(sender),
        payload=payload,
    )
