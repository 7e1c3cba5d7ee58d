"""The treasury (Trésorerie générale du Royaume, Ministry of Economy and Finance).

It publishes each public payment it executes, screens those payments for signs of money
laundering and sends an alert to the tax administration when one looks suspicious, and
follows customs events to know which duty payments to expect. Payments come from
``data/treasury_payments.csv``; the register of known payees (account, holder, since when
the treasury has paid into it) from ``data/treasury_accounts.csv``.

The screening rule, :func:`screen`, is pure given its inputs (the payment, the recent
payments to the same account, the payee register and the time of the alert). It flags:

* **unusual volume to a new account**: at least :data:`LARGE_AMOUNT` paid into an account
  the register does not know, or has known for fewer than :data:`NEW_ACCOUNT_DAYS` days
  (``high``; ``critical`` from :data:`CRITICAL_AMOUNT`);
* **structuring**: at least :data:`STRUCTURING_COUNT` payments to the same account within
  :data:`STRUCTURING_WINDOW`, each at least :data:`STRUCTURING_FLOOR` and under the
  :data:`REPORTING_THRESHOLD` (``medium``; ``high`` from five payments);
* **anomalous behaviour**, when a :class:`PaymentScreener` is given a scorer (the learned
  anomaly score of ``risk``, composed in ``tabadul``): the score flags the payment
  (``medium``; ``high`` from :data:`HIGH_ANOMALY`). Every alert then carries the score and
  its reasons (``anomaly``), whichever rule raised it.

Only MAD amounts are screened: thresholds are set in dirhams. Tax answers each alert it has
looked into with a ``tax.alert-verdict`` (:func:`on_alert_verdict` keeps them), which the
scorer learns from. :func:`payment_history` makes the fictitious history of the payees the
scorer is first trained on.
"""

from __future__ import annotations

import copy
import random
import threading
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Protocol

from connectors._handlers import Context, Delivery
from connectors.ministries import tax
from connectors.ministries._common import MAD, Lazy, read_csv, take, timestamp, utc_now
from connectors.ministries._spec import AgencySpec

__all__ = [
    "ALERT",
    "ALERT_VERDICT",
    "CRITICAL_AMOUNT",
    "HIGH_ANOMALY",
    "LARGE_AMOUNT",
    "NEW_ACCOUNT_DAYS",
    "PAYMENT_EXECUTED",
    "REPORTING_THRESHOLD",
    "SPEC",
    "STRUCTURING_COUNT",
    "STRUCTURING_FLOOR",
    "STRUCTURING_WINDOW",
    "SUBSYSTEM",
    "ExpectedPayment",
    "Payee",
    "PayeeRegistry",
    "PaymentScreener",
    "expected_payments",
    "on_alert_verdict",
    "on_declaration_cleared",
    "on_declaration_lodged",
    "payee_registry",
    "payment_history",
    "payments",
    "received_verdicts",
    "reset_state",
    "screen",
    "screen_and_alert",
    "sent_alerts",
]

SUBSYSTEM = "MA/GOV/MEF/TREASURY"
PAYMENT_EXECUTED = "treasury.payment-executed"
ALERT = "treasury.suspicious-transaction-alert"
ALERT_VERDICT = tax.ALERT_VERDICT
DECLARATION_LODGED = "customs.declaration-lodged"
DECLARATION_CLEARED = "customs.declaration-cleared"

LARGE_AMOUNT = Decimal(500_000)
CRITICAL_AMOUNT = Decimal(5_000_000)
NEW_ACCOUNT_DAYS = 90
REPORTING_THRESHOLD = Decimal(100_000)
STRUCTURING_FLOOR = Decimal(90_000)
STRUCTURING_COUNT = 3
STRUCTURING_WINDOW = timedelta(hours=24)
HIGH_ANOMALY = 0.7
ANALYST_EMAIL = "cellule.lbc@tgr.gov.ma"


class Scorer(Protocol):
    """The learned score a :class:`PaymentScreener` may use (``risk.PaymentRisk``)."""

    def assess(self, payment: Mapping[str, Any]) -> Mapping[str, Any]:
        """A MAD payment's ``anomaly`` (the alert schema's): score, threshold, flagged,
        reasons."""

    def alerted(self, alert: Mapping[str, Any], payment: Mapping[str, Any]) -> None:
        """Keep which payment an alert is about (what tax's verdict will name)."""


TREASURY_RIB = "310810100000000000000138"
TREASURY_HOLDER = "Tresorerie Generale du Royaume"

_SEVERITY_ORDER = ("low", "medium", "high", "critical")


