"""The connector's own database: the seen-store (replay protection), the inbox (accepted
messages waiting for, or done with, their handler) and the stored responses (answered again
to a duplicate request). SQLite file by default, PostgreSQL by URL, through SQLAlchemy Core.

Accepting a batch is one transaction: the ids become *seen* and the messages enter the inbox
together, so a message acknowledged to the broker is never lost and never handled twice
because of a redelivery.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from connectors._access_log import Access
from connectors._errors import AlreadyFinished, StoreError
from exchange import format_time, utcnow
from exchange.log import Cosignature

_meta = sa.MetaData()
seen = sa.Table(
    "seen",
    _meta,
    sa.Column("message_id", sa.String(32), primary_key=True),
    sa.Column("keep_until", sa.String(24), nullable=False, index=True),
)
inbox = sa.Table(
    "inbox",
    _meta,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(32), nullable=False, unique=True),
    sa.Column("envelope", sa.LargeBinary, nullable=False),
    # pending (for a handler), held (for the IS to pull), done, failed
    sa.Column("state", sa.String(8), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("received_at", sa.String(24), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
)
responses = sa.Table(
    "responses",
    _meta,
    sa.Column("request_id", sa.String(32), primary_key=True),
    sa.Column("envelope", sa.LargeBinary, nullable=False),
    sa.Column("created", sa.String(24), nullable=False),
)

# Responses that reached a replica other than the one waiting for them: the waiting replica
# takes its answer from here (replicas of one subsystem share its queue and its database).
answers = sa.Table(
    "answers",
    _meta,
    sa.Column("correlation_id", sa.String(32), primary_key=True),
    sa.Column("envelope", sa.LargeBinary, nullable=False),
    sa.Column("received", sa.String(24), nullable=False, index=True),
)
# Who consulted which data subject (connectors._access_log): one row per answered request
# and subject, the subject as a keyed hash only.
subject_accesses = sa.Table(
    "subject_accesses",
    _meta,
    sa.Column("message_id", sa.String(32), primary_key=True),
    sa.Column("subject", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(260), nullable=False),
    sa.Column("at", sa.String(24), nullable=False),
    sa.Column("requester", sa.String(260), nullable=False),
    sa.Column("message_type", sa.String(200), nullable=False),
    sa.Column("purpose", sa.String(64), nullable=False),
    sa.Column("legal_basis", sa.Text, nullable=False),
    sa.Column("legal_reference", sa.Text, nullable=False),
    sa.Column("outcome", sa.String(64), nullable=False),
    sa.Index("ix_subject_accesses_subject", "subject", "at"),
)
# Cosignatures of log heads (exchange.log.Cosignature): a witness's own (witness = this
# subsystem) and those witnesses sent back for this subsystem's logs.
cosignatures = sa.Table(
    "cosignatures",
    _meta,
    sa.Column("log_id", sa.String(300), primary_key=True),
    sa.Column("size", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("witness", sa.String(260), primary_key=True),
    sa.Column("document", sa.Text, nullable=False),  # Cosignature.as_dict() as JSON
)
# What became of each event and one-way message this subsystem sent, per recipient (per
# subscriber for an event): confirmed by the broker, then received or refused (with the code)
# by the receiver's receipt, then handled or failed (and failed -> handled once the receiver
# resent the dead letter to its fixed handler). A state never goes back.
deliveries = sa.Table(
    "deliveries",
    _meta,
    sa.Column("message_id", sa.String(32), primary_key=True),
    sa.Column("party", sa.String(260), primary_key=True),
    sa.Column("message_type", sa.String(200), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("code", sa.String(64), nullable=True),
    sa.Column("at", sa.String(24), nullable=False),
)
# What reached this subsystem's dead-letter queue, kept once taken off the queue (the queue is
# the intake, this table the record): ``key`` (the code and the bytes' digest) makes taking in
# idempotent; ``state`` is waiting, then resent or discarded, each step in dead_letter_actions.
dead_letters = sa.Table(
    "dead_letters",
    _meta,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False, unique=True),
    sa.Column("message_id", sa.String(64), nullable=False, index=True),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("envelope", sa.LargeBinary, nullable=False),
    sa.Column("arrived", sa.String(24), nullable=False),
    sa.Column("state", sa.String(10), nullable=False, index=True),
)
dead_letter_actions = sa.Table(
    "dead_letter_actions",
    _meta,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dead_letter", sa.Integer, nullable=False, index=True),
    sa.Column("action", sa.String(10), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.String(24), nullable=False),
)
DEAD_LETTER_STATES = ("waiting", "resent", "discarded")  # actions: resent, discarded, returned
DELIVERY_STATES = ("confirmed", "received", "refused", "handled", "failed")
_RANK = {"confirmed": 0, "received": 1, "refused": 2, "failed": 2, "handled": 3}


def _delivery_upsert(paramstyle: str, schema: str | None) -> str:
    """The statement that inserts a delivery state, or moves an existing one on when the
    new state is further (the same SQL for SQLite and PostgreSQL; issued at the driver
    level: per row, SQLAlchemy's compiled upsert costs several times the database's work)."""
    table = f'"{schema}".deliveries' if schema else "deliveries"
    mark = "?" if paramstyle == "qmark" else "%s"
    rank = " ".join(f"WHEN '{state}' THEN {n}" for state, n in _RANK.items())
    return (
        f"INSERT INTO {table} AS d (message_id, party, message_type, state, code, at) "  # noqa: S608 - constants and the configured schema
        f"VALUES ({', '.join([mark] * 6)}) ON CONFLICT (message_id, party) DO UPDATE SET "
        "state = excluded.state, code = excluded.code, at = excluded.at "
        f"WHERE (CASE excluded.state {rank} END) > (CASE d.state {rank} END)"
    )


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """One step of a message towards one party (``code``: the reject code, or why it failed)."""

    message_id: str
    party: str
    message_type: str
    state: str
    code: str | None = None
    at: str = ""

    def as_dict(self) -> dict[str, str | None]:
        return {"party": self.party, "state": self.state, "code": self.code, "at": self.at}


@dataclass(frozen=True, slots=True)
class DeadLetterIn:
    """A message taken off the dead-letter queue: its id (as the broker had it), the reject
    code and reason, its bytes as they came."""

    message_id: str
    code: str
    reason: str
    envelope: bytes

    @property
    def key(self) -> str:
        digest = hashlib.sha256(self.code.encode() + b"\n" + self.envelope)
        return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class DeadLetterAction:
    action: str
    actor: str
    reason: str
    at: str

    def as_dict(self) -> dict[str, str]:
        return {"action": self.action, "actor": self.actor, "reason": self.reason, "at": self.at}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A kept dead letter (``seq`` numbers it in this subsystem) and what was done with it."""

    seq: int
    message_id: str
    code: str
    reason: str
    envelope: bytes = field(repr=False)
    arrived: str
    state: str
    actions: tuple[DeadLetterAction, ...] = ()


