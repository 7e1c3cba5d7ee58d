"""The audit log: append-only and hash-chained.

Entry ``n`` stores the hash of entry ``n - 1`` (``prev_hash``; 64 zeros for the first) and its
own hash::

    hash = SHA-256( bytes.fromhex(prev_hash) || canonical({seq, at, actor, action, subject,
                                                          reason, content_sha256, details}) )

with ``canonical`` the project's RFC 8785 bytes (:func:`exchange.canonical`). Because every
hash covers its predecessor and its own ``seq``, changing, deleting, inserting or reordering
entries breaks the chain at the first entry touched (or, for a hash recomputed in place, at
the entry after it). A one-row head (``audit_head``: last seq and hash, written in the same
transaction as the entry) also catches entries cut from the end or added after it.

The chain arithmetic (:func:`entry_hash`, :func:`verify_chain`) is pure; :class:`AuditLog`
and :func:`append_entry` are the thin database side. Workflow operations call
:func:`append_entry` inside their own transaction, so a state change and its audit entry
commit or fail together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from exchange import ExchangeError, canonical, format_time, utcnow
from governance._db import GovernanceStore, audit_head, audit_log
from governance._errors import AuditTampered, InvalidInput

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the audit log, as stored."""

    seq: int
    at: str
    actor: str
    action: str
    subject: str
    reason: str
    content_sha256: str | None
    details: Mapping[str, Any]
    prev_hash: str
    hash: str

    def hashed_fields(self) -> dict[str, Any]:
        """What the hash covers besides ``prev_hash``."""
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "reason": self.reason,
            "content_sha256": self.content_sha256,
            "details": dict(self.details),
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.hashed_fields(), "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True, slots=True)
class AuditReport:
    """An intact log: how many entries and the hash of the last (64 zeros when empty)."""

    count: int
    head_hash: str
    last_at: str | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "head_hash": self.head_hash, "last_at": self.last_at}


def entry_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The hash of an entry whose hashed fields are ``fields``, following ``prev_hash``."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical(dict(fields))).hexdigest()


def verify_chain(entries: Iterable[AuditEntry], head: tuple[int, str]) -> AuditReport:
    """Check ``entries`` (in seq order) form an unbroken chain ending at ``head`` (seq, hash).

    Returns the report, or raises :class:`AuditTampered` with the first bad seq and why.
    """
    expected_seq = 1
    prev = GENESIS
    last_at: str | None = None
    for entry in entries:
        if entry.seq != expected_seq:
            missing = (
                f"entries {expected_seq} to {entry.seq - 1} are"
                if entry.seq - expected_seq > 1
                else f"entry {expected_seq} is"
            )
            raise AuditTampered(expected_seq, f"{missing} missing: the next stored is {entry.seq}")
        if entry.prev_hash != prev:
            raise AuditTampered(
                entry.seq,
                "the chain is broken: its prev_hash is not the hash of "
                + ("the start of the log" if entry.seq == 1 else f"entry {entry.seq - 1}")
                + " (this entry, or the one before it, was changed, inserted or moved)",
            )
        try:
            recomputed = entry_hash(prev, entry.hashed_fields())
        except (ExchangeError, ValueError) as exc:
            raise AuditTampered(entry.seq, f"its fields cannot be hashed: {exc}") from exc
        if recomputed != entry.hash:
            raise AuditTampered(entry.seq, "its content does not match its hash (it was changed)")
        prev = entry.hash
        last_at = entry.at
        expected_seq += 1
    count = expected_seq - 1
    head_seq, head_hash = head
    if head_seq > count:
        raise AuditTampered(
            count + 1,
            f"the log ends at entry {count} but its head records {head_seq} entries "
            "(entries were deleted from the end)",
        )
    if head_seq < count:
        raise AuditTampered(
            head_seq + 1,
            f"entries after {head_seq} were added outside the audit log's head "
            f"(the head records {head_seq} entries, {count} are stored)",
        )
    if head_hash != prev:
        raise AuditTampered(count, "the head's hash is not the hash of the last entry")
    return AuditReport(count=count, head_hash=prev, last_at=last_at)


def append_entry(  # noqa: PLR0913 - keyword-only: the entry's fields
    conn: sa.Connection,
    *,
    actor: str,
    action: str,
    subject: str,
    reason: str = "",
    content_sha256: str | None = None,
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry inside the caller's transaction (it commits with the caller's change).

    Raises :class:`InvalidInput` if ``details`` has no canonical JSON form.
    """
    data = dict(details or {})
    try:
        details_text = canonical(data).decode()
    except ExchangeError as exc:
        raise InvalidInput(f"audit details must be plain JSON: {exc.message}") from exc
    head = conn.execute(
        sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
    ).one()
    draft = AuditEntry(
        seq=int(head.seq) + 1,
        at=format_time(at or utcnow()),
        actor=actor,
        action=action,
        subject=subject,
        reason=reason,
        content_sha256=content_sha256,
        details=json.loads(details_text),
        prev_hash=str(head.hash),
        hash="",
    )
    digest = entry_hash(draft.prev_hash, draft.hashed_fields())
    conn.execute(
        audit_log.insert(),
        {
            **draft.hashed_fields(),
            "details": details_text,
            "prev_hash": draft.prev_hash,
            "hash": digest,
        },
    )
    conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=draft.seq, hash=digest))
    return AuditEntry(**{**draft.as_dict(), "hash": digest})


def _entry(row: sa.Row[Any]) -> AuditEntry:
    try:
        details = json.loads(row.details)
    except ValueError:
        details = {"unparsable": row.details}  # verification reports it: the hash differs
    if not isinstance(details, dict):
        details = {"unparsable": row.details}
    return AuditEntry(
        seq=int(row.seq),
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        reason=row.reason,
        content_sha256=row.content_sha256,
        details=details,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class AuditLog:
    """The audit log of one governance database."""

    def __init__(self, store: GovernanceStore) -> None:
        self._store = store

    def append(  # noqa: PLR0913 - keyword-only: the entry's fields
        self,
        *,
        actor: str,
        action: str,
        subject: str,
        reason: str = "",
        content_sha256: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry in its own transaction (for events that change nothing else)."""
        with self._store.transaction("append to the audit log") as conn:
            return append_entry(
                conn,
                actor=actor,
                action=action,
                subject=subject,
                reason=reason,
                content_sha256=content_sha256,
                details=details,
            )

    def entries(self, *, subject: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        """Entries in seq order; with ``limit``, the last ``limit`` of them."""
        query = sa.select(audit_log)
        if subject is not None:
            query = query.where(audit_log.c.subject == subject)
        if limit is not None:
            query = query.order_by(audit_log.c.seq.desc()).limit(limit)
        else:
            query = query.order_by(audit_log.c.seq)
        with self._store.transaction("read the audit log") as conn:
            rows = conn.execute(query).all()
        found = [_entry(row) for row in rows]
        return sorted(found, key=lambda e: e.seq) if limit is not None else found

    def verify(self) -> AuditReport:
        """Re-hash the whole chain and compare its end with the head.

        Returns an :class:`AuditReport`; raises :class:`AuditTampered` with the first bad
        seq and the reason, or :class:`~governance.StoreError` if the log cannot be read.
        """
        with self._store.transaction("read the audit log") as conn:
            head = conn.execute(
                sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
            ).first()
            rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)).all()
        if head is None:
            raise AuditTampered(1, "the audit log's head row is missing")
        return verify_chain((_entry(row) for row in rows), (int(head.seq), str(head.hash)))
