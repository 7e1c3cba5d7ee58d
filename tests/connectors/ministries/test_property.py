"""The state property directorate: parcel lookups."""

import pytest

from connectors._handlers import Refuse
from connectors.ministries import state_property
from tests.connectors.ministries.fakes import assert_valid, delivery

CUSTOMER = "MA/GOV/MEF/TREASURY"


def _lookup(payload, ctx):
    assert_valid(state_property.LOOKUP_REQUEST, payload)
    message = delivery(state_property.LOOKUP_REQUEST, payload, CUSTOMER)
    return state_property.answer_parcel_lookup(message, ctx)


@pytest.mark.parametrize("title", state_property.parcel_registry().title_numbers())
def test_every_parcel_is_found_by_title_with_a_valid_record(title, ctx_for):
    """A lookup by land title finds each parcel of the register, in a valid response."""
    answer = _lookup({"title_number": title, "purpose": "valuation"}, ctx_for("property"))
    assert answer["found"] is True
    assert answer["parcel"]["title_number"] == title
    assert_valid(state_property.LOOKUP_RESPONSE, answer)


def test_lookup_by_cadastral_reference(ctx_for):
    """A lookup by cadastral reference alone finds the parcel."""
    answer = _lookup(
        {"cadastral_reference": "CA-2020-15873", "purpose": "litigation"}, ctx_for("property")
    )
    assert answer["parcel"]["title_number"] == "63210/38"
    assert [e["kind"] for e in answer["parcel"]["encumbrances"]] == ["lease", "mortgage"]
    assert_valid(state_property.LOOKUP_RESPONSE, answer)


def test_lookup_by_both_references_that_agree(ctx_for):
    """Both references of the same parcel find it."""
    payload = {
        "title_number": "12345/07",
        "cadastral_reference": "RB-2019-1234",
        "purpose": "expropriation",
    }
    assert _lookup(payload, ctx_for("property"))["parcel"]["commune"] == "Temara"


def test_an_unknown_parcel_answers_not_found(ctx_for):
    """An unknown title number answers exactly ``{"found": false}``, which validates."""
    answer = _lookup({"title_number": "99999/99", "purpose": "public-works"}, ctx_for("property"))
    assert answer == {"found": False}
    assert_valid(state_property.LOOKUP_RESPONSE, answer)


def test_references_of_different_parcels_are_refused(ctx_for):
    """A title number and a cadastral reference of two different parcels are refused."""
    payload = {
        "title_number": "12345/07",
        "cadastral_reference": "CA-2020-15873",
        "purpose": "valuation",
    }
    with pytest.raises(Refuse) as caught:
        _lookup(payload, ctx_for("property"))
    assert caught.value.code == "inconsistent-identifiers"


def test_sample_register_size():
    """The sample register holds 20 to 60 parcels."""
    assert 20 <= len(state_property.parcel_registry()) <= 60