# An answer nobody took within this long (its requester gave up or died) is pruned.
ANSWER_KEPT = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message to accept: its id, how long to remember it, its envelope bytes."""

    message_id: str
    keep_until: datetime
    envelope: bytes


@dataclass(frozen=True, slots=True)
class InboxEntry:
    message_id: str
    envelope: bytes
    attempts: int


def database_url(location: str) -> str:
    """A SQLAlchemy URL: ``postgresql://`` URLs use psycopg 3; anything else is a SQLite file."""
    if location.startswith(("postgresql://", "postgresql+psycopg://")):
        return location.replace("postgresql://", "postgresql+psycopg://", 1)
    if location.startswith("sqlite:"):
        return location
    return f"sqlite:///{location}"


class ConnectorStore:
    """The database of one connector. Thread-safe; every failure raises :class:`StoreError`."""

    def __init__(
        self, location: str, *, schema: str | None = None, remember_seen: bool = True
    ) -> None:
        """``remember_seen=False``: no seen ids loaded into memory (a reader of the database
        beside the running connector, e.g. the dead-letter desk of the CLI)."""
        url = database_url(location)
        self._sqlite = url.startswith("sqlite")
        try:
            self._engine = sa.create_engine(url, pool_pre_ping=True)
            if self._sqlite:
                sa.event.listen(self._engine, "connect", _sqlite_pragmas)
            elif schema:
                self._engine = self._engine.execution_options(schema_translate_map={None: schema})
                with self._engine.begin() as conn:
                    conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            _meta.create_all(self._engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the connector database: {exc}") from exc
        self._lock = threading.Lock()
        self._seen_cache: set[str] = self._load_seen() if remember_seen else set()
        self._upsert_delivery = _delivery_upsert(self._engine.dialect.paramstyle, schema)

    def _load_seen(self) -> set[str]:
        """The ids still remembered (bounded by the freshness window), for fast checks."""
        now = format_time(utcnow())
        with self._tx("load the seen-store") as conn:
            rows = conn.execute(sa.select(seen.c.message_id).where(seen.c.keep_until >= now))
            return {row.message_id for row in rows}

    @contextmanager
    def _tx(self, what: str) -> Iterator[sa.Connection]:
        try:
            with self._lock, self._engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"connector database failed to {what}: {exc}") from exc

    # ---- seen-store (exchange.SeenStore) ------------------------------------------------

    def contains(self, message_id: str) -> bool:
        """Whether this process saw the id (memory only: the inspector asks for every message).
        The durable check is :meth:`already_seen`, one query per batch, which also catches
        ids accepted by another replica or before a restart."""
        return message_id in self._seen_cache

    def already_seen(self, message_ids: Sequence[str]) -> set[str]:
        """Which of ``message_ids`` the database already holds as seen."""
        if not message_ids:
            return set()
        with self._tx("read the seen-store") as conn:
            rows = conn.execute(
                sa.select(seen.c.message_id).where(seen.c.message_id.in_(message_ids))
            ).all()
        found = {row.message_id for row in rows}
        self._seen_cache.update(found)
        return found

    def add(self, message_id: str, keep_until: datetime) -> None:
        self.accept([], also_seen=[(message_id, keep_until)])

    def remember(self, message_id: str) -> None:
        """Remember an id in memory only (responses to our own requests)."""
        self._seen_cache.add(message_id)

    # ---- inbox ---------------------------------------------------------------------------

    def accept(
        self,
        batch: Sequence[Accepted],
        *,
        also_seen: Sequence[tuple[str, datetime]] = (),
    ) -> None:
        """Record ``batch`` as seen and pending in one transaction (plus ids that are only
        to be remembered, e.g. responses to our own requests)."""
        seen_rows = [
            {"message_id": a.message_id, "keep_until": format_time(a.keep_until)} for a in batch
        ] + [{"message_id": i, "keep_until": format_time(k)} for i, k in also_seen]
        try:
            with self._tx("accept messages") as conn:
                if seen_rows:
                    conn.execute(seen.insert(), seen_rows)
                if batch:
                    now = format_time(utcnow())  # the lease starts once the lock is held
                    conn.execute(
                        inbox.insert(),
                        [
                            {
                                "message_id": a.message_id,
                                "envelope": a.envelope,
                                "state": "pending",
                                "attempts": 0,
                                "received_at": now,
                            }
                            for a in batch
                        ],
                    )
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise StoreError(f"a message of the batch was already accepted: {exc}") from exc
            raise
        self._seen_cache.update(row["message_id"] for row in seen_rows)

    def pending(self, limit: int = 1000) -> list[InboxEntry]:
        """Accepted messages whose handler has not finished, oldest first."""
        with self._tx("read the inbox") as conn:
            rows = conn.execute(
                sa.select(inbox.c.message_id, inbox.c.envelope, inbox.c.attempts)
                .where(inbox.c.state == "pending")
                .order_by(inbox.c.seq)
                .limit(limit)
            ).all()
        return [InboxEntry(r.message_id, bytes(r.envelope), r.attempts) for r in rows]

    def touch(self, message_ids: Collection[str]) -> None:
        """Renew the lease of pending entries this replica has in hand (see claim_stale)."""
        if not message_ids:
            return
        with self._tx("renew inbox leases") as conn:
            conn.execute(
                inbox.update()
                .where(inbox.c.message_id.in_(list(message_ids)), inbox.c.state == "pending")
                .values(received_at=format_time(utcnow()))
            )

    def claim_stale(
        self, untouched_since: datetime, exclude: Collection[str], limit: int = 500
    ) -> list[InboxEntry]:
        """Pending entries nobody has touched since ``untouched_since``: a replica that had
        them in hand stopped, however it stopped (its lease, ``received_at``, is renewed by
        :meth:`touch` while it lives). Entries in ``exclude`` (our own) are left. Each entry
        is claimed by renewing its lease only if nobody renewed it first, so two replicas
        never take over the same entry."""
        now = format_time(utcnow())
        claimed = []
        with self._tx("take over stale inbox entries") as conn:
            rows = conn.execute(
                sa.select(
                    inbox.c.message_id, inbox.c.envelope, inbox.c.attempts, inbox.c.received_at
                )
                .where(
                    inbox.c.state == "pending", inbox.c.received_at < format_time(untouched_since)
                )
                .order_by(inbox.c.seq)
                .limit(limit)
            ).all()
            for row in rows:
                if row.message_id in exclude:
                    continue
                taken = conn.execute(
                    inbox.update()
                    .where(
                        inbox.c.message_id == row.message_id,
                        inbox.c.state == "pending",
                        inbox.c.received_at == row.received_at,
                    )
                    .values(received_at=now)
                )
                if taken.rowcount == 1:
                    claimed.append(InboxEntry(row.message_id, bytes(row.envelope), row.attempts))
        return claimed

    def finish(
        self,
        message_id: str,
        *,
        response: tuple[str, bytes] | None = None,
        failed: str = "",
        accesses: Sequence[Access] = (),
    ) -> None:
        """Mark a handled message done (storing the response to a request, and the access
        log records of the subjects it was about, in the same transaction) or failed with a
        reason."""
        with self._tx("record a handled message") as conn:
            finish_on(conn, message_id, response=response, failed=failed, accesses=accesses)

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A transaction of its own for a transactional handler and its done mark
        (:func:`finish_on`). It does not take the lock the runtime's other writes share, so
        the receive path goes on meanwhile (on SQLite it waits for the write lock, within
        the busy timeout, once the handler wrote)."""
        try:
            with self._engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(
                f"connector database failed in a handler's transaction: {exc}"
            ) from exc

    def create_tables(self, metadata: sa.MetaData) -> None:
        """Create a transactional handler's own tables (those missing)."""
        with self._tx("create a handler's tables") as conn:
            metadata.create_all(conn)

    def finish_many(self, message_ids: Sequence[str]) -> None:
        """Mark handled messages (not requests) done, in one transaction."""
        if not message_ids:
            return
        with self._tx("record handled messages") as conn:
            conn.execute(
                inbox.update().where(inbox.c.message_id.in_(message_ids)).values(state="done")
            )

    def note_deliveries(self, steps: Sequence[DeliveryState]) -> None:
        """Record these steps, each only if it is further than what is known of its message
        and party (a receipt may overtake the broker's confirm): one upsert statement for
        all, in one transaction."""
        if not steps:
            return
        rows: dict[tuple[str, str], tuple[str, str, str, str, str | None, str]] = {}
        now = format_time(utcnow())
        for step in steps:
            key = (step.message_id, step.party)
            if key not in rows or _RANK[step.state] > _RANK[rows[key][3]]:
                at = step.at or now
                rows[key] = (*key, step.message_type, step.state, step.code, at)
        with self._tx("record delivery states") as conn:
            conn.exec_driver_sql(self._upsert_delivery, list(rows.values()))

    def delivery_states(self, message_id: str) -> list[DeliveryState]:
        """What is known of ``message_id``'s delivery, per party."""
        with self._tx("read delivery states") as conn:
            rows = conn.execute(
                sa.select(deliveries)
                .where(deliveries.c.message_id == message_id)
                .order_by(deliveries.c.party)
            ).all()
        return [
            DeliveryState(r.message_id, r.party, r.message_type, r.state, r.code, r.at)
            for r in rows
        ]

    # ---- dead letters --------------------------------------------------------------------

    def keep_dead_letters(self, letters: Sequence[DeadLetterIn]) -> int:
        """Keep dead letters taken off the queue; returns how many are waiting anew. The same
        bytes with the same code are one dead letter: taken in again while it waits (after a
        crash before its acknowledgement) it changes nothing; coming back after it was
        resolved (a resent message failing again, a forgery sent again) it waits again, the
        return recorded among its actions."""
        if not letters:
            return 0
        with self._tx("keep dead letters") as conn:
            return keep_dead_letters_on(conn, letters)

    def fail_as_dead_letter(self, message_id: str, reason: str, letter: DeadLetterIn) -> None:
        """Mark an inbox entry failed for good and keep it as a dead letter, in one
        transaction (what the handler side does after the last attempt)."""
        with self._tx("record a failed message") as conn:
            finish_on(conn, message_id, failed=reason)
            keep_dead_letters_on(conn, [letter])

    def dead_letters(
        self, *, state: str | None = None, after: int = 0, limit: int = 100
    ) -> list[DeadLetter]:
        """Kept dead letters numbered after ``after``, oldest first (without their actions)."""
        query = sa.select(dead_letters).where(dead_letters.c.seq > after)
        if state is not None:
            query = query.where(dead_letters.c.state == state)
        with self._tx("read dead letters") as conn:
            rows = conn.execute(query.order_by(dead_letters.c.seq).limit(limit)).all()
        return [_dead_letter(row) for row in rows]

    def dead_letter(self, seq: int) -> DeadLetter | None:
        """Dead letter ``seq`` with what was done with it, or None."""
        with self._tx("read a dead letter") as conn:
            return _dead_letter_on(conn, seq)

    def resolve_dead_letter(
        self, seq: int, action: str, *, actor: str, reason: str, reopen: str | None = None
    ) -> DeadLetter | None:
        """Mark waiting dead letter ``seq`` ``action`` (resent or discarded) and record who did
        it and why, in one transaction; with ``reopen``, that failed inbox entry is pending
        again in the same transaction, with no attempts and an expired lease, so a running
        replica's lease sweep takes it (or the next start resumes it). None when ``seq`` is
        no longer waiting, or ``reopen`` names no failed entry: nothing is changed."""
        now = format_time(utcnow())
        try:
            with self._tx("resolve a dead letter") as conn:
                marked = conn.execute(
                    dead_letters.update()
                    .where(dead_letters.c.seq == seq, dead_letters.c.state == "waiting")
                    .values(state=action)
                )
                if marked.rowcount != 1:
                    return None
                if reopen is not None:
                    _reopen_on(conn, reopen)
                conn.execute(
                    dead_letter_actions.insert(),
                    {
                        "dead_letter": seq,
                        "action": action,
                        "actor": actor,
                        "reason": reason,
                        "at": now,
                    },
                )
                return _dead_letter_on(conn, seq)
        except _Unchanged:  # rolled back
            return None

    def inbox_state(self, message_id: str) -> str | None:
        """The state of an inbox entry (pending, held, done, failed), or None."""
        with self._tx("read an inbox entry") as conn:
            found: str | None = conn.execute(
                sa.select(inbox.c.state).where(inbox.c.message_id == message_id)
            ).scalar()
        return found

    def hold(self, message_id: str) -> None:
        """Keep a handled message for the information system to pull."""
        with self._tx("hold a message") as conn:
            conn.execute(
                inbox.update().where(inbox.c.message_id == message_id).values(state="held")
            )

    def held(self, limit: int = 100) -> list[InboxEntry]:
        """Messages waiting to be pulled, oldest first."""
        with self._tx("read held messages") as conn:
            rows = conn.execute(
                sa.select(inbox.c.message_id, inbox.c.envelope, inbox.c.attempts)
                .where(inbox.c.state == "held")
                .order_by(inbox.c.seq)
                .limit(limit)
            ).all()
        return [InboxEntry(r.message_id, bytes(r.envelope), r.attempts) for r in rows]

    def release(self, message_ids: Sequence[str]) -> int:
        """Mark pulled messages done; returns how many were held (unknown ids are ignored)."""
        if not message_ids:
            return 0
        with self._tx("release pulled messages") as conn:
            result = conn.execute(
                inbox.update()
                .where(inbox.c.message_id.in_(message_ids), inbox.c.state == "held")
                .values(state="done")
            )
        return int(result.rowcount or 0)

    def attempted(self, message_id: str) -> int:
        """Count one more attempt at handling ``message_id``; returns the new count."""
        with self._tx("count an attempt") as conn:
            conn.execute(
                inbox.update()
                .where(inbox.c.message_id == message_id)
                .values(attempts=inbox.c.attempts + 1)
            )
            count = conn.execute(
                sa.select(inbox.c.attempts).where(inbox.c.message_id == message_id)
            ).scalar_one()
        return int(count)

    def response_for(self, request_id: str) -> bytes | None:
        with self._tx("read a stored response") as conn:
            found = conn.execute(
                sa.select(responses.c.envelope).where(responses.c.request_id == request_id)
            ).first()
        return None if found is None else bytes(found.envelope)

    def keep_answer(self, correlation_id: str, envelope: bytes) -> None:
        """Keep a verified response for the replica that waits for it (kept once)."""
        row = {
            "correlation_id": correlation_id,
            "envelope": envelope,
            "received": format_time(utcnow()),
        }
        try:
            with self._tx("keep an answer") as conn:
                conn.execute(answers.insert(), row)
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):  # kept already: fine
                raise

    def take_answer(self, correlation_id: str) -> bytes | None:
        """The kept response to request ``correlation_id``, removed as it is taken."""
        with self._tx("take an answer") as conn:
            found = conn.execute(
                answers.delete()
                .where(answers.c.correlation_id == correlation_id)
                .returning(answers.c.envelope)
            ).first()
        return None if found is None else bytes(found.envelope)

    def accesses(self, subject: str, limit: int = 1000) -> list[Access]:
        """The consultations of the subject whose keyed hash is ``subject``, newest first."""
        with self._tx("read the access log") as conn:
            rows = conn.execute(
                sa.select(subject_accesses)
                .where(subject_accesses.c.subject == subject)
                .order_by(subject_accesses.c.at.desc(), subject_accesses.c.message_id)
                .limit(limit)
            ).all()
        return [
            Access(
                holder=r.holder,
                subject=r.subject,
                at=r.at,
                requester=r.requester,
                message_type=r.message_type,
                purpose=r.purpose,
                legal_basis=r.legal_basis,
                legal_reference=r.legal_reference,
                message_id=r.message_id,
                outcome=r.outcome,
            )
            for r in rows
        ]

    def keep_cosignature(self, cosignature: Cosignature) -> bool:
        """Store a cosignature; False when one of that witness for that size is kept."""
        head = cosignature.head
        try:
            with self._tx("keep a cosignature") as conn:
                conn.execute(
                    cosignatures.insert(),
                    {
                        "log_id": head.log_id,
                        "size": head.size,
                        "witness": cosignature.witness,
                        "document": json.dumps(cosignature.as_dict()),
                    },
                )
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                return False
            raise
        return True

    def cosignatures(
        self, log_id: str | None = None, *, witness: str | None = None
    ) -> list[Cosignature]:
        """Kept cosignatures (of ``log_id``, by ``witness``), by log and size."""
        query = sa.select(cosignatures.c.document).order_by(
            cosignatures.c.log_id, cosignatures.c.size
        )
        if log_id is not None:
            query = query.where(cosignatures.c.log_id == log_id)
        if witness is not None:
            query = query.where(cosignatures.c.witness == witness)
        with self._tx("read cosignatures") as conn:
            documents = conn.execute(query).scalars().all()
        return [Cosignature.from_dict(json.loads(d)) for d in documents]

    def counts(self) -> dict[str, int]:
        """Inbox entries by state (for /health and tests)."""
        with self._tx("count the inbox") as conn:
            rows = conn.execute(
                sa.select(inbox.c.state, sa.func.count()).group_by(inbox.c.state)
            ).all()
        return {state: int(n) for state, n in rows}

    def prune(self, now: datetime | None = None) -> int:
        """Forget ids past their keep-until time (they would be refused as stale anyway)."""
        cutoff = format_time(now or utcnow())
        with self._tx("prune the seen-store") as conn:
            result = conn.execute(seen.delete().where(seen.c.keep_until < cutoff))
            stale = format_time((now or utcnow()) - ANSWER_KEPT)
            conn.execute(answers.delete().where(answers.c.received < stale))
        self._seen_cache = self._load_seen()
        return int(result.rowcount or 0)

    def ping(self) -> bool:
        try:
            with self._tx("answer a ping") as conn:
                conn.execute(sa.text("SELECT 1"))
        except StoreError:
            return False
        return True

    def close(self) -> None:
        self._engine.dispose()


