"""Grants bound to a purpose, a legal basis and an expiry: what the directory carries, what a
request states, and the receive pipeline's purpose-mismatch and grant-expired refusals."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import orjson
import pytest

from exchange import (
    UNSPECIFIED_PURPOSE,
    Forbidden,
    GrantExpired,
    LegalBasis,
    Malformed,
    PurposeMismatch,
    build_envelope,
    canonical,
    load_directory,
    parse_envelope,
    utcnow,
)
from exchange.sandbox import Sandbox
from tests.support.bus import LODGED, LOOKUP, LOOKUP_REPLY, Bus

BASIS = LegalBasis("Loi 09-08, article 4: contrôle fiscal", "BO 5714 du 05/03/2009")


def _bus(**grant) -> Bus:
    sandbox = Sandbox()
    civil = sandbox.add("MA/GOV/MOI/CIVIL")
    tax = sandbox.add("MA/GOV/MEF/TAX")
    customs = sandbox.add("MA/GOV/MEF/CUSTOMS")
    treasury = sandbox.add("MA/GOV/MEF/TREASURY")
    for message_type in (LOOKUP, LOOKUP_REPLY, LODGED):
        sandbox.classify(message_type, "INTERNAL")
    sandbox.provide(civil, LOOKUP, LOOKUP_REPLY)
    sandbox.grant(tax, LOOKUP, civil, **grant)
    sandbox.publish(customs, LODGED)
    return Bus(sandbox, civil, tax, customs, treasury)


def _lookup(bus: Bus, purpose: str | None) -> bytes:
    return bus.lookup(purpose=purpose)


def test_the_directory_carries_purpose_legal_basis_and_expiry():
    """A grant's terms survive signing and loading, byte for byte."""
    ends = (utcnow() + timedelta(days=30)).replace(microsecond=0)
    bus = _bus(purpose="tax-compliance-check", legal_basis=BASIS, expires=ends)
    document = json.loads(bus.sandbox.sign())
    (grant,) = document["directory"]["grants"]
    assert grant["purpose"] == "tax-compliance-check"
    assert grant["legal_basis"] == {"text": BASIS.text, "reference": BASIS.reference}
    directory = bus.sandbox.directory()
    (loaded,) = directory.grants_for(bus.tax.subsystem, LOOKUP, bus.civil.subsystem)
    assert (loaded.purpose, loaded.legal_basis, loaded.expires) == (
        "tax-compliance-check",
        BASIS,
        ends,
    )


def test_a_request_for_the_granted_purpose_is_accepted():
    """The purpose is in the signed header and matches the grant."""
    bus = _bus(purpose="tax-compliance-check", legal_basis=BASIS)
    accepted = bus.inspector(bus.civil).inspect(_lookup(bus, "tax-compliance-check"))
    assert accepted.envelope.header.purpose == "tax-compliance-check"


@pytest.mark.parametrize("stated", ["marketing", None])
def test_another_purpose_or_none_is_purpose_mismatch(stated):
    """A grant for one purpose does not admit a request stating another, or none."""
    bus = _bus(purpose="tax-compliance-check", legal_basis=BASIS)
    with pytest.raises(PurposeMismatch, match="only for tax-compliance-check") as refused:
        bus.inspector(bus.civil).inspect(_lookup(bus, stated))
    assert refused.value.code == "purpose-mismatch"
    assert isinstance(refused.value, Forbidden)


def test_an_expired_grant_has_its_own_code():
    """Past its expiry the grant admits nothing: grant-expired, naming when it ended."""
    now = utcnow()
    bus = _bus(purpose="audit", expires=now + timedelta(minutes=2))
    message = _lookup(bus, "audit")
    assert bus.inspector(bus.civil).inspect(message)
    later = bus.inspector(bus.civil, clock=lambda: now + timedelta(minutes=3))
    with pytest.raises(GrantExpired, match="expired at") as refused:
        later.inspect(message)
    assert refused.value.code == "grant-expired"


def test_one_of_several_purposes_in_force_admits():
    """Two grants for two purposes: each admits its own; an expired one does not."""
    now = utcnow()
    bus = _bus(purpose="tax-compliance-check")
    bus.sandbox.grant(bus.tax, LOOKUP, bus.civil, purpose="old-inquiry", expires=now)
    inspector = bus.inspector(bus.civil)
    assert inspector.inspect(_lookup(bus, "tax-compliance-check"))
    with pytest.raises(PurposeMismatch):
        inspector.inspect(_lookup(bus, "old-inquiry"))


def test_an_old_grant_is_for_the_unspecified_purpose():
    """A grant without a purpose (a directory of before) admits requests that state none,
    the way senders of protocol 1.0 send them, and the unspecified purpose by name."""
    bus = _bus()
    inspector = bus.inspector(bus.civil)
    assert inspector.inspect(_lookup(bus, None))
    assert inspector.inspect(_lookup(bus, UNSPECIFIED_PURPOSE))
    with pytest.raises(PurposeMismatch):
        inspector.inspect(_lookup(bus, "anything-else"))


def test_a_directory_without_terms_loads_as_before():
    """A 1.0 directory (grants of sender, type, recipient only) still loads."""
    bus = _bus()
    document = json.loads(bus.sandbox.sign())
    for grant in document["directory"]["grants"]:
        for key in ("purpose", "legal_basis", "expires"):
            del grant[key]
    resigned = bus.sandbox.ca.key.sign(b"tabadul/1 directory\n" + canonical(document["directory"]))
    document["signature"] = base64.b64encode(resigned).decode()
    directory = load_directory(json.dumps(document).encode(), bus.sandbox.ca.certificate)
    (grant,) = directory.send_grants
    assert grant.purpose == UNSPECIFIED_PURPOSE
    assert grant.expires is None


@pytest.mark.parametrize("purpose", ["Tax", "a b", "x" * 65, "", "é"])
def test_a_purpose_that_is_not_a_code_is_malformed(purpose):
    """Purposes are short lower-case codes; anything else is refused when building or
    receiving the header."""
    bus = _bus()
    with pytest.raises(Malformed, match="purpose"):
        _lookup(bus, purpose)


def test_only_requests_and_one_way_messages_state_a_purpose():
    """An event, response or error header with a purpose is malformed."""
    bus = _bus()
    raw = orjson.loads(_lookup(bus, "audit"))
    event = build_envelope(
        bus.customs.signer,
        message_type=LODGED,
        schema_version="1.0.0",
        kind="event",
        payload=b"{}",
        classification="INTERNAL",
    )
    doc = orjson.loads(event)
    doc["header"]["purpose"] = "audit"
    with pytest.raises(Malformed, match="purpose"):
        parse_envelope(orjson.dumps(doc))
    assert raw["header"]["purpose"] == "audit"


def test_a_header_without_purpose_is_a_protocol_1_0_header():
    """A request without the member parses (purpose None) and has exactly the 1.0 members."""
    bus = _bus()
    envelope = parse_envelope(_lookup(bus, None))
    assert envelope.header.purpose is None
    assert "purpose" not in envelope.header.raw
