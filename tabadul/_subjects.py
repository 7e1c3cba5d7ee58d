"""Who consulted a data subject's records, gathered from every connector that holds personal
data (the CLI's ``tabadul access-log`` and the API's ``GET /v1/subjects/{id}/accesses``).

Each holder keeps its own access log (:mod:`connectors._access_log`); this reads them all
with the deployment's subject key. A holder that cannot be read is reported as such, with its
error code, rather than hiding the others' records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors import Access, ConnectorError, load_config, subject_accesses


@dataclass(frozen=True, slots=True)
class Consultations:
    """The accesses found, newest first, and the holders that could not be read."""

    accesses: tuple[Access, ...]
    unavailable: tuple[dict[str, str], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "accesses": [a.as_dict() for a in self.accesses],
            "unavailable": list(self.unavailable),
        }


MAX_SUBJECT_ID = 128


def consultations(subject_id: str, configs: Sequence[Path]) -> Consultations:
    """Every recorded consultation of ``subject_id`` at the connectors of ``configs``."""
    found: list[Access] = []
    unavailable = []
    for path in configs:
        try:
            found += subject_accesses(load_config(path), subject_id)
        except ConnectorError as exc:
            unavailable.append({"source": path.name, "code": exc.code, "message": exc.message})
    found.sort(key=lambda a: (a.at, a.message_id), reverse=True)
    return Consultations(tuple(found), tuple(unavailable))
