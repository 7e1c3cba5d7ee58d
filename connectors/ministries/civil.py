"""The civil registry (Direction de l'état civil, Ministry of the Interior).

It answers person lookups by CNIE number from its register and publishes each birth entered
in a civil-status register. The register here is the sample population of
``data/civil_persons.json``; the births are those of ``data/civil_births.csv``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from connectors._handlers import Context, Delivery
from connectors.ministries._common import Lazy, read_csv, read_json, take
from connectors.ministries._spec import AgencySpec

__all__ = [
    "BIRTH_REGISTERED",
    "LOOKUP_REQUEST",
    "LOOKUP_RESPONSE",
    "SPEC",
    "SUBSYSTEM",
    "PersonRegistry",
    "answer_person_lookup",
    "birth_events",
    "person_registry",
]

SUBSYSTEM = "MA/GOV/MOI/CIVIL-REGISTRY"
LOOKUP_REQUEST = "civil.person-lookup.request"
LOOKUP_RESPONSE = "civil.person-lookup.response"
BIRTH_REGISTERED = "civil.birth-registered"


class PersonRegistry:
    """Civil-status records by CNIE number, shaped as the person of a lookup response.

    Immutable once built, so worker threads share it without a lock; :meth:`find` hands out
    copies, so a caller cannot alter the register through what it was given.
    """

    def __init__(self, records: Iterable[Mapping[str, Any]]) -> None:
        self._by_cin: dict[str, dict[str, Any]] = {}
        for record in records:
            cin = record["cin"]
            if cin in self._by_cin:
                raise ValueError(f"CNIE {cin} appears twice in the register")
            self._by_cin[cin] = copy.deepcopy(dict(record))

    @classmethod
    def from_sample(cls) -> PersonRegistry:
        """The register of the shipped sample population."""
        return cls(read_json("civil_persons.json"))

    def find(self, cin: str) -> dict[str, Any] | None:
        """A copy of the record of CNIE ``cin``, or ``None`` when nobody holds it."""
        record = self._by_cin.get(cin)
        return None if record is None else copy.deepcopy(record)

    def cins(self) -> tuple[str, ...]:
        """Every CNIE number in the register, in register order."""
        return tuple(self._by_cin)

    def __contains__(self, cin: object) -> bool:
        return cin in self._by_cin

    def __len__(self) -> int:
        return len(self._by_cin)


_REGISTRY = Lazy(PersonRegistry.from_sample)


def person_registry() -> PersonRegistry:
    """The process's register, loaded from the sample data on first use."""
    return _REGISTRY.get()


def answer_person_lookup(delivery: Delivery, ctx: Context) -> dict[str, Any]:
    """Answer ``civil.person-lookup.request``: the person's record, or ``{"found": false}``."""
    del ctx  # the registry answers from its own register; it calls no one
    person = person_registry().find(delivery.payload["cin"])
    if person is None:
        return {"found": False}
    return {"found": True, "person": person}


def birth_events(limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Yield ``civil.birth-registered`` payloads for the sample births, in register order.

    The child takes the family name of the father when one is declared, of the mother
    otherwise, in both scripts, as recorded for that parent in the register. Yields at most
    ``limit`` payloads (all when ``None``); raises :class:`ValueError` for a negative limit
    and :class:`LookupError` when a birth names a parent missing from the register.
    """
    return take(_births(person_registry()), limit)


def _births(registry: PersonRegistry) -> Iterator[dict[str, Any]]:
    for row in read_csv("civil_births.csv"):
        father_cin = row["father_cin"] or None
        family = registry.find(father_cin or row["mother_cin"])
        if family is None:
            raise LookupError(f"birth act {row['act_number']}: parent not in the register")
        family_names = family["names"]
        child: dict[str, Any] = {
            "names": {
                "latin": {
                    "first_name": row["child_first_name_latin"],
                    "last_name": family_names["latin"]["last_name"],
                },
                "arabic": {
                    "first_name": row["child_first_name_arabic"],
                    "last_name": family_names["arabic"]["last_name"],
                },
            },
            "birth_date": row["birth_date"],
            "birth_time": row["birth_time"],
            "sex": row["sex"],
            "birth_place": row["birth_place"],
        }
        event: dict[str, Any] = {
            "act_number": row["act_number"],
            "registry_office": row["registry_office"],
            "registered_at": row["registered_at"],
            "child": child,
            "mother_cin": row["mother_cin"],
        }
        if father_cin is not None:
            event["father_cin"] = father_cin
        yield event


SPEC = AgencySpec(
    subsystem=SUBSYSTEM,
    title="Civil registry (Ministry of the Interior)",
    handlers=MappingProxyType({LOOKUP_REQUEST: answer_person_lookup}),
    provides=MappingProxyType({LOOKUP_REQUEST: LOOKUP_RESPONSE}),
    publishes=(BIRTH_REGISTERED,),
    subscribes=(),
    calls=(),
    subjects=MappingProxyType({LOOKUP_REQUEST: ("cin",)}),
)