def finish_on(
    conn: sa.Connection,
    message_id: str,
    *,
    response: tuple[str, bytes] | None = None,
    failed: str = "",
    accesses: Sequence[Access] = (),
) -> None:
    """:meth:`ConnectorStore.finish` within the transaction ``conn``."""
    conn.execute(
        inbox.update()
        .where(inbox.c.message_id == message_id)
        .values(state="failed" if failed else "done", error=failed or None)
    )
    _record_answer(conn, response, accesses)


def finish_pending_on(
    conn: sa.Connection,
    message_id: str,
    *,
    response: tuple[str, bytes] | None = None,
    accesses: Sequence[Access] = (),
) -> None:
    """Mark a pending entry done within the transaction ``conn`` (with a request's response
    and access records); raises :class:`AlreadyFinished` when it was no longer pending."""
    marked = conn.execute(
        inbox.update()
        .where(inbox.c.message_id == message_id, inbox.c.state == "pending")
        .values(state="done", error=None)
    )
    if marked.rowcount != 1:
        raise AlreadyFinished(f"message {message_id} was already finished")
    _record_answer(conn, response, accesses)


def _record_answer(
    conn: sa.Connection, response: tuple[str, bytes] | None, accesses: Sequence[Access]
) -> None:
    if accesses:
        conn.execute(subject_accesses.insert(), [_access_row(a) for a in accesses])
    if response is not None:
        conn.execute(
            responses.insert(),
            {"request_id": response[0], "envelope": response[1], "created": format_time(utcnow())},
        )


