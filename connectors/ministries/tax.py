"""The tax administration (Direction générale des impôts, Ministry of Economy and Finance).

It issues tax compliance certificates (attestations de régularité fiscale) on request,
checking the person with the civil registry first; it keeps a ledger of the duties customs
assesses on imports (from customs events) and an inbox of the suspicious-transaction alerts
the treasury sends it, each of which it answers with a ``tax.alert-verdict`` once looked into
(:func:`judge_alerts`; the findings of its investigators come from
``data/tax_alert_verdicts.csv``, fictitious). Taxpayers come from ``data/tax_taxpayers.json``.

State lives per process in small lock-guarded classes, since handlers run on worker threads;
:func:`import_duties`, :func:`received_alerts` and :func:`issued_certificates` return
snapshots that callers may keep or change without touching that state.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from connectors._handlers import Context, Delivery, Refuse
from connectors.ministries import civil
from connectors.ministries._common import Lazy, read_csv, read_json, timestamp, utc_now
from connectors.ministries._spec import AgencySpec

__all__ = [
    "ALERT_VERDICT",
    "CERTIFICATE_REQUEST",
    "CERTIFICATE_RESPONSE",
    "SPEC",
    "SUBSYSTEM",
    "ImportDeclaration",
    "IssuedCertificate",
    "ReceivedAlert",
    "Taxpayer",
    "TaxpayerIssue",
    "TaxpayerRegistry",
    "alert_verdict",
    "answer_compliance_certificate",
    "duties_owed",
    "import_duties",
    "issued_certificates",
    "judge_alerts",
    "on_declaration_cleared",
    "on_declaration_lodged",
    "on_suspicious_transaction_alert",
    "received_alerts",
    "reset_state",
    "taxpayer_registry",
]

SUBSYSTEM = "MA/GOV/MEF/TAX"
CERTIFICATE_REQUEST = "tax.compliance-certificate.request"
CERTIFICATE_RESPONSE = "tax.compliance-certificate.response"
DECLARATION_LODGED = "customs.declaration-lodged"
DECLARATION_CLEARED = "customs.declaration-cleared"
SUSPICIOUS_TRANSACTION_ALERT = "treasury.suspicious-transaction-alert"
ALERT_VERDICT = "tax.alert-verdict"

CERTIFICATE_VALIDITY_MONTHS = 6


# -- taxpayers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaxpayerIssue:
    """Something that stands in the way of a certificate (a response reason code)."""

    code: str
    description: str
    period: str | None = None

    def as_reason(self) -> dict[str, str]:
        reason = {"code": self.code, "description": self.description}
        if self.period is not None:
            reason["period"] = self.period
        return reason


@dataclass(frozen=True, slots=True)
class Taxpayer:
    """A registered taxpayer: an individual (with a CNIE) or a company (with an ICE)."""

    taxpayer_id: str
    name: str
    kind: str
    cin: str | None = None
    ice: str | None = None
    issues: tuple[TaxpayerIssue, ...] = ()


class TaxpayerRegistry:
    """Taxpayers by identifiant fiscal, ICE and CNIE. Immutable; safe to share between threads."""

    def __init__(self, taxpayers: Iterable[Taxpayer]) -> None:
        self._by_id: dict[str, Taxpayer] = {}
        self._by_ice: dict[str, Taxpayer] = {}
        self._by_cin: dict[str, Taxpayer] = {}
        for taxpayer in taxpayers:
            self._by_id[taxpayer.taxpayer_id] = taxpayer
            if taxpayer.ice is not None:
                self._by_ice[taxpayer.ice] = taxpayer
            if taxpayer.cin is not None:
                self._by_cin[taxpayer.cin] = taxpayer

    @classmethod
    def from_sample(cls) -> TaxpayerRegistry:
        return cls(_taxpayer(record) for record in read_json("tax_taxpayers.json"))

    def get(self, taxpayer_id: str) -> Taxpayer | None:
        return self._by_id.get(taxpayer_id)

    def find(
        self, *, taxpayer_id: str | None = None, ice: str | None = None, cin: str | None = None
    ) -> Taxpayer | None:
        """The one taxpayer every given identifier designates, or ``None`` if none does.

        Raises :class:`ValueError` when the identifiers designate different taxpayers, or
        one designates a taxpayer and another designates nobody.
        """
        given = [
            (name, value, index)
            for name, value, index in (
                ("taxpayer_id", taxpayer_id, self._by_id),
                ("ice", ice, self._by_ice),
                ("cin", cin, self._by_cin),
            )
            if value is not None
        ]
        found = {index.get(value) for _, value, index in given}
        if len(found) > 1:
            names = " and ".join(name for name, _, _ in given)
            raise ValueError(f"the {names} given do not designate the same taxpayer")
        return found.pop() if found else None

    def __len__(self) -> int:
        return len(self._by_id)

    def ids(self) -> list[str]:
        """Every taxpayer id, sorted."""
        return sorted(self._by_id)


def _taxpayer(record: Mapping[str, Any]) -> Taxpayer:
    return Taxpayer(
        taxpayer_id=record["taxpayer_id"],
        name=record["name"],
        kind=record["kind"],
        cin=record.get("cin"),
        ice=record.get("ice"),
        issues=tuple(
            TaxpayerIssue(issue["code"], issue["description"], issue.get("period"))
            for issue in record["issues"]
        ),
    )


_TAXPAYERS = Lazy(TaxpayerRegistry.from_sample)


def taxpayer_registry() -> TaxpayerRegistry:
    """The process's taxpayer register, loaded from the sample data on first use."""
    return _TAXPAYERS.get()


