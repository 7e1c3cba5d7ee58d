"""Customs (Administration des douanes et impôts indirects, Ministry of Economy and Finance).

It announces each goods declaration when lodged and again when the goods are released,
with the duties assessed. Declarations come from ``data/customs_declarations.json``; duties
are computed from the tariff extract in ``data/customs_tariff.csv`` (import duty on the
customs value, then VAT on the customs value plus the import duty, each rounded half-up to
the centime). Exports and temporary admission pay no duties.

Its risk service (``MA/GOV/MEF/CUSTOMS-RISK``, composed outside this package because it
runs the models of ``risk``) answers each lodged declaration with a
``customs.risk-assessed`` message: customs keeps the latest per declaration
(:func:`received_assessments`), and when an inspection is over it sends back a
``customs.inspection-result`` (:func:`inspection_result` gives the sample inspections'
findings, from ``data/customs_inspections.csv``: fictitious, like every sample).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Any

from connectors._handlers import Context, Delivery
from connectors.ministries._common import CENT, MAD, Lazy, money, read_csv, read_json, take
from connectors.ministries._spec import AgencySpec

__all__ = [
    "DECLARATION_CLEARED",
    "DECLARATION_LODGED",
    "INSPECTION_RESULT",
    "RISK_ASSESSED",
    "RISK_SUBSYSTEM",
    "SPEC",
    "SUBSYSTEM",
    "Tariff",
    "TariffLine",
    "declarations",
    "inspection_result",
    "on_risk_assessed",
    "received_assessments",
    "reset_state",
    "tariff",
]

SUBSYSTEM = "MA/GOV/MEF/CUSTOMS"
DECLARATION_LODGED = "customs.declaration-lodged"
DECLARATION_CLEARED = "customs.declaration-cleared"
RISK_SUBSYSTEM = "MA/GOV/MEF/CUSTOMS-RISK"
RISK_ASSESSED = "customs.risk-assessed"
INSPECTION_RESULT = "customs.inspection-result"

# Regimes under which duties are collected at release; exports are exempt and temporary
# admission is suspended under guarantee.
_DUTIABLE_REGIMES = frozenset({"import"})
_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class TariffLine:
    """One national tariff line: its designation and its rates in percent."""

    hs_code: str
    description: str
    import_duty_rate: Decimal
    vat_rate: Decimal


class Tariff:
    """The tariff extract, by 10-digit HS code. Immutable; safe to share between threads."""

    def __init__(self, lines: Iterable[TariffLine]) -> None:
        self._lines = {line.hs_code: line for line in lines}

    @classmethod
    def from_sample(cls) -> Tariff:
        return cls(
            TariffLine(
                row["hs_code"],
                row["description"],
                Decimal(row["di_rate"]),
                Decimal(row["tva_rate"]),
            )
            for row in read_csv("customs_tariff.csv")
        )

    def line(self, hs_code: str) -> TariffLine:
        """The line of ``hs_code``; raises :class:`LookupError` when the code is not in it."""
        try:
            return self._lines[hs_code]
        except KeyError:
            raise LookupError(f"HS code {hs_code} is not in the tariff") from None

    def duties(self, hs_code: str, customs_value: Decimal) -> list[dict[str, Any]]:
        """The duty lines (``DI`` then ``TVA``) owed on goods of that code and value, in MAD.

        A tax whose rate is zero is left out.
        """
        line = self.line(hs_code)
        out: list[dict[str, Any]] = []
        import_duty = _percent(customs_value, line.import_duty_rate)
        if line.import_duty_rate:
            out.append(_duty("DI", customs_value, line.import_duty_rate, import_duty))
        if line.vat_rate:
            base = customs_value + import_duty
            out.append(_duty("TVA", base, line.vat_rate, _percent(base, line.vat_rate)))
        return out


_TARIFF = Lazy(Tariff.from_sample)


def tariff() -> Tariff:
    """The process's tariff extract, loaded from the sample data on first use."""
    return _TARIFF.get()


