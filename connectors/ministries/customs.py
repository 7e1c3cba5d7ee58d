"""Customs (Administration des douanes et impôts indirects, Ministry of Economy and Finance).

A publisher only: it announces each goods declaration when lodged and again when the goods
are released, with the duties assessed. Declarations come from
``data/customs_declarations.json``; duties are computed from the tariff extract in
``data/customs_tariff.csv`` (import duty on the customs value, then VAT on the customs value
plus the import duty, each rounded half-up to the centime). Exports and temporary admission
pay no duties.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Any

from connectors.ministries._common import CENT, MAD, Lazy, money, read_csv, read_json, take
from connectors.ministries._spec import AgencySpec

__all__ = [
    "DECLARATION_CLEARED",
    "DECLARATION_LODGED",
    "SPEC",
    "SUBSYSTEM",
    "Tariff",
    "TariffLine",
    "declarations",
    "tariff",
]

SUBSYSTEM = "MA/GOV/MEF/CUSTOMS"
DECLARATION_LODGED = "customs.declaration-lodged"
DECLARATION_CLEARED = "customs.declaration-cleared"

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


SPEC = AgencySpec(
    subsystem=SUBSYSTEM,
    title="Customs (Ministry of Economy and Finance)",
    handlers=MappingProxyType({}),
    provides=MappingProxyType({}),
    publishes=(DECLARATION_LODGED, DECLARATION_CLEARED),
    subscribes=(),
    calls=(),
)
