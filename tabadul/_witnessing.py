"""The governance audit log as a log the registry's connector keeps and has witnessed
(:class:`connectors.Witnessing`), and reading the cosignatures witnesses hold."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from connectors import ConnectorStore, Refuse
from exchange import LogError
from exchange.log import ConsistencyProof, Cosignature, SignedTreeHead
from governance import AuditLog, GovernanceError


class AuditLogKept:
    """The governance audit log, witnessed like a message log (it is ``<subsystem>#audit``,
    kept by the connector of the subsystem whose key signs its heads)."""

    def __init__(self, audit: AuditLog, log_id: str) -> None:
        self._audit = audit
        self._log_id = log_id

    @property
    def log_id(self) -> str:
        return self._log_id

    def signed_head(self) -> SignedTreeHead | None:
        head = self._audit.signed_head()
        return head if head is not None and head.log_id == self._log_id else None

    def consistency_proof(self, old_size: int, new_size: int) -> ConsistencyProof:
        try:
            return self._audit.consistency_proof(old_size, new_size)
        except GovernanceError as exc:
            raise Refuse(exc.message, "bad-range") from exc

    def keep(self, cosignature: Cosignature) -> bool:
        try:
            return self._audit.keep_cosignature(cosignature)
        except GovernanceError as exc:
            raise Refuse(exc.message, "unknown-head") from exc


class CosignaturesUnreadable(Exception):
    """A witness's database or an exported file of cosignatures cannot be read; ``code`` is
    ``cosignatures-unreadable``."""

    code = "cosignatures-unreadable"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}


def read_cosignatures(
    witness_databases: Iterable[str], files: Iterable[Path], log_id: str | None = None
) -> list[Cosignature]:
    """The cosignatures (of ``log_id``, or all) held in witnesses' connector databases and
    in files written by ``tabadul witness export``. Nothing is created: a database file that
    does not exist, or a file that is not such an export, raises
    :class:`CosignaturesUnreadable`."""
    found: list[Cosignature] = []
    for location in witness_databases:
        if "://" not in location and not Path(location).is_file():
            raise CosignaturesUnreadable(f"no witness database at {location}")
        try:
            store = ConnectorStore(location)
        except Exception as exc:
            raise CosignaturesUnreadable(f"cannot open {location}: {exc}") from exc
        try:
            found += store.cosignatures(log_id)
        finally:
            store.close()
    for path in files:
        found += [c for c in _from_file(path) if log_id is None or c.head.log_id == log_id]
    return found


def _from_file(path: Path) -> Sequence[Cosignature]:
    try:
        document = json.loads(path.read_bytes())
        return [Cosignature.from_dict(item) for item in document["cosignatures"]]
    except (OSError, ValueError, KeyError, TypeError, LogError) as exc:
        raise CosignaturesUnreadable(
            f"{path} is not a file of cosignatures (tabadul witness export): {exc}"
        ) from exc


def export_cosignatures(cosignatures: Sequence[Cosignature]) -> bytes:
    """The file ``read_cosignatures`` reads back."""
    document = {"tabadul-cosignatures": 1, "cosignatures": [c.as_dict() for c in cosignatures]}
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
