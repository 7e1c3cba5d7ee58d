"""RFC 6962 (Certificate Transparency) Merkle tree math: pure functions over bytes, no I/O.

Hashes are SHA-256 with domain separation: ``leaf_hash(d) = SHA256(0x00 || d)`` and
``node_hash(l, r) = SHA256(0x01 || l || r)``; the empty tree's root is ``SHA256("")``.

A proof is a list of subtree roots. Which subtrees is pure arithmetic on sizes
(:func:`inclusion_ranges`, :func:`consistency_ranges`), so a caller holding stored subtree
roots can build a proof without rehashing the whole log; :func:`inclusion_proof` and
:func:`consistency_proof` are the list-of-leaf-hashes form of RFC 6962 §2.1.1 and §2.1.2.

The verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 and return ``bool``: ``False`` for every
kind of mismatch or malformed input (wrong sizes, hashes of the wrong length), never an
exception. The generators raise :class:`~exchange._errors.LogError` for an index or size
outside the tree, which is a caller's mistake rather than evidence of tampering.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from exchange._errors import LogError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256

Range = tuple[int, int]
"""A half-open range ``[lo, hi)`` of leaf indexes."""


def leaf_hash(data: bytes) -> bytes:
    """``SHA256(0x00 || data)``."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly smaller than ``size`` (``size >= 2``)."""
    return 1 << ((size - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the leaves (RFC 6962 §2.1); :data:`EMPTY_ROOT` for no leaves.

    Computed level by level, carrying an odd last node up unchanged, which gives the same
    tree as the recursive largest-power-of-two split without recursion.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The leaf ranges whose roots form the audit path of leaf ``index`` in a tree of
    ``size`` leaves, in proof order (RFC 6962 §2.1.1 PATH); raises ``LogError`` unless
    ``0 <= index < size``."""
    if not 0 <= index < size:
        raise LogError(f"leaf {index} is not in a tree of {size} leaves")
    out: list[Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The leaf ranges whose roots form the consistency proof from ``old_size`` to
    ``new_size`` (RFC 6962 §2.1.2 PROOF); empty when ``old_size`` is 0 or equal to
    ``new_size``. Raises ``LogError`` unless ``0 <= old_size <= new_size``."""
    if not 0 <= old_size <= new_size:
        raise LogError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    out: list[Range] = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
            m -= k
            complete = False
    if not complete:
        out.append((lo, hi))
    out.reverse()
    return out


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` (RFC 6962 §2.1.1); raises ``LogError`` if the
    index is outside the tree."""
    return [root(leaf_hashes[lo:hi]) for lo, hi in inclusion_ranges(index, len(leaf_hashes))]


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """The consistency proof from the first ``old_size`` leaves to all of them
    (RFC 6962 §2.1.2); raises ``LogError`` if ``old_size`` is outside ``[0, size]``."""
    return [root(leaf_hashes[lo:hi]) for lo, hi in consistency_ranges(old_size, len(leaf_hashes))]


def perfect_subtrees(lo: int, hi: int) -> list[tuple[int, int]]:
    """Split ``[lo, hi)`` into maximal aligned perfect subtrees, left to right, each as
    ``(level, index)``: the subtree covering leaves ``[index << level, (index + 1) << level)``.
    The root of the range is these roots folded from the right with :func:`node_hash`
    (for any range that is a node of an RFC 6962 tree, and for every prefix ``[0, n)``)."""
    out: list[tuple[int, int]] = []
    while lo < hi:
        level = (lo & -lo).bit_length() - 1 if lo else (hi - lo).bit_length() - 1
        while lo + (1 << level) > hi:
            level -= 1
        out.append((level, lo >> level))
        lo += 1 << level
    return out


def fold(roots: Sequence[bytes]) -> bytes:
    """Fold subtree roots (left to right, sizes decreasing) into one root from the right;
    :data:`EMPTY_ROOT` for none."""
    if not roots:
        return EMPTY_ROOT
    acc = roots[-1]
    for left in reversed(roots[:-1]):
        acc = node_hash(left, acc)
    return acc


def _well_formed(*hashes: bytes | Iterable[bytes]) -> bool:
    for item in hashes:
        if isinstance(item, bytes | bytearray):
            if len(item) != HASH_SIZE:
                return False
        elif any(not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE for h in item):
            return False
    return True


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """Whether ``proof`` shows the leaf hash ``leaf`` at ``index`` in the tree of ``size``
    leaves whose root is ``root_hash`` (RFC 9162 §2.1.3.2). ``False`` on any mismatch or
    malformed input."""
    if not 0 <= index < size or not _well_formed(leaf, root_hash, proof):
        return False
    fn, sn, acc = index, size - 1, bytes(leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            acc = node_hash(p, acc)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            acc = node_hash(acc, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and acc == root_hash


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows that the tree of ``old_size`` leaves with root ``old_root``
    is a prefix of the tree of ``new_size`` leaves with root ``new_root``
    (RFC 9162 §2.1.4.2). An empty old tree is a prefix of every tree (the proof must be
    empty); equal sizes need equal roots and an empty proof. ``False`` otherwise."""
    if not 0 <= old_size <= new_size or not _well_formed(proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof or not _well_formed(old_root, new_root):
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class CompactRange:
    """The roots of the perfect subtrees that make up the leaves appended so far (one per
    set bit of the size, largest first): appending costs O(1) amortised and O(log n) at
    worst, and the root is O(log n), with no leaf kept in memory.

    ``on_node(level, index, hash)``, if given, is called for every node completed by an
    append (the leaf itself at level 0, then each merge), so a caller can store them.
    """

    __slots__ = ("_on_node", "_size", "_stack")

    def __init__(
        self,
        size: int = 0,
        roots: Sequence[bytes] = (),
        on_node: Callable[[int, int, bytes], None] | None = None,
    ) -> None:
        """Start from ``size`` leaves summarised by ``roots`` (the roots of
        ``perfect_subtrees(0, size)``); raises ``LogError`` if they do not match."""
        if size < 0 or len(roots) != size.bit_count() or not _well_formed(roots):
            raise LogError(f"{len(roots)} subtree roots cannot summarise {size} leaves")
        self._size = size
        self._stack = list(roots)
        self._on_node = on_node

    @classmethod
    def of(cls, leaf_hashes: Iterable[bytes]) -> CompactRange:
        """The compact range of these leaves."""
        rng = cls()
        rng.extend(leaf_hashes)
        return rng

    @property
    def size(self) -> int:
        """How many leaves have been appended."""
        return self._size

    @property
    def roots(self) -> tuple[bytes, ...]:
        """The perfect subtree roots, largest (leftmost) first."""
        return tuple(self._stack)

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        index, level, acc = self._size, 0, leaf
        on_node = self._on_node
        if on_node is not None:
            on_node(0, index, acc)
        while index & 1:
            acc = node_hash(self._stack.pop(), acc)
            index >>= 1
            level += 1
            if on_node is not None:
                on_node(level, index, acc)
        self._stack.append(acc)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append each leaf hash in order."""
        for leaf in leaf_hashes:
            self.append(leaf)

    def root(self) -> bytes:
        """The Merkle tree hash of everything appended; :data:`EMPTY_ROOT` when empty."""
        return fold(self._stack)