# -- payees and payments --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Payee:
    """An account the treasury pays into, and since when it has known it."""

    rib: str
    holder: str
    taxpayer_id: str | None
    known_since: date


class PayeeRegistry:
    """Known payee accounts by RIB. Immutable; safe to share between threads."""

    def __init__(self, payees: Iterable[Payee]) -> None:
        self._by_rib = {payee.rib: payee for payee in payees}

    @classmethod
    def from_sample(cls) -> PayeeRegistry:
        return cls(
            Payee(
                row["rib"],
                row["holder"],
                row["taxpayer_id"] or None,
                date.fromisoformat(row["known_since"]),
            )
            for row in read_csv("treasury_accounts.csv")
        )

    def find(self, rib: str) -> Payee | None:
        return self._by_rib.get(rib)

    def known_since(self, rib: str) -> date | None:
        """Since when the register has known the account ``rib`` (``None``: unknown)."""
        payee = self._by_rib.get(rib)
        return payee.known_since if payee is not None else None

    def __len__(self) -> int:
        return len(self._by_rib)

    def payees(self) -> tuple[Payee, ...]:
        return tuple(self._by_rib.values())


_PAYEES = Lazy(PayeeRegistry.from_sample)


def payee_registry() -> PayeeRegistry:
    """The process's payee register, loaded from the sample data on first use."""
    return _PAYEES.get()