# -- per-process state ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A compliance certificate this process issued."""

    number: str
    taxpayer_id: str
    issued_at: str
    valid_until: str


class _CertificateBook:
    """Numbers certificates ``ARF-<year>-<serial>`` and remembers what it issued."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._issued: list[IssuedCertificate] = []

    def issue(self, taxpayer_id: str, at: datetime) -> IssuedCertificate:
        valid_until = _add_months(at.date(), CERTIFICATE_VALIDITY_MONTHS)
        with self._lock:
            serial = len(self._issued) + 1
            certificate = IssuedCertificate(
                number=f"ARF-{at.year:04d}-{serial:08d}",
                taxpayer_id=taxpayer_id,
                issued_at=timestamp(at),
                valid_until=valid_until.isoformat(),
            )
            self._issued.append(certificate)
        return certificate

    def issued(self) -> tuple[IssuedCertificate, ...]:
        with self._lock:
            return tuple(self._issued)

    def clear(self) -> None:
        with self._lock:
            self._issued.clear()


@dataclass(frozen=True, slots=True)
class ImportDeclaration:
    """What the tax administration knows of one customs declaration.

    ``status`` is ``"lodged"`` until the release event arrives, then ``"cleared"`` with the
    ``duties`` assessed (``None`` before). Duties are what the importer owes at release.
    """

    declaration_number: str
    importer_tax_id: str
    importer_name: str
    status: str
    customs_value: Decimal | None = None
    duties: Decimal | None = None
    payment_reference: str | None = None


class _ImportLedger:
    """Customs declarations by number; events may arrive twice or out of order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, ImportDeclaration] = {}

    def record_lodged(self, event: Mapping[str, Any]) -> None:
        number = event["declaration_number"]
        with self._lock:
            known = self._entries.get(number)
            if known is not None and known.status == "cleared":
                # the release overtook the lodging: keep the release, add the value
                self._entries[number] = _replace_value(known, event)
                return
            self._entries[number] = ImportDeclaration(
                declaration_number=number,
                importer_tax_id=event["importer"]["tax_id"],
                importer_name=event["importer"]["name"],
                status="lodged",
                customs_value=Decimal(event["total_customs_value"]["amount"]),
            )

    def record_cleared(self, event: Mapping[str, Any]) -> None:
        number = event["declaration_number"]
        with self._lock:
            known = self._entries.get(number)
            self._entries[number] = ImportDeclaration(
                declaration_number=number,
                importer_tax_id=event["importer"]["tax_id"],
                importer_name=event["importer"]["name"],
                status="cleared",
                customs_value=None if known is None else known.customs_value,
                duties=Decimal(event["total_duties"]["amount"]),
                payment_reference=event.get("payment_reference"),
            )

    def entries(self) -> tuple[ImportDeclaration, ...]:
        with self._lock:
            return tuple(self._entries.values())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _replace_value(entry: ImportDeclaration, lodged: Mapping[str, Any]) -> ImportDeclaration:
    return ImportDeclaration(
        declaration_number=entry.declaration_number,
        importer_tax_id=entry.importer_tax_id,
        importer_name=entry.importer_name,
        status=entry.status,
        customs_value=Decimal(lodged["total_customs_value"]["amount"]),
        duties=entry.duties,
        payment_reference=entry.payment_reference,
    )


