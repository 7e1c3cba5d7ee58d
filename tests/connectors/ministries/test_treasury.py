"""The treasury: payments, the suspicious-payment rule, alerts to tax, expected duties.

Designed cases in the sample payments (value dates in November 2026):

* flagged: TGR-...123455, 1 850 000.00 MAD to an account known for 14 days (unusual
  volume, high); TGR-...123458, the third payment of 98 500 / 99 000 / 99 750 MAD to one
  account within six hours (structuring, medium); TGR-...123462, 6 200 000.00 MAD to an
  account unknown to the payee register (unusual volume, critical);
* not flagged: 2 400 000.00 MAD to an account known since 2012; a lone 99 000.00 MAD
  payment; the first two payments of the structuring series; 450 000.00 MAD to a new
  account (under the large-amount threshold); exactly 100 000.00 MAD (not under the
  threshold); three payments of 94 000-97 500 MAD to one account spread over four days;
  410 000.00 MAD to an account known for 96 days.
"""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connectors.ministries import customs, tax, treasury
from tests.connectors.ministries.fakes import assert_valid, delivery

NOW = datetime(2026, 11, 9, 18, 0, tzinfo=UTC)


def _id(serial):
    return f"TGR-2026-{serial:012d}"


def _payment(serial, amount, rib, *, at="2026-11-03T08:00:00Z", value_date="2026-11-04"):
    payment = {
        "payment_id": _id(serial),
        "executed_at": at,
        "value_date": value_date,
        "amount": {"amount": amount, "currency": "MAD"},
        "debtor": {"rib": "310810100000000000000138", "holder": "Tresorerie Generale du Royaume"},
        "creditor": {"rib": rib, "holder": "Payee SARL"},
        "method": "transfer",
    }
    assert_valid(treasury.PAYMENT_EXECUTED, payment)
    return payment


def _rib_of(holder):
    return next(
        p["creditor"]["rib"] for p in treasury.payments() if p["creditor"]["holder"] == holder
    )


OLD = "Grands Travaux du Nord SA"  # known since 2012
NEW = "Nour Consulting SARL"  # known since 2026-10-20
UNKNOWN_RIB = "230640000000003131313149"


def test_sample_payments_are_valid():
    """Every sample payment validates; there are 20 to 60 of them, oldest first."""
    payments = list(treasury.payments())
    assert 20 <= len(payments) <= 60
    for payment in payments:
        assert_valid(treasury.PAYMENT_EXECUTED, payment)
    times = [datetime.fromisoformat(p["executed_at"]) for p in payments]
    assert times == sorted(times)
    assert len(list(treasury.payments(4))) == 4


def test_the_sample_stream_raises_exactly_the_designed_alerts():
    """Screening the sample payments in order flags the three designed cases and nothing else."""
    screener = treasury.PaymentScreener()
    alerts = {
        p["payment_id"]: alert
        for p in treasury.payments()
        if (alert := screener.screen(p, now=NOW)) is not None
    }
    assert {pid: (a["severity"], a["typologies"]) for pid, a in alerts.items()} == {
        _id(123455): ("high", ["unusual-volume"]),
        _id(123458): ("medium", ["structuring"]),
        _id(123462): ("critical", ["unusual-volume"]),
    }
    for alert in alerts.values():
        assert_valid(treasury.ALERT, alert)
    structuring = alerts[_id(123458)]
    assert [t["transaction_id"] for t in structuring["transactions"]] == [
        _id(123456),
        _id(123457),
        _id(123458),
    ]
    assert structuring["subject"] == {"name": "Rif Materiaux SARL", "taxpayer_id": "15250077"}
    assert alerts[_id(123462)]["subject"] == {"name": "Sigma Travaux SARL"}
    assert alerts[_id(123455)]["alert_id"] == "STA-2026-00123455"


def test_large_payment_to_a_new_account_is_flagged():
    """500 000 MAD or more to an account known for under 90 days: unusual volume, high."""
    alert = treasury.screen(_payment(1, "500000.00", _rib_of(NEW)), now=NOW)
    assert alert is not None
    assert (alert["severity"], alert["typologies"]) == ("high", ["unusual-volume"])
    assert alert["raised_at"] == "2026-11-09T18:00:00+00:00"
    assert_valid(treasury.ALERT, alert)


def test_very_large_payment_to_an_unknown_account_is_critical():
    """5 000 000 MAD or more to an account the register does not know: critical."""
    alert = treasury.screen(_payment(2, "5000000.00", UNKNOWN_RIB), now=NOW)
    assert alert is not None
    assert alert["severity"] == "critical"
    assert "unknown to the register" in alert["narrative"]
    assert_valid(treasury.ALERT, alert)