_LONG_AGO = "1970-01-01T00:00:00.000Z"


class _Unchanged(Exception):
    """Raised inside a transaction to roll it back."""


def _reopen_on(conn: sa.Connection, message_id: str) -> None:
    """A failed inbox entry pending again, with no attempts and an expired lease; raises
    :class:`_Unchanged` when ``message_id`` names no failed entry."""
    reopened = conn.execute(
        inbox.update()
        .where(inbox.c.message_id == message_id, inbox.c.state == "failed")
        .values(state="pending", attempts=0, error=None, received_at=_LONG_AGO)
    )
    if reopened.rowcount != 1:
        raise _Unchanged


def _dead_letter(row: Any, actions: tuple[DeadLetterAction, ...] = ()) -> DeadLetter:
    return DeadLetter(
        row.seq,
        row.message_id,
        row.code,
        row.reason,
        bytes(row.envelope),
        row.arrived,
        row.state,
        actions,
    )


def _dead_letter_on(conn: sa.Connection, seq: int) -> DeadLetter | None:
    row = conn.execute(sa.select(dead_letters).where(dead_letters.c.seq == seq)).first()
    if row is None:
        return None
    steps = conn.execute(
        sa.select(dead_letter_actions)
        .where(dead_letter_actions.c.dead_letter == seq)
        .order_by(dead_letter_actions.c.seq)
    ).all()
    return _dead_letter(
        row, tuple(DeadLetterAction(s.action, s.actor, s.reason, s.at) for s in steps)
    )


