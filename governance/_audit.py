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

The chain alone does not stop whoever can write the database from recomputing every hash
after a change. So the entries are also the leaves of an RFC 6962 Merkle tree (leaf ``n`` is
``SHA-256(0x00 || bytes.fromhex(hash of entry n))``) whose head is signed, with each entry,
by the governance signing key (:class:`AuditSigner`: a key certified by the bus CA, like a
connector's): rewriting then needs that key. And because heads are witnessed (connectors of
other agencies countersign them, :mod:`exchange.log._witness`), :meth:`AuditLog.verify`
with their cosignatures detects a rewrite or a cut even by someone holding the key.

The chain arithmetic (:func:`entry_hash`, :func:`verify_chain`) is pure; :class:`AuditLog`
and :func:`append_entry` are the thin database side. Workflow operations call
:func:`append_entry` inside their own transaction, so a state change and its audit entry
(and the new signed head) commit or fail together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from exchange import (
    CertificateError,
    ExchangeError,
    LogError,
    SubsystemId,
    canonical,
    cert_from_pem,
    cert_to_pem,
    format_time,
    inspect_certificate,
    utcnow,
)
from exchange.log import (
    CompactRange,
    ConsistencyProof,
    Cosignature,
    SignedTreeHead,
    WitnessReport,
    check_witnessed,
    consistency_proof,
    leaf_hash,
    log_keeper,
    utc_timestamp,
    verify_head_signature,
)
from exchange.log._records import head_bytes
from governance._db import AUDIT_SIGNER, GovernanceStore, audit_cosignatures, audit_head, audit_log
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


AUDIT_LOG_SUFFIX = "#audit"


@dataclass(frozen=True, slots=True)
class AuditSigner:
    """The governance signing key that signs the audit log's tree heads: the signing key of a
    subsystem certified by the bus CA (the registry's, e.g. ``MA/GOV/DNUM/REGISTRY``), whose
    audit log is named ``<subsystem>#audit``."""

    subsystem: SubsystemId
    key: Ed25519PrivateKey
    certificate: x509.Certificate

    @property
    def log_id(self) -> str:
        return f"{self.subsystem}{AUDIT_LOG_SUFFIX}"

    def sign(self, size: int, root: bytes, at: str) -> bytes:
        return self.key.sign(head_bytes(self.log_id, size, root, at))


@dataclass(frozen=True, slots=True)
class AuditReport:
    """An intact log: how many entries and the hash of the last (64 zeros when empty), the
    Merkle root, how many entries the signed head covers and who signed it (``None``:
    unsigned), and what the witnesses' cosignatures proved (``None``: none checked)."""

    count: int
    head_hash: str
    last_at: str | None = field(default=None)
    root: str = ""
    signed_size: int = 0
    log_id: str | None = None
    witnessed: WitnessReport | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "head_hash": self.head_hash,
            "last_at": self.last_at,
            "root": self.root,
            "signed_size": self.signed_size,
            "unsigned": self.count - self.signed_size,
            "log": self.log_id,
            "witnessed": self.witnessed.as_dict() if self.witnessed else None,
        }


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


def audit_leaf(entry_hash_hex: str) -> bytes:
    """The Merkle leaf hash of an entry whose chain hash is ``entry_hash_hex``."""
    return leaf_hash(bytes.fromhex(entry_hash_hex))


