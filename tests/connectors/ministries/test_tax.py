"""The tax administration: compliance certificates, customs ledger, treasury alerts."""

from datetime import date, datetime
from decimal import Decimal

import pytest

from connectors._handlers import Refuse
from connectors.ministries import customs, tax
from schemas import default_registry
from tests.connectors.ministries.fakes import assert_valid, delivery

PROCUREMENT = "MA/GOV/MEF/TREASURY"
CIVIL = "MA/GOV/MOI/CIVIL-REGISTRY"


def _certificate(request, ctx):
    assert_valid(tax.CERTIFICATE_REQUEST, request)
    answer = tax.answer_compliance_certificate(
        delivery(tax.CERTIFICATE_REQUEST, request, PROCUREMENT), ctx
    )
    assert_valid(tax.CERTIFICATE_RESPONSE, answer)
    return answer


def _civil_lookups(ctx):
    lookups = ctx.of_kind("request")
    assert all(c.message_type == "civil.person-lookup.request" and c.to == CIVIL for c in lookups)
    return [c.payload["cin"] for c in lookups]


@pytest.mark.parametrize(
    "request_",
    [
        {"taxpayer_id": "40123456", "purpose": "public-procurement"},
        {"cin": "BE123456", "purpose": "subsidy-application"},
        {"taxpayer_id": "40123456", "cin": "BE123456", "purpose": "licence-renewal"},
    ],
    ids=["by-taxpayer-id", "by-cin", "by-both"],
)
def test_a_compliant_individual_gets_a_certificate_after_one_civil_lookup(request_, ctx_for):
    """A living individual with no issue gets a certificate; civil is asked once, for the CNIE."""
    ctx = ctx_for("tax")
    answer = _certificate(request_, ctx)
    assert answer["status"] == "compliant"
    assert answer["certificate_number"].startswith("ARF-")
    assert _civil_lookups(ctx) == ["BE123456"]
    assert ctx.calls[0].payload["purpose"] == "tax-assessment"
    assert [c.taxpayer_id for c in tax.issued_certificates()] == ["40123456"]


def test_a_compliant_company_is_checked_without_civil(ctx_for):
    """A company (by ICE) is answered from the tax register alone: no civil lookup."""
    ctx = ctx_for("tax")
    answer = _certificate({"ice": "001234567000089", "purpose": "customs-clearance"}, ctx)
    assert answer["status"] == "compliant"
    assert ctx.calls == []


def test_certificate_numbering_and_validity(ctx_for):
    """Certificates are numbered in sequence and valid six months from the check."""
    ctx = ctx_for("tax")
    first = _certificate({"taxpayer_id": "12345678", "purpose": "public-procurement"}, ctx)
    second = _certificate({"taxpayer_id": "15210033", "purpose": "public-procurement"}, ctx)
    checked = datetime.fromisoformat(first["checked_at"]).date()
    year = checked.year
    assert first["certificate_number"] == f"ARF-{year}-00000001"
    assert second["certificate_number"] == f"ARF-{year}-00000002"
    assert first["valid_until"] == tax._add_months(checked, 6).isoformat()


def test_month_arithmetic_clamps_to_the_end_of_month():
    """Six months after 31 August is the last day of February."""
    assert tax._add_months(date(2026, 8, 31), 6) == date(2027, 2, 28)
    assert tax._add_months(date(2026, 11, 2), 6) == date(2027, 5, 2)


def test_a_company_with_issues_is_non_compliant_with_its_reasons(ctx_for):
    """Unpaid tax and an unfiled return become the reasons, with their periods; no civil call."""
    ctx = ctx_for("tax")
    answer = _certificate({"taxpayer_id": "15270099", "purpose": "public-procurement"}, ctx)
    assert answer["status"] == "non-compliant"
    assert [(r["code"], r["period"]) for r in answer["reasons"]] == [
        ("unpaid-tax", "2025"),
        ("unfiled-declaration", "2026-09"),
    ]
    assert "certificate_number" not in answer
    assert ctx.calls == []
    assert tax.issued_certificates() == ()


def test_an_individual_with_issues_is_non_compliant_after_one_civil_lookup(ctx_for):
    """An individual with an unpaid penalty and unpaid VAT: non-compliant; civil asked once."""
    ctx = ctx_for("tax")
    answer = _certificate({"cin": "G901234", "purpose": "licence-renewal"}, ctx)
    assert answer["status"] == "non-compliant"
    assert {r["code"] for r in answer["reasons"]} == {"unpaid-penalty", "unpaid-tax"}
    assert _civil_lookups(ctx) == ["G901234"]


def test_a_deceased_taxpayer_is_refused(ctx_for):
    """A taxpayer the civil registry records as deceased is refused (taxpayer-deceased)."""
    ctx = ctx_for("tax")
    with pytest.raises(Refuse) as caught:
        _certificate({"taxpayer_id": "3456789", "purpose": "public-procurement"}, ctx)
    assert caught.value.code == "taxpayer-deceased"
    assert "2025-09-02" in caught.value.message
    assert _civil_lookups(ctx) == ["C345678"]
    assert tax.issued_certificates() == ()


