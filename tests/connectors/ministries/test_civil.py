"""The civil registry: person lookups and birth events."""

import pytest

from connectors.ministries import civil
from tests.connectors.ministries.fakes import assert_valid, delivery

TAX = "MA/GOV/MEF/TAX"


def _lookup(cin, ctx):
    payload = {"cin": cin, "purpose": "tax-assessment"}
    assert_valid(civil.LOOKUP_REQUEST, payload)
    return civil.answer_person_lookup(delivery(civil.LOOKUP_REQUEST, payload, TAX), ctx)


@pytest.mark.parametrize("cin", civil.person_registry().cins())
def test_every_registered_person_is_found_with_a_valid_record(cin, ctx_for):
    """A lookup of any person in the register answers found, with a schema-valid record."""
    answer = _lookup(cin, ctx_for("civil"))
    assert answer["found"] is True
    assert answer["person"]["cin"] == cin
    assert_valid(civil.LOOKUP_RESPONSE, answer)


def test_a_deceased_person_carries_the_death_date(ctx_for):
    """The register records deaths: vital status and date of death."""
    person = _lookup("C345678", ctx_for("civil"))["person"]
    assert person["vital_status"] == "deceased"
    assert person["death_date"] == "2025-09-02"


def test_an_unknown_cin_answers_not_found(ctx_for):
    """A CNIE nobody holds answers exactly ``{"found": false}``, which validates."""
    ctx = ctx_for("civil")
    answer = _lookup("ZZ999999", ctx)
    assert answer == {"found": False}
    assert_valid(civil.LOOKUP_RESPONSE, answer)
    assert ctx.calls == []


def test_the_registry_hands_out_copies():
    """Changing a looked-up record does not change the register."""
    registry = civil.person_registry()
    record = registry.find("BE123456")
    assert record is not None
    record["vital_status"] = "deceased"
    assert registry.find("BE123456")["vital_status"] == "alive"


def test_sample_register_size():
    """The sample register holds a small population (20 to 60 people)."""
    assert 20 <= len(civil.person_registry()) <= 60


def test_birth_events_are_valid_and_named_after_a_parent():
    """Every birth event validates; the child bears the family name of the declared parent."""
    registry = civil.person_registry()
    events = list(civil.birth_events())
    assert 20 <= len(events) <= 60
    for event in events:
        assert_valid(civil.BIRTH_REGISTERED, event)
        parent = registry.find(event.get("father_cin", event["mother_cin"]))
        assert parent is not None
        assert (
            event["child"]["names"]["latin"]["last_name"] == (parent["names"]["latin"]["last_name"])
        )
        assert (
            event["child"]["names"]["arabic"]["last_name"]
            == (parent["names"]["arabic"]["last_name"])
        )
        assert event["mother_cin"] in registry


def test_birth_events_limit():
    """``limit`` caps the number of events; zero yields none; a negative one is refused."""
    assert len(list(civil.birth_events(3))) == 3
    assert list(civil.birth_events(0)) == []
    with pytest.raises(ValueError, match="limit"):
        civil.birth_events(-1)
    first = next(civil.birth_events(1))
    assert first["act_number"] == "1532/2026"
    assert first["child"]["names"]["latin"] == {"first_name": "Youssef", "last_name": "Benali"}
