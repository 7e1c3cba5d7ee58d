"""Where a message log keeps its records: the :class:`LogStore` seam.

A store holds three tables: the records (with each record's stored leaf hash and envelope
bytes), the Merkle tree's nodes (every perfect subtree root, leaves included, keyed by
``(level, index)``), and the signed tree heads. :meth:`LogStore.append` writes all three for a
batch in one transaction. Two implementations: :class:`~exchange.log.SQLiteLogStore` (the
default, stdlib ``sqlite3``) and :class:`~exchange.log.PostgresLogStore` (psycopg 3). They are
the only modules of ``exchange`` that import a database driver; each turns the driver's errors
into :class:`~exchange._errors.LogError` with ``from exc``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from exchange.log._records import LogRecord, SignedTreeHead

NodeKey = tuple[int, int]
"""``(level, index)`` of a perfect subtree: leaves ``[index << level, (index + 1) << level)``."""

Node = tuple[int, int, bytes]
"""``(level, index, hash)``."""

DEFAULT_NAME = "message_log"


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as read back, with the leaf hash that was stored next to it."""

    record: LogRecord
    leaf_hash: bytes


class LogStore(Protocol):
    """Durable storage of one message log. Every method raises ``LogError`` when the
    database fails or does not hold a message log."""

    def append(
        self,
        records: Sequence[StoredRecord],
        nodes: Sequence[Node],
        head: SignedTreeHead | None = None,
    ) -> None:
        """Write the records, the tree nodes they complete and optionally a signed head,
        durably, in one transaction: all or nothing."""
        ...

    def read_range(self, start: int, stop: int) -> list[StoredRecord]:
        """The records with ``start <= seq < stop``, by seq."""
        ...

    def scan(self, batch: int = 2048) -> Iterator[list[StoredRecord]]:
        """Every record by seq, in lists of at most ``batch``, whatever the seq values."""
        ...

    def read_by_message_id(self, message_id: str) -> list[StoredRecord]:
        """The records of this message id (sent, received, rejected...), by seq."""
        ...

    def leaf_hashes(self) -> Iterator[bytes]:
        """The stored leaf hashes of all records, by seq."""
        ...

    def read_nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        """The stored tree nodes among ``keys`` (missing ones are absent)."""
        ...

    def read_heads(self) -> list[SignedTreeHead]:
        """Every signed tree head, by size."""
        ...

    def count(self) -> int:
        """How many records are stored."""
        ...

    def close(self) -> None:
        """Release the connection; the store is unusable afterwards."""
        ...


# the records table of both stores, in the order record_row writes and stored_from_row reads
COLUMNS = (
    "seq, direction, at, message_id, message_type, sender, recipient, reject_code, "
    "envelope_sha256, envelope, leaf_hash"
)


def record_row(stored: StoredRecord) -> tuple[Any, ...]:
    """A stored record as a table row, in the order of :data:`COLUMNS`."""
    r = stored.record
    return (
        r.seq,
        r.direction,
        r.at,
        r.message_id,
        r.message_type,
        r.sender,
        r.recipient,
        r.reject_code,
        r.envelope_sha256,
        r.envelope,
        stored.leaf_hash,
    )


def stored_from_row(row: Sequence[Any]) -> StoredRecord:
    """The inverse of :func:`record_row`."""
    record = LogRecord(
        seq=int(row[0]),
        direction=row[1],
        at=row[2],
        message_id=row[3],
        message_type=row[4],
        sender=row[5],
        recipient=row[6],
        reject_code=row[7],
        envelope_sha256=row[8],
        envelope=bytes(row[9]),
    )
    return StoredRecord(record, bytes(row[10]))