def _tree(text: str) -> list[bytes]:
    return [bytes.fromhex(node) for node in json.loads(text)]


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
        sa.select(audit_head.c.seq, audit_head.c.hash, audit_head.c.tree)
        .where(audit_head.c.id == 1)
        .with_for_update()
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
    tree = CompactRange(int(head.seq), _tree(head.tree))
    tree.append(audit_leaf(digest))
    root = tree.root()
    values: dict[str, Any] = {
        "seq": draft.seq,
        "hash": digest,
        "tree": json.dumps([node.hex() for node in tree.roots]),
        "root": root.hex(),
    }
    signer: AuditSigner | None = conn.info.get(AUDIT_SIGNER)
    if signer is not None:
        signed_at = utc_timestamp()
        values.update(
            log_id=signer.log_id,
            signed_size=draft.seq,
            signed_root=root.hex(),
            signed_at=signed_at,
            signature=signer.sign(draft.seq, root, signed_at).hex(),
            certificate=cert_to_pem(signer.certificate),
        )
    conn.execute(audit_head.update().where(audit_head.c.id == 1).values(**values))
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

    def verify(
        self,
        *,
        ca_certificate: x509.Certificate | None = None,
        cosignatures: Sequence[Cosignature] = (),
    ) -> AuditReport:
        """Re-hash the whole chain and compare its end with the head; rebuild the Merkle
        tree from the entries and check the signed head against it (its signature by the key
        of its certificate, issued by ``ca_certificate`` to the log's keeper when given, and
        then required); check the tree against the witnesses' cosignatures, those kept in
        the database and ``cosignatures`` (from the witnesses' own records).

        Returns an :class:`AuditReport`; raises :class:`AuditTampered` with the first bad
        seq and the reason (``kind``: ``changed``, ``unsigned``, ``rollback``,
        ``split-view``), or :class:`~governance.StoreError` if the log cannot be read.
        """
        with self._store.transaction("read the audit log") as conn:
            head = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).first()
            rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)).all()
            kept = conn.execute(sa.select(audit_cosignatures)).all()
        if head is None:
            raise AuditTampered(1, "the audit log's head row is missing")
        entries = [_entry(row) for row in rows]
        report = verify_chain(entries, (int(head.seq), str(head.hash)))
        given = [*(_cosignature(row) for row in kept), *cosignatures]
        log_id = head.log_id or _only_log(given)
        wanted = {int(head.signed_size)} | {c.head.size for c in given if c.head.log_id == log_id}
        roots = _roots_at([e.hash for e in entries], wanted)
        root = roots[report.count]
        if root.hex() != head.root:
            raise AuditTampered(report.count, "the head's Merkle root is not the entries' root")
        signed = _signed_head(head)
        if signed is None:
            if ca_certificate is not None:
                raise AuditTampered(
                    1, "the audit log's head is not signed by a governance key", "unsigned"
                )
        else:
            _check_signed_head(signed, head.certificate, roots, ca_certificate)
        witnessed = None
        if log_id is not None and given:
            try:
                witnessed = check_witnessed(
                    log_id, report.count, lambda _s: roots, given, ca_certificate=ca_certificate
                )
            except LogError as exc:
                position = getattr(exc, "position", 0)
                kind = {"log-rollback": "rollback", "log-split-view": "split-view"}.get(
                    exc.code, "changed"
                )
                raise AuditTampered(max(1, position), exc.message, kind) from exc
        return AuditReport(
            count=report.count,
            head_hash=report.head_hash,
            last_at=report.last_at,
            root=root.hex(),
            signed_size=signed.size if signed else 0,
            log_id=log_id,
            witnessed=witnessed,
        )

    # ---- what witnessing needs (tabadul._witnessing) ---------------------------------------

    def signed_head(self) -> SignedTreeHead | None:
        """The latest signed tree head, or None when no entry was ever signed."""
        with self._store.transaction("read the audit head") as conn:
            head = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).one()
        return _signed_head(head)

    def consistency_proof(self, old_size: int, new_size: int) -> ConsistencyProof:
        """Proof that the tree of ``old_size`` entries is a prefix of that of ``new_size``.
        Raises :class:`InvalidInput` for sizes outside the log."""
        with self._store.transaction("read the audit log") as conn:
            hashes = conn.execute(
                sa.select(audit_log.c.hash).order_by(audit_log.c.seq).limit(max(new_size, 0))
            ).scalars()
            leaves = [audit_leaf(h) for h in hashes]
        if not 0 <= old_size <= new_size <= len(leaves):
            raise InvalidInput(
                f"no consistency proof from {old_size} to {new_size} in a log of {len(leaves)}"
            )
        return ConsistencyProof(
            old_size,
            new_size,
            _root(leaves[:old_size]),
            _root(leaves),
            tuple(consistency_proof(leaves, old_size)),
        )

    def keep_cosignature(self, cosignature: Cosignature) -> bool:
        """Store a witness's cosignature of one of this log's heads (after checking its
        signature, and that it cosigns a root this log had at that size). Returns False when
        it was already kept. Raises :class:`InvalidInput` for one that does not hold."""
        try:
            cosignature.verify()
        except LogError as exc:
            raise InvalidInput(exc.message) from exc
        size = cosignature.head.size
        with self._store.transaction("keep a cosignature") as conn:
            hashes = conn.execute(
                sa.select(audit_log.c.hash).order_by(audit_log.c.seq).limit(size)
            ).scalars()
            leaves = [audit_leaf(h) for h in hashes]
            if len(leaves) != size or _root(leaves) != cosignature.head.root_hash:
                raise InvalidInput(
                    f"{cosignature.witness} cosigned a head of size {size} this audit log never had"
                )
            key = sa.and_(
                audit_cosignatures.c.log_id == cosignature.head.log_id,
                audit_cosignatures.c.size == size,
                audit_cosignatures.c.witness == cosignature.witness,
            )
            if conn.execute(sa.select(audit_cosignatures.c.size).where(key)).first():
                return False
            conn.execute(audit_cosignatures.insert(), _cosignature_row(cosignature))
        return True

    def cosignatures(self) -> list[Cosignature]:
        """The cosignatures witnesses sent back, by size."""
        with self._store.transaction("read the cosignatures") as conn:
            rows = conn.execute(
                sa.select(audit_cosignatures).order_by(audit_cosignatures.c.size)
            ).all()
        return [_cosignature(row) for row in rows]