@pytest.mark.parametrize(
    ("amount", "holder"),
    [
        ("2400000.00", OLD),  # large, but to an account known for years
        ("499999.99", NEW),  # new account, but under the large-amount threshold
        ("99000.00", OLD),  # just under the reporting threshold, but alone
    ],
    ids=["large-to-old-account", "medium-to-new-account", "lone-just-under"],
)
def test_normal_payments_are_not_flagged(amount, holder):
    """Large to a long-known account, moderate to a new one, or one just under: no alert."""
    assert treasury.screen(_payment(3, amount, _rib_of(holder)), now=NOW) is None


def test_three_just_under_the_threshold_within_a_day_is_structuring():
    """Three payments of 90 000-99 999.99 MAD to one account within 24 hours: structuring."""
    rib = _rib_of(OLD)
    first = _payment(10, "95000.00", rib, at="2026-11-03T08:00:00Z")
    second = _payment(11, "99999.99", rib, at="2026-11-03T20:00:00Z")
    third = _payment(12, "90000.00", rib, at="2026-11-04T07:59:59Z")
    assert treasury.screen(second, history=[first], now=NOW) is None
    alert = treasury.screen(third, history=[first, second], now=NOW)
    assert alert is not None
    assert (alert["severity"], alert["typologies"]) == ("medium", ["structuring"])
    assert len(alert["transactions"]) == 3
    assert_valid(treasury.ALERT, alert)


@pytest.mark.parametrize(
    ("amounts", "times"),
    [
        (
            ("95000.00",) * 3,
            ("2026-11-01T08:00:00Z", "2026-11-02T09:00:00Z", "2026-11-03T10:00:00Z"),
        ),
        (
            ("100000.00",) * 3,
            ("2026-11-03T08:00:00Z", "2026-11-03T09:00:00Z", "2026-11-03T10:00:00Z"),
        ),
        (
            ("89999.99",) * 3,
            ("2026-11-03T08:00:00Z", "2026-11-03T09:00:00Z", "2026-11-03T10:00:00Z"),
        ),
    ],
    ids=["spread-over-days", "at-the-threshold", "below-the-band"],
)
def test_series_that_are_not_structuring(amounts, times):
    """Spread over more than a day, at the threshold itself, or well under it: no alert."""
    rib = _rib_of(OLD)
    series = [
        _payment(20 + i, a, rib, at=t) for i, (a, t) in enumerate(zip(amounts, times, strict=True))
    ]
    assert treasury.screen(series[-1], history=series[:-1], now=NOW) is None


def test_structuring_counts_only_the_same_creditor():
    """Payments just under the threshold to other accounts do not make a series."""
    first = _payment(30, "95000.00", _rib_of(OLD), at="2026-11-03T08:00:00Z")
    second = _payment(31, "95000.00", _rib_of(NEW), at="2026-11-03T09:00:00Z")
    third = _payment(32, "95000.00", _rib_of(OLD), at="2026-11-03T10:00:00Z")
    assert treasury.screen(third, history=[first, second], now=NOW) is None


def test_structuring_severity_grows_with_the_series():
    """Three to four payments in the band are medium, five are high; a large one does not count."""
    rib = _rib_of(NEW)
    series = [
        _payment(40 + i, f"9{5 + i}000.00", rib, at=f"2026-11-03T{8 + i:02d}:00:00Z")
        for i in range(5)
    ]
    large = _payment(49, "5200000.00", rib, at="2026-11-03T07:00:00Z")
    assert treasury.screen(large, history=series[:2], now=NOW)["typologies"] == ["unusual-volume"]
    third = treasury.screen(series[2], history=[large, *series[:2]], now=NOW)
    assert (third["severity"], len(third["transactions"])) == ("medium", 3)
    fifth = treasury.screen(series[4], history=series[:4], now=NOW)
    assert (fifth["severity"], len(fifth["transactions"])) == ("high", 5)
    assert_valid(treasury.ALERT, fifth)


def test_foreign_currency_payments_are_not_screened():
    """Thresholds are in dirhams: a payment in another currency raises no alert."""
    payment = _payment(50, "9000000.00", UNKNOWN_RIB)
    payment["amount"]["currency"] = "EUR"
    assert treasury.screen(payment, now=NOW) is None


