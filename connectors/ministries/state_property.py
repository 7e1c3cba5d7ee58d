"""State property (Direction des domaines de l'État, Ministry of Economy and Finance).

It answers parcel lookups, by land title number or cadastral reference, from its register
of parcels (``data/property_parcels.json``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from connectors._handlers import Context, Delivery, Refuse
from connectors.ministries._common import Lazy, read_json
from connectors.ministries._spec import AgencySpec

__all__ = [
    "LOOKUP_REQUEST",
    "LOOKUP_RESPONSE",
    "SPEC",
    "SUBSYSTEM",
    "ParcelRegistry",
    "answer_parcel_lookup",
    "parcel_registry",
]

SUBSYSTEM = "MA/GOV/MEF/STATE-PROPERTY"
LOOKUP_REQUEST = "property.parcel-lookup.request"
LOOKUP_RESPONSE = "property.parcel-lookup.response"


class ParcelRegistry:
    """Parcels by land title number and by cadastral reference, shaped as in a response.

    Immutable once built, so worker threads share it without a lock; :meth:`find` hands out
    copies.
    """

    def __init__(self, parcels: Iterable[Mapping[str, Any]]) -> None:
        self._by_title: dict[str, dict[str, Any]] = {}
        self._by_cadastre: dict[str, dict[str, Any]] = {}
        for parcel in parcels:
            record = copy.deepcopy(dict(parcel))
            self._by_title[record["title_number"]] = record
            if "cadastral_reference" in record:
                self._by_cadastre[record["cadastral_reference"]] = record

    @classmethod
    def from_sample(cls) -> ParcelRegistry:
        return cls(read_json("property_parcels.json"))

    def find(
        self, *, title_number: str | None = None, cadastral_reference: str | None = None
    ) -> dict[str, Any] | None:
        """A copy of the parcel every given reference designates, or ``None`` if none does.

        Raises :class:`ValueError` when the references designate different parcels, or one
        designates a parcel and the other designates none.
        """
        matches: list[dict[str, Any] | None] = []
        if title_number is not None:
            matches.append(self._by_title.get(title_number))
        if cadastral_reference is not None:
            matches.append(self._by_cadastre.get(cadastral_reference))
        titles = {None if match is None else match["title_number"] for match in matches}
        if len(titles) > 1:
            raise ValueError("the title number and the cadastral reference name different parcels")
        title = titles.pop() if titles else None
        return None if title is None else copy.deepcopy(self._by_title[title])

    def title_numbers(self) -> tuple[str, ...]:
        return tuple(self._by_title)

    def __len__(self) -> int:
        return len(self._by_title)


_REGISTRY = Lazy(ParcelRegistry.from_sample)


def parcel_registry() -> ParcelRegistry:
    """The process's parcel register, loaded from the sample data on first use."""
    return _REGISTRY.get()


def answer_parcel_lookup(delivery: Delivery, ctx: Context) -> dict[str, Any]:
    """Answer ``property.parcel-lookup.request``: the parcel, or ``{"found": false}``.

    Refuses (``inconsistent-identifiers``) when the title number and the cadastral
    reference given name different parcels.
    """
    del ctx  # answered from the directorate's own register
    request = delivery.payload
    try:
        parcel = parcel_registry().find(
            title_number=request.get("title_number"),
            cadastral_reference=request.get("cadastral_reference"),
        )
    except ValueError as exc:
        raise Refuse(str(exc), code="inconsistent-identifiers") from exc
    if parcel is None:
        return {"found": False}
    return {"found": True, "parcel": parcel}


SPEC = AgencySpec(
    subsystem=SUBSYSTEM,
    title="State property directorate (Ministry of Economy and Finance)",
    handlers=MappingProxyType({LOOKUP_REQUEST: answer_parcel_lookup}),
    provides=MappingProxyType({LOOKUP_REQUEST: LOOKUP_RESPONSE}),
    publishes=(),
    subscribes=(),
    calls=(),
)