def payments(limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Yield ``treasury.payment-executed`` payloads for the sample payments, oldest first.

    Yields at most ``limit`` payloads (all when ``None``); raises :class:`ValueError` for a
    negative limit.
    """
    return take((_payment(row) for row in read_csv("treasury_payments.csv")), limit)


def _payment(row: Mapping[str, str]) -> dict[str, Any]:
    payment: dict[str, Any] = {
        "payment_id": row["payment_id"],
        "executed_at": row["executed_at"],
        "value_date": row["value_date"],
        "amount": {"amount": row["amount"], "currency": MAD},
        "debtor": {"rib": row["debtor_rib"], "holder": row["debtor_holder"]},
        "creditor": {"rib": row["creditor_rib"], "holder": row["creditor_holder"]},
        "method": row["method"],
    }
    if row["budget_line"]:
        payment["budget_line"] = row["budget_line"]
    if row["remittance_information"]:
        payment["remittance_information"] = row["remittance_information"]
    return payment


def payment_history(
    until: date = date(2026, 11, 1), days: int = 180, seed: int = 2026
) -> list[dict[str, Any]]:
    """``treasury.payment-executed`` payloads of the ``days`` before ``until``: the treasury
    paying each payee of the sample register in its usual rhythm and amounts (fictitious,
    the same for the same arguments), oldest first. What the anomaly score first learns
    the payees' ordinary behaviour from."""
    draw = random.Random(seed)  # noqa: S311 - sample data, not secrets
    usual: dict[str, list[Decimal]] = defaultdict(list)
    for row in read_csv("treasury_payments.csv"):
        usual[row["creditor_rib"]].append(Decimal(row["amount"]))
    start = until - timedelta(days=days)
    history = []
    for payee in sorted(payee_registry().payees(), key=lambda p: p.rib):
        level = float(min(usual.get(payee.rib) or [Decimal(draw.choice((8_000, 40_000, 150_000)))]))
        every = draw.choice((3, 7, 14, 30))
        day = max(start, payee.known_since) + timedelta(days=draw.randrange(every))
        while day < until:
            if day.weekday() < 5:
                amount = Decimal(level * draw.lognormvariate(0, 0.35)).quantize(Decimal("0.01"))
                at = datetime(day.year, day.month, day.day, draw.randrange(8, 16),
                              draw.randrange(60), tzinfo=UTC)  # fmt: skip
                history.append((at, payee, amount))
            day += timedelta(days=max(1, round(every * draw.uniform(0.7, 1.3))))
    history.sort(key=lambda entry: entry[0])
    return [
        {
            "payment_id": f"TGR-{at.year}-{serial:012d}",
            "executed_at": timestamp(at),
            "value_date": (at + timedelta(days=1)).date().isoformat(),
            "amount": {"amount": str(amount), "currency": MAD},
            "debtor": {"rib": TREASURY_RIB, "holder": TREASURY_HOLDER},
            "creditor": {"rib": payee.rib, "holder": payee.holder},
            "method": "transfer",
        }
        for serial, (at, payee, amount) in enumerate(history, start=1)
    ]


# -- the screening rule ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Finding:
    typology: str
    severity: str
    narrative: str
    transactions: tuple[Mapping[str, Any], ...]


def screen(
    payment: Mapping[str, Any],
    *,
    history: Sequence[Mapping[str, Any]] = (),
    payees: PayeeRegistry | None = None,
    now: datetime | None = None,
    anomaly: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """A ``treasury.suspicious-transaction-alert`` payload for ``payment``, or ``None``.

    ``history`` holds earlier payments (any account; only those to the same creditor count);
    ``payees`` defaults to the sample register; ``now`` (the alert's ``raised_at``) to the
    current time; ``anomaly`` is the payment's learned score, carried by the alert and a
    finding of its own when it flags the payment. The alert id is derived from the payment
    id, so screening the same payment twice yields the same alert. See the module docstring
    for the rules.
    """
    if payment["amount"]["currency"] != MAD:
        return None
    register = payees if payees is not None else payee_registry()
    findings = [
        finding
        for finding in (
            _new_account(payment, register),
            _structuring(payment, history),
            _anomalous(payment, anomaly),
        )
        if finding is not None
    ]
    if not findings:
        return None

    transactions: dict[str, Mapping[str, Any]] = {}
    for finding in findings:
        for tx in finding.transactions:
            transactions[tx["payment_id"]] = tx
    payee = register.find(payment["creditor"]["rib"])
    subject: dict[str, str] = {"name": payment["creditor"]["holder"]}
    if payee is not None and payee.taxpayer_id is not None:
        subject["taxpayer_id"] = payee.taxpayer_id
    executed = _moment(payment["executed_at"])
    alert: dict[str, Any] = {
        "alert_id": f"STA-{executed.year:04d}-{payment['payment_id'][-8:]}",
        "raised_at": timestamp(now if now is not None else utc_now()),
        "severity": max((f.severity for f in findings), key=_SEVERITY_ORDER.index),
        "typologies": list(dict.fromkeys(f.typology for f in findings)),
        "transactions": [
            _transaction(tx)
            for tx in sorted(transactions.values(), key=lambda t: _moment(t["executed_at"]))
        ],
        "subject": subject,
        "narrative": " ".join(f.narrative for f in findings),
        "analyst_email": ANALYST_EMAIL,
    }
    if anomaly is not None:
        alert["anomaly"] = copy.deepcopy(dict(anomaly))
    return alert


def _anomalous(payment: Mapping[str, Any], anomaly: Mapping[str, Any] | None) -> _Finding | None:
    if anomaly is None or not anomaly["flagged"]:
        return None
    score = anomaly["score"]
    why = "; ".join(
        f"{reason['labels']['en']} {reason['value']:g}" for reason in anomaly["reasons"]
    )
    watched = anomaly.get("feedback", {}).get("verdict") == "confirmed"
    return _Finding(
        typology="anomalous-behaviour",
        severity="high" if score >= HIGH_ANOMALY or watched else "medium",
        narrative=(
            f"Unusual behaviour of the payee (anomaly score {score:.2f}, threshold "
            f"{anomaly['threshold']:.2f}{', account under a confirmed alert' if watched else ''})"
            + (f": {why}." if why else ".")
        ),
        transactions=(payment,),
    )


def _new_account(payment: Mapping[str, Any], payees: PayeeRegistry) -> _Finding | None:
    amount = Decimal(payment["amount"]["amount"])
    if amount < LARGE_AMOUNT:
        return None
    rib = payment["creditor"]["rib"]
    payee = payees.find(rib)
    value_date = date.fromisoformat(payment["value_date"])
    if payee is None:
        history = "an account unknown to the register of payees"
    else:
        age = (value_date - payee.known_since).days
        if age >= NEW_ACCOUNT_DAYS:
            return None
        history = f"an account the register of payees has known for only {age} days"
    return _Finding(
        typology="unusual-volume",
        severity="critical" if amount >= CRITICAL_AMOUNT else "high",
        narrative=f"Payment of {amount} MAD to {history} (RIB {rib}).",
        transactions=(payment,),
    )


def _structuring(
    payment: Mapping[str, Any], history: Sequence[Mapping[str, Any]]
) -> _Finding | None:
    if not _just_under_threshold(payment):
        return None
    rib = payment["creditor"]["rib"]
    executed = _moment(payment["executed_at"])
    series = [
        earlier
        for earlier in history
        if earlier["payment_id"] != payment["payment_id"]
        and earlier["creditor"]["rib"] == rib
        and _just_under_threshold(earlier)
        and executed - STRUCTURING_WINDOW <= _moment(earlier["executed_at"]) <= executed
    ]
    series.append(payment)
    if len(series) < STRUCTURING_COUNT:
        return None
    total = sum((Decimal(p["amount"]["amount"]) for p in series), Decimal(0))
    return _Finding(
        typology="structuring",
        severity="high" if len(series) >= 5 else "medium",
        narrative=(
            f"{len(series)} payments to RIB {rib} within {_hours(STRUCTURING_WINDOW)} hours, "
            f"each just under the {REPORTING_THRESHOLD} MAD reporting threshold "
            f"({total} MAD in all)."
        ),
        transactions=tuple(series),
    )


def _just_under_threshold(payment: Mapping[str, Any]) -> bool:
    if payment["amount"]["currency"] != MAD:
        return False
    return STRUCTURING_FLOOR <= Decimal(payment["amount"]["amount"]) < REPORTING_THRESHOLD


def _transaction(payment: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "transaction_id": payment["payment_id"],
        "executed_at": payment["executed_at"],
        "amount": dict(payment["amount"]),
        "counterparty_rib": payment["creditor"]["rib"],
    }


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.upper())


def _hours(span: timedelta) -> int:
    return int(span.total_seconds() // 3600)


# -- screening a stream of payments ---------------------------------------------------------


class PaymentScreener:
    """Screens payments as they are executed, remembering recent ones per creditor account.

    ``scorer``, when given, adds the learned anomaly score to MAD payments (see the module
    docstring) and is told of each alert raised.
    Thread-safe. A payment seen before (same id) is not screened again, so a redelivered
    payment cannot raise a second alert; a payment whose alert could not be sent is
    forgotten, so that trying it again screens it again. Only payments within
    :data:`STRUCTURING_WINDOW` of the newest one to an account are kept.
    """

    def __init__(self, payees: PayeeRegistry | None = None, scorer: Scorer | None = None) -> None:
        self._payees = payees
        self._scorer = scorer
        self._lock = threading.Lock()
        self._recent: dict[str, deque[Mapping[str, Any]]] = defaultdict(deque)
        self._seen: set[str] = set()
        self._sent: list[dict[str, Any]] = []

    def screen(
        self, payment: Mapping[str, Any], *, now: datetime | None = None
    ) -> dict[str, Any] | None:
        """Remember ``payment`` and screen it against the recent payments to its creditor."""
        payment_id = payment["payment_id"]
        with self._lock:
            if payment_id in self._seen:
                return None
            self._seen.add(payment_id)
            recent = self._recent[payment["creditor"]["rib"]]
            history = tuple(p for p in recent if p["payment_id"] != payment_id)
            if len(history) == len(recent):
                recent.append(payment)
            newest = max(_moment(p["executed_at"]) for p in recent)
            while recent and _moment(recent[0]["executed_at"]) < newest - STRUCTURING_WINDOW:
                recent.popleft()
        scorer = self._scorer if payment["amount"]["currency"] == MAD else None
        try:
            anomaly = scorer.assess(payment) if scorer is not None else None
            alert = screen(payment, history=history, payees=self._payees, now=now, anomaly=anomaly)
            if scorer is not None and alert is not None:
                scorer.alerted(alert, payment)
        except Exception:
            with self._lock:
                self._seen.discard(payment_id)
            raise
        return alert

    def screen_and_alert(
        self, payment: Mapping[str, Any], ctx: Context, *, now: datetime | None = None
    ) -> dict[str, Any] | None:
        """Screen ``payment``; send any alert to the tax administration and return it.

        The alert goes as a one-way message through ``ctx.send``. When sending fails, the
        error propagates and the payment is forgotten, so that a retry alerts again.
        """
        alert = self.screen(payment, now=now)
        if alert is None:
            return None
        try:
            ctx.send(ALERT, tax.SUBSYSTEM, alert)
        except Exception:
            with self._lock:
                self._seen.discard(payment["payment_id"])
            raise
        with self._lock:
            self._sent.append(alert)
        return alert

    def sent(self) -> tuple[dict[str, Any], ...]:
        """The alerts sent so far (copies), oldest first."""
        with self._lock:
            return tuple(copy.deepcopy(alert) for alert in self._sent)

    def clear(self) -> None:
        with self._lock:
            self._recent.clear()
            self._seen.clear()
            self._sent.clear()


_SCREENER = PaymentScreener()


def screen_and_alert(
    payment: Mapping[str, Any], ctx: Context, *, now: datetime | None = None
) -> dict[str, Any] | None:
    """Screen ``payment`` with the process's screener; send any alert to tax and return it.

    See :meth:`PaymentScreener.screen_and_alert`.
    """
    return _SCREENER.screen_and_alert(payment, ctx, now=now)


def sent_alerts() -> tuple[dict[str, Any], ...]:
    """The alerts the process's screener has sent, oldest first."""
    return _SCREENER.sent()


# -- verdicts of tax on the alerts ----------------------------------------------------------


class _Verdicts:
    """The verdicts received, by alert id (a verdict sent again replaces the earlier one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_alert: dict[str, dict[str, Any]] = {}

    def keep(self, verdict: Mapping[str, Any]) -> None:
        with self._lock:
            self._by_alert[verdict["alert_id"]] = copy.deepcopy(dict(verdict))

    def all(self) -> tuple[dict[str, Any], ...]:
        with self._lock:
            return tuple(copy.deepcopy(v) for v in self._by_alert.values())

    def clear(self) -> None:
        with self._lock:
            self._by_alert.clear()


_VERDICTS = _Verdicts()


def on_alert_verdict(delivery: Delivery, ctx: Context) -> None:
    """Keep a verdict of tax on one of the treasury's alerts (``tax.alert-verdict``)."""
    del ctx
    _VERDICTS.keep(delivery.payload)


def received_verdicts() -> tuple[dict[str, Any], ...]:
    """Copies of the verdicts received, in the order their alerts were first judged."""
    return _VERDICTS.all()


# -- expected duty payments (from customs events) -------------------------------------------


@dataclass(frozen=True, slots=True)
class ExpectedPayment:
    """A duty payment the treasury expects from an importer.

    ``status`` is ``"awaiting-assessment"`` while the declaration is only lodged (``amount``
    and ``payment_reference`` are then ``None``) and ``"due"`` once customs released the
    goods and assessed the duties.
    """

    declaration_number: str
    importer_tax_id: str
    importer_name: str
    status: str
    amount: Decimal | None = None
    payment_reference: str | None = None


class _ExpectedPayments:
    """Expected duty payments by declaration number; tolerant of repeats and reordering."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, ExpectedPayment] = {}
        self._settled: set[str] = set()

    def record_lodged(self, event: Mapping[str, Any]) -> None:
        if event["regime"] != "import":  # exports and suspended regimes pay nothing
            return
        number = event["declaration_number"]
        with self._lock:
            if number in self._entries or number in self._settled:
                return  # already assessed (the release overtook the lodging) or a repeat
            self._entries[number] = ExpectedPayment(
                number,
                event["importer"]["tax_id"],
                event["importer"]["name"],
                "awaiting-assessment",
            )

    def record_cleared(self, event: Mapping[str, Any]) -> None:
        number = event["declaration_number"]
        amount = Decimal(event["total_duties"]["amount"])
        with self._lock:
            self._settled.add(number)
            if not amount:
                self._entries.pop(number, None)
                return
            self._entries[number] = ExpectedPayment(
                number,
                event["importer"]["tax_id"],
                event["importer"]["name"],
                "due",
                amount,
                event.get("payment_reference"),
            )

    def entries(self) -> tuple[ExpectedPayment, ...]:
        with self._lock:
            return tuple(self._entries.values())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._settled.clear()


_EXPECTED = _ExpectedPayments()


def expected_payments() -> tuple[ExpectedPayment, ...]:
    """The duty payments expected, in the order the declarations were first heard of."""
    return _EXPECTED.entries()


def on_declaration_lodged(delivery: Delivery, ctx: Context) -> None:
    """Expect a duty payment for an import declaration (``customs.declaration-lodged``)."""
    del ctx
    _EXPECTED.record_lodged(delivery.payload)


def on_declaration_cleared(delivery: Delivery, ctx: Context) -> None:
    """Set the amount and reference of the expected payment (``customs.declaration-cleared``)."""
    del ctx
    _EXPECTED.record_cleared(delivery.payload)


def reset_state() -> None:
    """Forget screened payments, sent alerts, verdicts and expected payments (for tests and
    the demo)."""
    _SCREENER.clear()
    _EXPECTED.clear()
    _VERDICTS.clear()


SPEC = AgencySpec(
    subsystem=SUBSYSTEM,
    title="Treasury (Ministry of Economy and Finance)",
    handlers=MappingProxyType(
        {
            DECLARATION_LODGED: on_declaration_lodged,
            DECLARATION_CLEARED: on_declaration_cleared,
            ALERT_VERDICT: on_alert_verdict,
        }
    ),
    provides=MappingProxyType({}),
    publishes=(PAYMENT_EXECUTED,),
    subscribes=(DECLARATION_LODGED, DECLARATION_CLEARED),
    calls=((ALERT, "tax"),),
)