@dataclass(frozen=True, slots=True)
class ReceivedAlert:
    """A suspicious-transaction alert as received: who sent it and a copy of the payload."""

    message_id: str
    sender: str
    alert: Mapping[str, Any] = field(compare=False)

    @property
    def alert_id(self) -> str:
        return str(self.alert["alert_id"])


class _AlertInbox:
    """Alerts by alert id (a re-sent alert replaces the earlier copy), in arrival order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._alerts: dict[str, ReceivedAlert] = {}

    def record(self, delivery: Delivery) -> None:
        alert = ReceivedAlert(
            delivery.message_id, str(delivery.sender), copy.deepcopy(delivery.payload)
        )
        with self._lock:
            self._alerts[alert.alert_id] = alert

    def alerts(self) -> tuple[ReceivedAlert, ...]:
        with self._lock:
            held = tuple(self._alerts.values())
        return tuple(
            ReceivedAlert(a.message_id, a.sender, copy.deepcopy(dict(a.alert))) for a in held
        )

    def clear(self) -> None:
        with self._lock:
            self._alerts.clear()


_CERTIFICATES = _CertificateBook()
_LEDGER = _ImportLedger()
_ALERTS = _AlertInbox()


def issued_certificates() -> tuple[IssuedCertificate, ...]:
    """The certificates issued by this process, oldest first."""
    return _CERTIFICATES.issued()


def import_duties() -> tuple[ImportDeclaration, ...]:
    """The customs declarations heard of, in the order first heard."""
    return _LEDGER.entries()


def duties_owed(tax_id: str) -> Decimal:
    """The total of the duties assessed at release on the declarations of importer ``tax_id``."""
    return sum(
        (e.duties for e in _LEDGER.entries() if e.importer_tax_id == tax_id and e.duties),
        Decimal(0),
    )


def received_alerts() -> tuple[ReceivedAlert, ...]:
    """Copies of the suspicious-transaction alerts received, in arrival order."""
    return _ALERTS.alerts()


def alert_verdict(
    alert_id: str,
    verdict: str,
    grounds: str,
    *,
    referred: bool | None = None,
    decided_at: datetime | None = None,
) -> dict[str, Any]:
    """A ``tax.alert-verdict`` payload: ``verdict`` is ``confirmed`` or ``dismissed``."""
    payload: dict[str, Any] = {
        "alert_id": alert_id,
        "decided_at": timestamp(decided_at if decided_at is not None else utc_now()),
        "verdict": verdict,
        "grounds": grounds,
    }
    if referred is not None:
        payload["referred"] = referred
    return payload


_FINDINGS = Lazy(lambda: {row["payment_id"]: row for row in read_csv("tax_alert_verdicts.csv")})
_JUDGED: set[str] = set()
_JUDGED_LOCK = threading.Lock()


def judge_alerts(ctx: Context, *, at: datetime | None = None) -> list[dict[str, Any]]:
    """Send the treasury a verdict on each alert received that the investigators have
    looked into (a finding about one of its transactions in the sample) and not yet judged;
    the verdicts sent. An alert whose verdict could not be sent stays to be judged."""
    sent = []
    for received in _ALERTS.alerts():
        with _JUDGED_LOCK:
            if received.alert_id in _JUDGED:
                continue
        found = [
            _FINDINGS.get()[tx["transaction_id"]]
            for tx in received.alert["transactions"]
            if tx["transaction_id"] in _FINDINGS.get()
        ]
        if not found:
            continue  # still under investigation
        finding = found[-1]
        verdict = alert_verdict(
            received.alert_id,
            finding["verdict"],
            finding["grounds"],
            referred=finding["referred"] == "yes",
            decided_at=at,
        )
        ctx.send(ALERT_VERDICT, received.sender, verdict)
        with _JUDGED_LOCK:
            _JUDGED.add(received.alert_id)
        sent.append(verdict)
    return sent


def reset_state() -> None:
    """Forget every certificate, declaration, alert and verdict (for tests and the demo)."""
    _CERTIFICATES.clear()
    _LEDGER.clear()
    _ALERTS.clear()
    with _JUDGED_LOCK:
        _JUDGED.clear()


# -- handlers -------------------------------------------------------------------------------


def answer_compliance_certificate(delivery: Delivery, ctx: Context) -> dict[str, Any]:
    """Answer ``tax.compliance-certificate.request`` with a certificate or the reasons why not.

    When a person is involved (the request gives a CNIE, or the taxpayer found is an
    individual), the civil registry is asked exactly once: a person it does not know makes
    the answer ``non-compliant`` (``unknown-taxpayer``). A company is checked from the tax
    register alone. Refuses (``inconsistent-identifiers``) when the identifiers given name
    different taxpayers, and (``taxpayer-deceased``) when the civil registry records the
    person as deceased: the response schema has no reason for that, and no certificate may
    be issued in a dead person's name. Errors of the civil registry call propagate (a
    transient failure, retried by the runtime).
    """
    request = delivery.payload
    try:
        taxpayer = taxpayer_registry().find(
            taxpayer_id=request.get("taxpayer_id"), ice=request.get("ice"), cin=request.get("cin")
        )
    except ValueError as exc:
        raise Refuse(str(exc), code="inconsistent-identifiers") from exc
    checked_at = utc_now()

    cin = request.get("cin") or (taxpayer.cin if taxpayer is not None else None)
    if cin is not None:
        answer = ctx.request(
            civil.LOOKUP_REQUEST,
            civil.SUBSYSTEM,
            {"cin": cin, "purpose": "tax-assessment", "case_reference": _case_reference(request)},
        )
        if not answer["found"]:
            return _non_compliant(
                checked_at,
                [_unknown(f"The civil registry has no person with CNIE {cin}.")],
            )
        person = answer["person"]
        if person["vital_status"] == "deceased":
            died = person.get("death_date", "an unrecorded date")
            raise Refuse(
                f"the civil registry records the holder of CNIE {cin} as deceased ({died}); "
                "no certificate is issued in a deceased person's name",
                code="taxpayer-deceased",
            )

    if taxpayer is None:
        return _non_compliant(
            checked_at, [_unknown("No taxpayer is registered under the identifiers given.")]
        )
    if taxpayer.issues:
        return _non_compliant(checked_at, [issue.as_reason() for issue in taxpayer.issues])
    certificate = _CERTIFICATES.issue(taxpayer.taxpayer_id, checked_at)
    return {
        "status": "compliant",
        "checked_at": certificate.issued_at,
        "certificate_number": certificate.number,
        "valid_until": certificate.valid_until,
    }


def on_declaration_lodged(delivery: Delivery, ctx: Context) -> None:
    """Record a lodged customs declaration (``customs.declaration-lodged``)."""
    del ctx
    _LEDGER.record_lodged(delivery.payload)


def on_declaration_cleared(delivery: Delivery, ctx: Context) -> None:
    """Record the duties assessed on release (``customs.declaration-cleared``)."""
    del ctx
    _LEDGER.record_cleared(delivery.payload)


def on_suspicious_transaction_alert(delivery: Delivery, ctx: Context) -> None:
    """Keep a treasury alert (``treasury.suspicious-transaction-alert``) for investigation."""
    del ctx
    _ALERTS.record(delivery)


def _case_reference(request: Mapping[str, Any]) -> str:
    tender = request.get("tender_reference")
    if tender is not None:
        return str(tender)
    key = request.get("taxpayer_id") or request.get("ice") or request.get("cin")
    return f"DGI/ARF/{key}"


def _unknown(description: str) -> dict[str, str]:
    return {"code": "unknown-taxpayer", "description": description}


def _non_compliant(checked_at: datetime, reasons: list[dict[str, str]]) -> dict[str, Any]:
    return {"status": "non-compliant", "checked_at": timestamp(checked_at), "reasons": reasons}


def _add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months, on the last day of a shorter month."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, candidate)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")  # pragma: no cover


SPEC = AgencySpec(
    subsystem=SUBSYSTEM,
    title="Tax administration (Ministry of Economy and Finance)",
    handlers=MappingProxyType(
        {
            CERTIFICATE_REQUEST: answer_compliance_certificate,
            DECLARATION_LODGED: on_declaration_lodged,
            DECLARATION_CLEARED: on_declaration_cleared,
            SUSPICIOUS_TRANSACTION_ALERT: on_suspicious_transaction_alert,
        }
    ),
    provides=MappingProxyType({CERTIFICATE_REQUEST: CERTIFICATE_RESPONSE}),
    publishes=(),
    subscribes=(DECLARATION_LODGED, DECLARATION_CLEARED),
    calls=((civil.LOOKUP_REQUEST, "civil"), (ALERT_VERDICT, "treasury")),
    subjects=MappingProxyType({CERTIFICATE_REQUEST: ("taxpayer_id", "cin", "ice")}),
)