def _root(leaves: Sequence[bytes]) -> bytes:
    tree = CompactRange()
    tree.extend(leaves)
    return tree.root()


def _roots_at(hashes: Sequence[str], sizes: set[int]) -> dict[int, bytes]:
    """The Merkle roots of the first ``n`` entries (by chain hash) for each ``n`` in
    ``sizes``, and for all of them."""
    tree = CompactRange()
    roots = {0: tree.root()} if 0 in sizes else {}
    for digest in hashes:
        tree.append(audit_leaf(digest))
        if tree.size in sizes:
            roots[tree.size] = tree.root()
    roots[tree.size] = tree.root()
    return roots


def _signed_head(head: sa.Row[Any]) -> SignedTreeHead | None:
    if not head.signature or not head.log_id or head.signed_root is None:
        return None
    try:
        return SignedTreeHead(
            size=int(head.signed_size),
            root_hash=bytes.fromhex(head.signed_root),
            timestamp=str(head.signed_at),
            log_id=str(head.log_id),
            signature=bytes.fromhex(head.signature),
        )
    except ValueError as exc:
        raise AuditTampered(1, f"the signed head is malformed: {exc}") from exc


def _check_signed_head(
    head: SignedTreeHead,
    certificate: str | None,
    roots: Mapping[int, bytes],
    ca_certificate: x509.Certificate | None,
) -> None:
    """The signed head covers the entries as they are, and its signature holds."""
    if roots.get(head.size) != head.root_hash:
        raise AuditTampered(
            max(1, head.size),
            f"the entries up to {head.size} are not those the signed head covers "
            "(they were changed after it was signed)",
        )
    try:
        cert = cert_from_pem(certificate or "")
        if ca_certificate is not None:
            info = inspect_certificate(cert, ca_certificate)
            if str(info.subsystem) != log_keeper(head.log_id) or info.usage != "signing":
                raise AuditTampered(
                    1, f"the head's certificate is not a signing certificate of {head.log_id}"
                )
    except CertificateError as exc:
        raise AuditTampered(1, f"the signed head's certificate: {exc.message}") from exc
    key = cert.public_key()
    if not isinstance(key, Ed25519PublicKey) or not verify_head_signature(head, key):
        raise AuditTampered(max(1, head.size), "the signature of the audit log's head is wrong")


def _only_log(cosignatures: Sequence[Cosignature]) -> str | None:
    """The log the cosignatures are about, when the head no longer says (all are audit
    logs' cosignatures of one id)."""
    ids = {c.head.log_id for c in cosignatures if c.head.log_id.endswith(AUDIT_LOG_SUFFIX)}
    return ids.pop() if len(ids) == 1 else None


def _cosignature(row: sa.Row[Any]) -> Cosignature:
    return Cosignature.from_dict(
        {
            "log": row.log_id,
            "size": row.size,
            "root": row.root,
            "at": row.at,
            "head_signature": row.head_signature,
            "witness": row.witness,
            "witnessed_at": row.witnessed_at,
            "signature": row.signature,
            "certificate": row.certificate,
        }
    )


def _cosignature_row(cosignature: Cosignature) -> dict[str, Any]:
    data = cosignature.as_dict()
    return {
        "log_id": data["log"],
        "size": data["size"],
        "witness": data["witness"],
        "root": data["root"],
        "at": data["at"],
        "head_signature": data["head_signature"],
        "witnessed_at": data["witnessed_at"],
        "signature": data["signature"],
        "certificate": data["certificate"],
    }