def keep_dead_letters_on(conn: sa.Connection, letters: Sequence[DeadLetterIn]) -> int:
    """:meth:`ConnectorStore.keep_dead_letters` within the transaction ``conn``."""
    now = format_time(utcnow())
    fresh = {letter.key: letter for letter in letters}
    known = {
        row.key: row
        for row in conn.execute(
            sa.select(dead_letters.c.key, dead_letters.c.seq, dead_letters.c.state).where(
                dead_letters.c.key.in_(list(fresh))
            )
        )
    }
    new = [
        {
            "key": key,
            "message_id": letter.message_id[:64],
            "code": letter.code[:64],
            "reason": letter.reason,
            "envelope": letter.envelope,
            "arrived": now,
            "state": "waiting",
        }
        for key, letter in fresh.items()
        if key not in known
    ]
    if new:
        conn.execute(dead_letters.insert(), new)
    back = [row for row in known.values() if row.state != "waiting"]
    for row in back:
        conn.execute(
            dead_letters.update().where(dead_letters.c.seq == row.seq).values(state="waiting")
        )
        conn.execute(
            dead_letter_actions.insert(),
            {
                "dead_letter": row.seq,
                "action": "returned",
                "actor": "connector",
                "reason": fresh[row.key].reason,
                "at": now,
            },
        )
    return len(new) + len(back)


def _access_row(access: Access) -> dict[str, str]:
    return {
        "message_id": access.message_id,
        "subject": access.subject,
        "holder": access.holder,
        "at": access.at,
        "requester": access.requester,
        "message_type": access.message_type,
        "purpose": access.purpose,
        "legal_basis": access.legal_basis,
        "legal_reference": access.legal_reference,
        "outcome": access.outcome,
    }


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