def test_screen_and_alert_sends_to_tax_and_tax_records_it(ctx_for):
    """An alert goes once to the tax subsystem by ctx.send, validates, and tax keeps it."""
    ctx = ctx_for("treasury")
    payment = _payment(60, "1850000.00", _rib_of(NEW))
    alert = treasury.screen_and_alert(payment, ctx, now=NOW)
    assert alert is not None
    (call,) = ctx.calls
    assert (call.kind, call.message_type, call.to) == ("send", treasury.ALERT, tax.SUBSYSTEM)
    assert call.payload == alert
    assert_valid(treasury.ALERT, call.payload)
    tax.on_suspicious_transaction_alert(
        delivery(treasury.ALERT, call.payload, treasury.SUBSYSTEM), ctx_for("tax")
    )
    assert [a.alert_id for a in tax.received_alerts()] == [alert["alert_id"]]
    assert treasury.sent_alerts() == (alert,)


def test_a_redelivered_payment_does_not_alert_twice(ctx_for):
    """Screening the same payment again sends nothing more."""
    ctx = ctx_for("treasury")
    payment = _payment(61, "6200000.00", UNKNOWN_RIB)
    assert treasury.screen_and_alert(payment, ctx, now=NOW) is not None
    assert treasury.screen_and_alert(payment, ctx, now=NOW) is None
    assert len(ctx.of_kind("send")) == 1


def test_normal_payments_send_nothing(ctx_for):
    """A normal payment goes through screen_and_alert without any call."""
    ctx = ctx_for("treasury")
    assert treasury.screen_and_alert(_payment(62, "12500.00", _rib_of(OLD)), ctx, now=NOW) is None
    assert ctx.calls == []


def test_a_failed_send_is_retried_on_the_next_attempt(ctx_for):
    """When ctx.send fails the error propagates, and the retry screens and sends again."""
    ctx = ctx_for("treasury")

    def broken_send(message_type, to, payload):
        raise ConnectionError("broker unreachable")

    payment = _payment(63, "6200000.00", UNKNOWN_RIB)
    working_send = ctx.send
    ctx.send = broken_send
    with pytest.raises(ConnectionError):
        treasury.screen_and_alert(payment, ctx, now=NOW)
    ctx.send = working_send
    assert treasury.screen_and_alert(payment, ctx, now=NOW) is not None
    assert len(ctx.of_kind("send")) == 1


def test_customs_events_make_expected_duty_payments(ctx_for):
    """Imports are expected once lodged and due with amount and reference once cleared."""
    ctx = ctx_for("treasury")
    pairs = list(customs.declarations())
    for lodged, _ in pairs:
        treasury.on_declaration_lodged(
            delivery(customs.DECLARATION_LODGED, lodged, customs.SUBSYSTEM), ctx
        )
    imports = [lodged for lodged, _ in pairs if lodged["regime"] == "import"]
    assert len(treasury.expected_payments()) == len(imports)
    assert {e.status for e in treasury.expected_payments()} == {"awaiting-assessment"}
    for _, cleared in pairs:
        treasury.on_declaration_cleared(
            delivery(customs.DECLARATION_CLEARED, cleared, customs.SUBSYSTEM), ctx
        )
    due = {e.declaration_number: e for e in treasury.expected_payments()}
    assert {e.status for e in due.values()} == {"due"}
    assert set(due) == {lodged["declaration_number"] for lodged in imports}
    first = due["301-2026-0001234"]
    assert (first.amount, first.payment_reference) == (Decimal("64631.16"), "TGR-2026-301000001234")
    assert ctx.calls == []


def test_a_release_before_its_lodging_stays_due(ctx_for):
    """A lodging heard after the release does not reset the expected payment."""
    ctx = ctx_for("treasury")
    lodged, cleared = next(customs.declarations(1))
    treasury.on_declaration_cleared(
        delivery(customs.DECLARATION_CLEARED, cleared, customs.SUBSYSTEM), ctx
    )
    treasury.on_declaration_lodged(
        delivery(customs.DECLARATION_LODGED, lodged, customs.SUBSYSTEM), ctx
    )
    (entry,) = treasury.expected_payments()
    assert entry.status == "due"
    assert entry.amount == Decimal("64631.16")


def test_concurrent_redeliveries_alert_once(ctx_for):
    """Eight worker threads screening the same suspicious payment send a single alert."""
    ctx = ctx_for("treasury")
    screener = treasury.PaymentScreener()
    payment = _payment(70, "6200000.00", UNKNOWN_RIB)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda _: screener.screen_and_alert(payment, ctx, now=NOW), range(8))
        )
    assert sum(result is not None for result in results) == 1
    assert len(ctx.of_kind("send")) == 1
