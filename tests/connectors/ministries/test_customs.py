"""Customs: the declarations it publishes, and the duties they carry."""

from decimal import Decimal

import pytest

from connectors.ministries import customs
from schemas import validate
from tests.connectors.ministries.fakes import assert_valid


def test_every_declaration_pair_is_valid():
    """Every lodged and cleared payload validates; both name the same declaration and importer."""
    pairs = list(customs.declarations())
    assert 20 <= len(pairs) <= 60
    for lodged, cleared in pairs:
        assert_valid(customs.DECLARATION_LODGED, lodged)
        assert_valid(customs.DECLARATION_CLEARED, cleared)
        assert lodged["declaration_number"] == cleared["declaration_number"]
        assert lodged["importer"] == cleared["importer"]
        assert lodged["lodged_at"] < cleared["cleared_at"]


def test_declarations_without_a_broker_also_fit_schema_1_0_0():
    """A lodged payload without a declarant validates against schema 1.0.0 too."""
    plain = [lodged for lodged, _ in customs.declarations() if "declarant" not in lodged]
    assert plain
    for lodged in plain:
        assert validate(customs.DECLARATION_LODGED, "1.0.0", lodged).ok


def test_totals_are_the_sums_of_the_lines():
    """Total customs value and total duties are the sums over the items."""
    for lodged, cleared in customs.declarations():
        values = sum(Decimal(i["customs_value"]["amount"]) for i in lodged["items"])
        duties = sum(Decimal(d["amount"]["amount"]) for i in cleared["items"] for d in i["duties"])
        assert Decimal(lodged["total_customs_value"]["amount"]) == values
        assert Decimal(cleared["total_duties"]["amount"]) == duties


def test_import_duty_then_vat_on_value_plus_duty():
    """Laptops at 250000.00 MAD: DI 2.5 % = 6250.00, TVA 20 % of 256250.00 = 51250.00."""
    _, cleared = next(customs.declarations(1))
    laptops = cleared["items"][0]
    assert laptops["hs_code"] == "8471300000"
    assert [
        (d["tax"], d["rate"], d["base"]["amount"], d["amount"]["amount"]) for d in laptops["duties"]
    ] == [
        ("DI", "2.5", "250000.00", "6250.00"),
        ("TVA", "20", "256250.00", "51250.00"),
    ]
    assert cleared["payment_reference"] == "TGR-2026-301000001234"


def test_exports_and_temporary_admission_pay_nothing():
    """Exports and goods under temporary admission carry no duties and no payment reference."""
    exempt = [
        cleared
        for lodged, cleared in customs.declarations()
        if lodged["regime"] in {"export", "temporary-admission"}
    ]
    assert len(exempt) == 4
    for cleared in exempt:
        assert cleared["total_duties"] == {"amount": "0.00", "currency": "MAD"}
        assert all(item["duties"] == [] for item in cleared["items"])
        assert "payment_reference" not in cleared


def test_declarations_limit():
    """``limit`` caps the number of pairs; a negative one is refused."""
    assert len(list(customs.declarations(5))) == 5
    with pytest.raises(ValueError, match="limit"):
        customs.declarations(-2)


def test_unknown_hs_code_is_an_error():
    """Asking the tariff for a code it does not hold raises LookupError."""
    with pytest.raises(LookupError, match="9999999999"):
        customs.tariff().duties("9999999999", Decimal(100))
