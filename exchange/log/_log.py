"""The non-repudiation message log: an append-only RFC 6962 Merkle tree of every message a
connector sent, received or rejected, with Ed25519-signed tree heads.

Appends are group-committed: :meth:`MessageLog.append` queues, :meth:`MessageLog.flush`
writes everything queued, the tree nodes it completes and (with a key) a new signed head in
one transaction. :func:`verify_log` re-derives the tree from the stored record fields and
checks it against the stored signed heads; it names the first record that is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from exchange._errors import ExchangeError, LogError, LogIntegrityError
from exchange.log import _merkle
from exchange.log._records import (
    LogEntry,
    LogRecord,
    SignedTreeHead,
    check_timestamp,
    head_bytes,
    make_record,
)
from exchange.log._store import LogStore, Node, NodeKey, StoredRecord

if TYPE_CHECKING:
    from exchange.log._witness import Cosignature, WitnessReport


def utc_timestamp(moment: datetime | None = None) -> str:
    """``moment`` (default: now) as RFC 3339 UTC with milliseconds."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def verify_head_signature(head: SignedTreeHead, public_key: Ed25519PublicKey) -> bool:
    """Whether ``head.signature`` is the Ed25519 signature of ``public_key`` over
    ``head.signed_bytes()``; ``False`` for a bad signature or a malformed head."""
    try:
        public_key.verify(head.signature, head.signed_bytes())
    except (InvalidSignature, ValueError, TypeError, ExchangeError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Evidence that ``record`` is leaf ``index`` of the log's tree of ``size`` records
    whose root is ``root``: ``proof`` is the RFC 6962 audit path, ``head`` the signed head
    for that tree (``None`` for a log without a signing key)."""

    record: LogRecord
    index: int
    size: int
    root: bytes
    proof: tuple[bytes, ...]
    head: SignedTreeHead | None

    def verify(self, public_key: Ed25519PublicKey | None = None) -> bool:
        """Whether everything agrees: the envelope bytes with the record, the record with
        the audit path and root, the root with the head, and (given ``public_key``) the
        head's signature. A head is required when a key is given."""
        if not self.record.envelope_matches() or self.record.seq != self.index:
            return False
        if not _merkle.verify_inclusion(
            self.record.leaf_hash(), self.index, self.size, self.proof, self.root
        ):
            return False
        if self.head is None:
            return public_key is None
        if self.head.size != self.size or self.head.root_hash != self.root:
            return False
        return public_key is None or verify_head_signature(self.head, public_key)


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """Evidence that the tree of ``old_size`` records (root ``old_root``) is a prefix of
    the tree of ``new_size`` records (root ``new_root``)."""

    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    proof: tuple[bytes, ...]

    def verify(self) -> bool:
        """Whether the proof holds (RFC 9162 §2.1.4.2)."""
        return _merkle.verify_consistency(
            self.old_size, self.new_size, self.old_root, self.new_root, self.proof
        )


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """A log that verified: ``size`` records with root ``root``; ``signed_size`` of them
    are covered by the latest of ``heads`` signed heads (the rest were appended after it);
    ``signatures_checked`` says whether head signatures were checked against a key."""

    size: int
    root: bytes
    heads: int
    signed_size: int
    signatures_checked: bool
    witnessed: WitnessReport | None = None

    def as_dict(self) -> dict[str, object]:
        """The report for JSON output."""
        return {
            "size": self.size,
            "root": self.root.hex(),
            "heads": self.heads,
            "signed_size": self.signed_size,
            "unsigned": self.size - self.signed_size,
            "signatures_checked": self.signatures_checked,
            "witnessed": self.witnessed.as_dict() if self.witnessed else None,
        }


def _check_record(stored: StoredRecord, position: int) -> tuple[bytes, str | None]:
    """The recomputed leaf hash of the record at ``position`` and what is wrong with it."""
    record = stored.record
    try:
        leaf = record.leaf_hash()
    except (ExchangeError, TypeError, ValueError) as exc:
        return b"", f"record fields cannot be hashed: {exc}"
    if record.seq != position:
        return leaf, f"seq is {record.seq} where {position} is expected"
    if leaf != stored.leaf_hash:
        return leaf, "record fields do not match the stored leaf hash"
    if not record.envelope_matches():
        return leaf, "envelope bytes do not match envelope_sha256"
    return leaf, None


class _Localiser:
    """Finds the first leaf where the tree rebuilt from the record fields departs from the
    tree a signed head commits to, authenticating stored nodes top-down from its root."""

    def __init__(self, store: LogStore, recomputed: bytearray) -> None:
        self._store = store
        self._leaves = recomputed
        self._known = len(recomputed) // _merkle.HASH_SIZE

    def _recomputed(self, key: NodeKey) -> bytes | None:
        level, index = key
        lo, hi = index << level, (index + 1) << level
        if hi > self._known:
            return None
        size = _merkle.HASH_SIZE
        leaves = [bytes(self._leaves[i * size : (i + 1) * size]) for i in range(lo, hi)]
        return _merkle.root(leaves)

    def _descend(self, key: NodeKey, authentic: bytes) -> int:
        """The first differing leaf under ``key``, whose true hash is ``authentic``, or the
        start of the first subtree whose stored children no longer authenticate."""
        while key[0] > 0:
            level, index = key
            left, right = (level - 1, 2 * index), (level - 1, 2 * index + 1)
            children = self._store.read_nodes([left, right])
            if len(children) != 2:
                break
            if _merkle.node_hash(children[left], children[right]) != authentic:
                break
            key = left if self._recomputed(left) != children[left] else right
            authentic = children[key]
        return key[1] << key[0]

    def first_difference(self, head: SignedTreeHead, proven: int) -> int:
        """The first position in ``[proven, head.size]`` that cannot be shown to match
        ``head``; ``proven`` records are already known to match an earlier head."""
        tops = _merkle.perfect_subtrees(0, head.size)
        stored = self._store.read_nodes(tops)
        if len(stored) != len(tops) or _merkle.fold([stored[k] for k in tops]) != head.root_hash:
            return proven
        for key in tops:
            if self._recomputed(key) != stored[key]:
                return max(proven, self._descend(key, stored[key]))
        return head.size


def _check_heads(
    heads: Sequence[SignedTreeHead], keys: Sequence[Ed25519PublicKey], log_id: str | None
) -> None:
    """Raise ``LogIntegrityError`` for a head of another log, with a bad signature (by none of
    ``keys``, when given) or a malformed time, at the first position no earlier head proves."""
    proven = 0
    for head in heads:
        problem = None
        if log_id is not None and head.log_id != log_id:
            problem = f"is for log {head.log_id!r}, not {log_id!r}"
        elif keys and not any(verify_head_signature(head, key) for key in keys):
            problem = "has a bad signature"
        else:
            try:
                check_timestamp(head.timestamp)
            except LogError as exc:
                problem = f"is malformed: {exc}"
        if problem is not None:
            raise LogIntegrityError(f"the signed head of size {head.size} {problem}", proven)
        proven = head.size


class _Scan:
    """One pass over the records in seq order, re-hashing each and checking the signed
    heads as the rebuilt tree reaches their sizes; stops at the first problem."""

    def __init__(self, heads: Sequence[SignedTreeHead], wanted: Iterable[int] = ()) -> None:
        self.range = _merkle.CompactRange()
        self.wanted = set(wanted)  # sizes whose root from the records is asked for
        self.roots: dict[int, bytes] = {0: _merkle.EMPTY_ROOT} if 0 in self.wanted else {}
        self.recomputed = bytearray()
        self._heads = iter(heads)
        self.next_head = next(self._heads, None)
        self.proven = 0
        self.failed_head: SignedTreeHead | None = None
        self.problem: tuple[int, str] | None = None

    @property
    def position(self) -> int:
        return self.range.size

    def heads_hold(self) -> bool:
        """Check every head of the current size; ``False`` (and ``failed_head``) if one
        does not match the rebuilt root."""
        while self.next_head is not None and self.next_head.size == self.position:
            if self.range.root() != self.next_head.root_hash:
                self.failed_head = self.next_head
                return False
            self.proven = self.next_head.size
            self.next_head = next(self._heads, None)
        return True

    def feed(self, stored: StoredRecord) -> bool:
        """Take the next record; ``False`` once a problem is found."""
        if not self.heads_hold():
            return False
        leaf, reason = _check_record(stored, self.position)
        if reason is not None:
            self.problem = (self.position, reason)
            return False
        self.range.append(leaf)
        self.recomputed += leaf
        if self.range.size in self.wanted:
            self.roots[self.range.size] = self.range.root()
        return True

    def run(self, store: LogStore) -> bool:
        """Scan the whole store; whether everything held."""
        for chunk in store.scan():
            for stored in chunk:
                if not self.feed(stored):
                    return False
        return self.heads_hold()


def verify_log(
    store: LogStore,
    *,
    public_key: Ed25519PublicKey | Sequence[Ed25519PublicKey] | None = None,
    log_id: str | None = None,
    cosignatures: Sequence[Cosignature] = (),
    ca_certificate: x509.Certificate | None = None,
) -> VerifyReport:
    """Check the whole log in ``store`` and return what was verified.

    Every record is re-hashed from its stored fields and compared with its stored leaf
    hash; its envelope bytes with its ``envelope_sha256``; the seq numbers must run 0, 1, 2...
    The tree rebuilt from the fields must have each stored signed head's root at that
    head's size, and every signed head must be for ``log_id`` and (given ``public_key``)
    carry a good signature. ``public_key`` may be several keys, for a log that spans key
    rotations: each head must then be signed by one of them.

    Raises :class:`LogIntegrityError` naming the first record (0-based) that is changed,
    removed, inserted or out of order. When the stored leaf hashes were recomputed to hide
    a change, the position is found by authenticating the stored tree nodes from the signed
    root down; if those were rewritten too, it is the first record no longer covered by an
    intact head. Raises ``LogError`` if the store cannot be read.

    With ``cosignatures`` of this log's heads (``log_id`` is then required), the roots
    rebuilt from the records must also be the ones the witnesses cosigned
    (:func:`~exchange.log.check_witnessed`, with ``ca_certificate`` checking the witnesses'
    certificates): this catches a rewrite or a cut even by whoever holds the log's key
    (:class:`LogSplitView`, :class:`LogRollback`).
    """
    if cosignatures and log_id is None:
        raise LogError("checking cosignatures needs the log's id")
    if public_key is None:
        keys: tuple[Ed25519PublicKey, ...] = ()
    elif isinstance(public_key, Ed25519PublicKey):
        keys = (public_key,)
    else:
        keys = tuple(public_key)
    heads = store.read_heads()
    _check_heads(heads, keys, log_id)
    scan = _Scan(heads, (c.head.size for c in cosignatures if c.head.log_id == log_id))
    if scan.run(store):
        if scan.next_head is not None:
            raise LogIntegrityError(
                f"the signed head of size {scan.next_head.size} covers records that are "
                f"missing (only {scan.position} are stored)",
                scan.position,
            )
        witnessed = None
        if cosignatures:
            from exchange.log._witness import check_witnessed  # noqa: PLC0415 - builds on this

            assert log_id is not None
            witnessed = check_witnessed(
                log_id,
                scan.position,
                lambda _sizes: scan.roots,
                cosignatures,
                ca_certificate=ca_certificate,
            )
        return VerifyReport(
            size=scan.position,
            root=scan.range.root(),
            heads=len(heads),
            signed_size=heads[-1].size if heads else 0,
            signatures_checked=bool(keys),
            witnessed=witnessed,
        )
    # An earlier change hidden by recomputed leaf hashes only shows against the first head
    # not yet proven, so ask that head for the first difference too.
    problem = scan.problem
    head = scan.failed_head or scan.next_head
    if head is not None:
        diff = _Localiser(store, scan.recomputed).first_difference(head, scan.proven)
        if problem is None or diff < problem[0]:
            reason = (
                f"does not match the signed head of size {head.size} "
                "(its stored hashes were rewritten)"
            )
            problem = (diff, reason)
    assert problem is not None
    raise LogIntegrityError(f"record {problem[0]} {problem[1]}", problem[0])


class MessageLog:
    """One connector's message log over a :class:`LogStore`.

    ``log_id`` names the log in its signed heads. With ``signing_key`` every
    :meth:`flush` also signs and stores a tree head in the same transaction; without one,
    heads are not signed and :meth:`signed_head` raises ``LogError``. Opening reads the
    stored leaf hashes once to rebuild the in-memory compact range (O(n) hashing, no
    record bodies). Not thread-safe: use one instance from one thread.
    """

    def __init__(
        self,
        store: LogStore,
        *,
        log_id: str,
        signing_key: Ed25519PrivateKey | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self.log_id = log_id
        self._key = signing_key
        self._clock = clock or (lambda: datetime.now(UTC))
        self._range = _merkle.CompactRange.of(store.leaf_hashes())
        self._queue: list[LogRecord] = []
        heads = store.read_heads()
        self._head: SignedTreeHead | None = heads[-1] if heads else None

    @property
    def store(self) -> LogStore:
        """The store underneath."""
        return self._store

    @property
    def size(self) -> int:
        """How many records are durably stored (queued ones are not counted)."""
        return self._range.size

    @property
    def root(self) -> bytes:
        """The Merkle root of the stored records."""
        return self._range.root()

    @property
    def pending(self) -> int:
        """How many records are queued for the next :meth:`flush`."""
        return len(self._queue)

    @property
    def public_key(self) -> Ed25519PublicKey | None:
        """The key that verifies this log's heads, if it signs them."""
        return self._key.public_key() if self._key else None

    def append(self, entry: LogEntry) -> LogRecord:
        """Queue ``entry`` and return its record (with its seq); it is durable only after
        the next :meth:`flush`. Raises ``LogError`` if the entry is not loggable."""
        record = make_record(entry, self.size + len(self._queue), utc_timestamp(self._clock()))
        self._queue.append(record)
        return record

    def flush(self) -> int:
        """Write every queued record in one durable transaction (plus a signed head when
        the log has a key) and return the new size. Nothing queued: no write. On failure
        raises ``LogError`` and keeps the queue, so the flush can be retried."""
        if not self._queue:
            return self.size
        nodes: list[Node] = []
        rng = _merkle.CompactRange(
            self._range.size,
            self._range.roots,
            on_node=lambda level, index, value: nodes.append((level, index, value)),
        )
        stored = []
        for record in self._queue:
            leaf = record.leaf_hash()
            rng.append(leaf)
            stored.append(StoredRecord(record, leaf))
        head = self._sign(rng.size, rng.root()) if self._key else None
        self._store.append(stored, nodes, head)
        self._range = _merkle.CompactRange(rng.size, rng.roots)
        self._queue.clear()
        if head is not None:
            self._head = head
        return self.size

    def append_batch(self, entries: Sequence[LogEntry]) -> list[LogRecord]:
        """Queue ``entries`` and :meth:`flush` them in one transaction; their records."""
        records = [self.append(entry) for entry in entries]
        self.flush()
        return records

    def _sign(self, size: int, root: bytes) -> SignedTreeHead:
        assert self._key is not None
        at = utc_timestamp(self._clock())
        signature = self._key.sign(head_bytes(self.log_id, size, root, at))
        return SignedTreeHead(size, root, at, self.log_id, signature)

    def signed_head(self) -> SignedTreeHead:
        """The signed head of the stored records, signing (and storing) a new one if the
        latest does not cover them all. Raises ``LogError`` for a log without a key."""
        if self._key is None:
            raise LogError(f"log {self.log_id!r} has no signing key")
        if self._head is None or self._head.size != self.size:
            head = self._sign(self.size, self.root)
            self._store.append([], [], head)
            self._head = head
        return self._head

    def records(self, message_id: str) -> list[LogRecord]:
        """Every stored record of ``message_id``, by seq."""
        return [s.record for s in self._store.read_by_message_id(message_id)]

    def _range_root(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The roots of these leaf ranges, from the stored tree nodes."""
        parts = [_merkle.perfect_subtrees(lo, hi) for lo, hi in ranges]
        nodes = self._store.read_nodes(key for part in parts for key in part)
        try:
            return [_merkle.fold([nodes[key] for key in part]) for part in parts]
        except KeyError as exc:
            raise LogError("tree nodes are missing from the store; run verify") from exc

    def inclusion_proof(
        self,
        message_id: str,
        *,
        direction: str | None = None,
        head: SignedTreeHead | None = None,
    ) -> InclusionProof:
        """The inclusion proof of the first stored record of ``message_id`` (of that
        ``direction`` if given) in the tree of the latest signed head (in the current tree
        for a log without a key). Raises ``LogError`` if there is no such record, and
        ``LogIntegrityError`` if the stored record or tree does not produce a valid proof."""
        for stored in self._store.read_by_message_id(message_id):
            if direction is None or stored.record.direction == direction:
                return self.inclusion_proof_at(stored.record.seq, head=head)
        raise LogError(f"message {message_id!r} is not in log {self.log_id!r}")

    def latest_head(self) -> SignedTreeHead | None:
        """The latest stored signed head (``None`` if none was ever signed)."""
        return self._head

    def inclusion_proof_at(
        self, index: int, *, head: SignedTreeHead | None = None
    ) -> InclusionProof:
        """The inclusion proof of the record at ``index``; see :meth:`inclusion_proof`.
        ``head`` picks the signed head to prove against (e.g. a stored one when the log is
        opened without its key); it must cover ``index``."""
        if not 0 <= index < self.size:
            raise LogError(f"there is no record {index} in a log of {self.size}")
        found = self._store.read_range(index, index + 1)
        if not found:
            raise LogIntegrityError(f"record {index} is missing", index)
        record = found[0].record
        if head is None and self._key:
            head = self.signed_head()
        if head is not None and not index < head.size <= self.size:
            raise LogError(
                f"record {index} is not covered by the signed head of size {head.size}; "
                "a head is signed at the next flush"
            )
        size, root = (head.size, head.root_hash) if head else (self.size, self.root)
        proof = InclusionProof(
            record=record,
            index=index,
            size=size,
            root=root,
            proof=tuple(self._range_root(_merkle.inclusion_ranges(index, size))),
            head=head,
        )
        if not proof.verify():
            raise LogIntegrityError(f"record {index} does not verify against the log", index)
        return proof

    def inclusion_proofs(
        self, records: Sequence[LogRecord], head: SignedTreeHead
    ) -> list[InclusionProof]:
        """The inclusion proofs of stored ``records`` (as :meth:`append` returned them)
        against ``head``, reading every tree node they need once (a batch's records share
        most of their audit paths). The first and last proofs are checked against the head,
        which exercises the nodes the others are made of. Raises ``LogError`` for a record
        ``head`` does not cover, and ``LogIntegrityError`` if the stored tree does not give a
        valid proof."""
        if not 0 < head.size <= self.size:
            raise LogError(f"the head of size {head.size} is not of this log of {self.size}")
        split: dict[tuple[int, int], list[tuple[int, int]]] = {}
        paths = []
        for record in records:
            if not 0 <= record.seq < head.size:
                raise LogError(f"record {record.seq} is not covered by the head of {head.size}")
            ranges = _merkle.inclusion_ranges(record.seq, head.size)
            for lo_hi in ranges:
                if lo_hi not in split:
                    split[lo_hi] = _merkle.perfect_subtrees(*lo_hi)
            paths.append(ranges)
        nodes = self._store.read_nodes({key for part in split.values() for key in part})
        try:
            roots = {
                lo_hi: _merkle.fold([nodes[key] for key in part]) for lo_hi, part in split.items()
            }
        except KeyError as exc:
            raise LogError("tree nodes are missing from the store; run verify") from exc
        proofs = [
            InclusionProof(
                record, record.seq, head.size, head.root_hash, tuple(roots[r] for r in path), head
            )
            for record, path in zip(records, paths, strict=True)
        ]
        for proof in {id(p): p for p in (proofs[:1] + proofs[-1:])}.values():
            if not proof.verify():
                raise LogIntegrityError(
                    f"record {proof.index} does not verify against the log", proof.index
                )
        return proofs

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """Proof that the log at ``old_size`` is a prefix of the log at ``new_size``
        (default: the current size). Raises ``LogError`` for sizes outside the log and
        ``LogIntegrityError`` if the stored tree does not produce a valid proof."""
        new = self.size if new_size is None else new_size
        if not 0 <= old_size <= new <= self.size:
            raise LogError(f"no consistency proof from {old_size} to {new} in a log of {self.size}")
        old_root, new_root = self._range_root([(0, old_size), (0, new)])
        result = ConsistencyProof(
            old_size,
            new,
            old_root,
            new_root,
            tuple(self._range_root(_merkle.consistency_ranges(old_size, new))),
        )
        if not result.verify():
            raise LogIntegrityError("the stored tree nodes are inconsistent", 0)
        return result

    def verify(
        self,
        public_key: Ed25519PublicKey | None = None,
        *,
        cosignatures: Sequence[Cosignature] = (),
        ca_certificate: x509.Certificate | None = None,
    ) -> VerifyReport:
        """:func:`verify_log` on this log's store, with this log's id and key (or
        ``public_key``), and the witnesses' ``cosignatures``. Queued records are not part of
        it."""
        return verify_log(
            self._store,
            public_key=public_key or self.public_key,
            log_id=self.log_id,
            cosignatures=cosignatures,
            ca_certificate=ca_certificate,
        )

    def close(self) -> None:
        """Close the store; queued records that were not flushed are lost."""
        self._store.close()