def declarations(limit: int | None = None) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Yield ``(customs.declaration-lodged, customs.declaration-cleared)`` payload pairs.

    One pair per sample declaration, in lodging order; the lodged payload follows schema
    1.1.0 (it carries the customs broker when there is one). Yields at most ``limit`` pairs
    (all when ``None``); raises :class:`ValueError` for a negative limit.
    """
    return take(
        (_pair(record, tariff()) for record in read_json("customs_declarations.json")), limit
    )


def _pair(record: Mapping[str, Any], rates: Tariff) -> tuple[dict[str, Any], dict[str, Any]]:
    dutiable = record["regime"] in _DUTIABLE_REGIMES
    lodged_items: list[dict[str, Any]] = []
    cleared_items: list[dict[str, Any]] = []
    total_value = Decimal(0)
    total_duties = Decimal(0)
    for line_number, item in enumerate(record["items"], start=1):
        value = Decimal(item["customs_value"])
        description = rates.line(item["hs_code"]).description
        lodged: dict[str, Any] = {
            "line": line_number,
            "hs_code": item["hs_code"],
            "description": description,
            "origin_country": item["origin_country"],
            "quantity": {"value": item["quantity"], "unit": item["unit"]},
            "customs_value": money(value),
        }
        if "gross_mass_kg" in item:
            lodged["gross_mass_kg"] = item["gross_mass_kg"]
        duties = rates.duties(item["hs_code"], value) if dutiable else []
        cleared_items.append(
            {
                "line": line_number,
                "hs_code": item["hs_code"],
                "description": description,
                "customs_value": money(value),
                "duties": duties,
            }
        )
        lodged_items.append(lodged)
        total_value += value
        total_duties += sum((Decimal(d["amount"]["amount"]) for d in duties), Decimal(0))

    number = record["declaration_number"]
    lodged_event: dict[str, Any] = {
        "declaration_number": number,
        "office_code": record["office_code"],
        "regime": record["regime"],
        "lodged_at": record["lodged_at"],
        "importer": dict(record["importer"]),
        "items": lodged_items,
        "total_customs_value": money(total_value),
    }
    if "declarant" in record:
        lodged_event["declarant"] = dict(record["declarant"])
    cleared_event: dict[str, Any] = {
        "declaration_number": number,
        "office_code": record["office_code"],
        "cleared_at": record["cleared_at"],
        "release": record["release"],
        "importer": dict(record["importer"]),
        "items": cleared_items,
        "total_duties": money(total_duties),
    }
    if total_duties:
        cleared_event["payment_reference"] = payment_reference(number)
    return lodged_event, cleared_event


def payment_reference(declaration_number: str) -> str:
    """The treasury reference under which a declaration's duties are paid.

    ``301-2026-0001234`` -> ``TGR-2026-301000001234`` (office code and serial, so unique).
    """
    office, year, serial = declaration_number.split("-")
    return f"TGR-{year}-{office}{int(serial):09d}"


def _percent(base: Decimal, rate: Decimal) -> Decimal:
    return (base * rate / _HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)


def _duty(tax: str, base: Decimal, rate: Decimal, amount: Decimal) -> dict[str, Any]:
    return {
        "tax": tax,
        "base": money(base),
        "rate": format(rate.normalize(), "f"),
        "amount": money(amount, MAD),
    }


# -- risk assessments and inspections -------------------------------------------------------


class _Assessments:
    """The latest risk assessment of each declaration (a redelivery or a rescoring replaces
    it), in the order first received."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, dict[str, Any]] = {}

    def keep(self, assessment: Mapping[str, Any]) -> None:
        with self._lock:
            self._latest[assessment["declaration_number"]] = dict(assessment)

    def all(self) -> tuple[dict[str, Any], ...]:
        with self._lock:
            return tuple(self._latest.values())

    def clear(self) -> None:
        with self._lock:
            self._latest.clear()


_ASSESSMENTS = _Assessments()


def on_risk_assessed(delivery: Delivery, ctx: Context) -> None:
    """Keep a ``customs.risk-assessed`` message: the lane the inspectors follow."""
    del ctx
    _ASSESSMENTS.keep(delivery.payload)


def received_assessments() -> tuple[dict[str, Any], ...]:
    """The latest assessment of each declaration, in the order first received."""
    return _ASSESSMENTS.all()


def reset_state() -> None:
    """Forget the assessments received (for tests and the demo)."""
    _ASSESSMENTS.clear()


def inspection_result(declaration_number: str, inspected_at: str) -> dict[str, Any]:
    """The ``customs.inspection-result`` of inspecting a sample declaration: the findings
    of ``data/customs_inspections.csv`` (fraud on the lines listed, with the additional
    duties; a finding of ``documents`` with no duties is no fraud), nothing found for a
    declaration it does not list."""
    findings = [
        row for row in _INSPECTIONS.get() if row["declaration_number"] == declaration_number
    ]
    frauds = [row for row in findings if Decimal(row["additional_duties"]) > 0]
    total = sum((Decimal(row["additional_duties"]) for row in frauds), Decimal(0))
    return {
        "declaration_number": declaration_number,
        "inspected_at": findings[0]["inspected_at"] if findings else inspected_at,
        "fraud_found": bool(frauds),
        "findings": [
            {
                "line": int(row["line"]),
                "kind": row["kind"],
                "additional_duties": money(Decimal(row["additional_duties"])),
            }
            for row in frauds
        ],
        "additional_duties": money(total),
    }


_INSPECTIONS = Lazy(lambda: read_csv("customs_inspections.csv"))


SPEC = AgencySpec(
    subsystem=SUBSYSTEM,
    title="Customs (Ministry of Economy and Finance)",
    handlers=MappingProxyType({RISK_ASSESSED: on_risk_assessed}),
    provides=MappingProxyType({}),
    publishes=(DECLARATION_LODGED, DECLARATION_CLEARED),
    subscribes=(),
    calls=(),
)