def test_a_taxpayer_unknown_to_civil_is_non_compliant(ctx_for):
    """A taxpayer whose CNIE the civil registry does not know: non-compliant, unknown-taxpayer."""
    ctx = ctx_for("tax")
    answer = _certificate({"taxpayer_id": "41112233", "purpose": "subsidy-application"}, ctx)
    assert answer["status"] == "non-compliant"
    assert [r["code"] for r in answer["reasons"]] == ["unknown-taxpayer"]
    assert "Q111222" in answer["reasons"][0]["description"]
    assert _civil_lookups(ctx) == ["Q111222"]


def test_a_living_person_who_is_no_taxpayer_is_non_compliant(ctx_for):
    """A CNIE civil knows but the tax register does not: unknown-taxpayer, after one lookup."""
    ctx = ctx_for("tax")
    answer = _certificate({"cin": "AE112233", "purpose": "subsidy-application"}, ctx)
    assert [r["code"] for r in answer["reasons"]] == ["unknown-taxpayer"]
    assert _civil_lookups(ctx) == ["AE112233"]


def test_an_unknown_taxpayer_id_is_non_compliant_without_civil(ctx_for):
    """An identifiant fiscal nobody holds: unknown-taxpayer, and no person to look up."""
    ctx = ctx_for("tax")
    answer = _certificate({"taxpayer_id": "99999999", "purpose": "public-procurement"}, ctx)
    assert [r["code"] for r in answer["reasons"]] == ["unknown-taxpayer"]
    assert ctx.calls == []


def test_identifiers_of_different_taxpayers_are_refused(ctx_for):
    """A company's identifiant fiscal with someone's CNIE is refused before any lookup."""
    ctx = ctx_for("tax")
    request = {"taxpayer_id": "12345678", "cin": "BE123456", "purpose": "public-procurement"}
    with pytest.raises(Refuse) as caught:
        _certificate(request, ctx)
    assert caught.value.code == "inconsistent-identifiers"
    assert ctx.calls == []


def test_the_tender_reference_is_the_case_reference_of_the_lookup(ctx_for):
    """The civil lookup carries the tender reference, for the audit trail."""
    ctx = ctx_for("tax")
    _certificate(
        {"cin": "BE123456", "purpose": "public-procurement", "tender_reference": "AO-12/2026"}, ctx
    )
    assert ctx.calls[0].payload["case_reference"] == "AO-12/2026"


def _feed_customs(ctx, pairs):
    for lodged, cleared in pairs:
        tax.on_declaration_lodged(
            delivery(customs.DECLARATION_LODGED, lodged, customs.SUBSYSTEM), ctx
        )
        tax.on_declaration_cleared(
            delivery(customs.DECLARATION_CLEARED, cleared, customs.SUBSYSTEM), ctx
        )


def test_customs_events_fill_the_import_ledger(ctx_for):
    """Each declaration is recorded; the duties owed by an importer are the sum at release."""
    ctx = ctx_for("tax")
    pairs = list(customs.declarations())
    _feed_customs(ctx, pairs)
    entries = tax.import_duties()
    assert len(entries) == len(pairs)
    assert {e.status for e in entries} == {"cleared"}
    atlas = sum(
        Decimal(c["total_duties"]["amount"])
        for _, c in pairs
        if c["importer"]["tax_id"] == "12345678"
    )
    assert tax.duties_owed("12345678") == atlas == Decimal("199871.16")
    assert ctx.calls == []


def test_the_ledger_survives_repeats_and_reordering(ctx_for):
    """A release heard before its lodging, and repeated events, leave one cleared entry."""
    ctx = ctx_for("tax")
    lodged, cleared = next(customs.declarations(1))
    tax.on_declaration_cleared(
        delivery(customs.DECLARATION_CLEARED, cleared, customs.SUBSYSTEM), ctx
    )
    tax.on_declaration_lodged(delivery(customs.DECLARATION_LODGED, lodged, customs.SUBSYSTEM), ctx)
    tax.on_declaration_lodged(delivery(customs.DECLARATION_LODGED, lodged, customs.SUBSYSTEM), ctx)
    (entry,) = tax.import_duties()
    assert entry.status == "cleared"
    assert entry.duties == Decimal("64631.16")
    assert entry.customs_value == Decimal("281005.00")


def test_a_lodged_only_declaration_owes_nothing_yet(ctx_for):
    """Before release the declaration is 'lodged' and adds nothing to the duties owed."""
    lodged, _ = next(customs.declarations(1))
    tax.on_declaration_lodged(
        delivery(customs.DECLARATION_LODGED, lodged, customs.SUBSYSTEM), ctx_for("tax")
    )
    (entry,) = tax.import_duties()
    assert (entry.status, entry.duties) == ("lodged", None)
    assert tax.duties_owed("12345678") == 0


def test_alerts_are_kept_and_the_view_is_a_copy(ctx_for):
    """A treasury alert is recorded with its sender; changing the view changes nothing held."""
    example = default_registry().get("treasury.suspicious-transaction-alert").examples[0]
    message = delivery("treasury.suspicious-transaction-alert", example, "MA/GOV/MEF/TREASURY")
    tax.on_suspicious_transaction_alert(message, ctx_for("tax"))
    tax.on_suspicious_transaction_alert(message, ctx_for("tax"))  # redelivered: kept once
    (received,) = tax.received_alerts()
    assert received.sender == "MA/GOV/MEF/TREASURY"
    assert received.alert_id == "STA-2026-00000042"
    received.alert["severity"] = "low"  # type: ignore[index]
    assert tax.received_alerts()[0].alert["severity"] == "high"
