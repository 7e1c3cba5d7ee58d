"""RFC 6962 Merkle math against the published test vectors and as properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange._errors import LogError
from exchange.log import _merkle as m

# The RFC 6962 test data of Google's certificate-transparency / trillian /
# transparency-dev/merkle libraries (testonly/constants.go, proof/verify_test.go).
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = {
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
LEAF_HASHES = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
]
# (0-based leaf index, tree size, audit path)
INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (old size, new size, proof)
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

HASHES = [m.leaf_hash(leaf) for leaf in LEAVES]


def _h(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def _hashes(n: int) -> list[bytes]:
    return [m.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _flip(value: bytes, at: int) -> bytes:
    return value[:at] + bytes([value[at] ^ 0x01]) + value[at + 1 :]


def test_leaf_hashes_match_vectors():
    """leaf_hash is SHA256(0x00 || data) for every vector leaf."""
    assert [h.hex() for h in HASHES] == LEAF_HASHES


@pytest.mark.parametrize("size", range(9))
def test_roots_match_vectors(size):
    """root and the compact range give the published root for every size 0..8."""
    assert m.root(HASHES[:size]).hex() == ROOTS[size]
    assert m.CompactRange.of(HASHES[:size]).root().hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_vectors(index, size, path):
    """inclusion_proof yields the published audit path, and it verifies."""
    assert m.inclusion_proof(HASHES[:size], index) == _h(path)
    root = bytes.fromhex(ROOTS[size])
    assert m.verify_inclusion(HASHES[index], index, size, _h(path), root)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proofs_match_vectors(old, new, proof):
    """consistency_proof yields the published proof, and it verifies."""
    assert m.consistency_proof(HASHES[:new], old) == _h(proof)
    old_root, new_root = bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new])
    assert m.verify_consistency(old, new, old_root, new_root, _h(proof))


def test_compact_range_reports_every_completed_node():
    """on_node sees each leaf and each merge, matching the vector's perfect subtree roots."""
    seen: dict[tuple[int, int], bytes] = {}
    rng = m.CompactRange(
        on_node=lambda level, index, value: seen.__setitem__((level, index), value)
    )
    rng.extend(HASHES)
    assert seen[1, 0].hex() == "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
    assert seen[2, 1].hex() == "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
    assert seen[3, 0].hex() == ROOTS[8]
    assert len(seen) == 15


def test_edge_cases_of_consistency():
    """Empty old trees are consistent with anything; equal sizes need equal roots."""
    a, b = bytes(32), bytes([1]) * 32
    assert m.verify_consistency(0, 5, a, b, [])
    assert not m.verify_consistency(0, 5, a, b, [a])
    assert m.verify_consistency(3, 3, a, a, [])
    assert not m.verify_consistency(3, 3, a, b, [])
    assert not m.verify_consistency(4, 3, a, b, [a])
    assert not m.verify_consistency(1, 2, a, b, [])


def test_generators_reject_out_of_range():
    """Asking for a proof outside the tree raises LogError."""
    with pytest.raises(LogError):
        m.inclusion_proof(HASHES, 8)
    with pytest.raises(LogError):
        m.consistency_proof(HASHES, 9)
    with pytest.raises(LogError):
        m.CompactRange(3, [bytes(32)])


def test_verify_inclusion_rejects_malformed_input():
    """Wrong hash lengths and impossible indexes verify False, never raise."""
    root = bytes.fromhex(ROOTS[1])
    assert m.verify_inclusion(HASHES[0], 0, 1, [], root)
    assert not m.verify_inclusion(HASHES[0][:31], 0, 1, [], root)
    assert not m.verify_inclusion(HASHES[0], 1, 1, [], root)
    assert not m.verify_inclusion(HASHES[0], 0, 0, [], root)


MAX = 70


def _shape(index: int, size: int) -> list[bool] | None:
    """Which side each sibling of the audit path is on; None if the leaf is outside."""
    if index >= size:
        return None
    return [lo < index for lo, _ in m.inclusion_ranges(index, size)]


def test_every_inclusion_proof_verifies():
    """For every size up to MAX and every index, the generated proof verifies."""
    hashes = _hashes(MAX)
    for size in range(1, MAX + 1):
        root = m.root(hashes[:size])
        for index in range(size):
            proof = m.inclusion_proof(hashes[:size], index)
            assert m.verify_inclusion(hashes[index], index, size, proof, root)


def test_every_consistency_proof_verifies():
    """For every pair of sizes up to MAX, the generated proof verifies."""
    hashes = _hashes(MAX)
    roots = [m.root(hashes[:n]) for n in range(MAX + 1)]
    for new in range(MAX + 1):
        for old in range(new + 1):
            proof = m.consistency_proof(hashes[:new], old)
            assert m.verify_consistency(old, new, roots[old], roots[new], proof)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_tampered_inclusion_proofs_fail(data):
    """Flipping a byte of the proof, root or leaf, or changing index or size, fails."""
    size = data.draw(st.integers(1, MAX))
    index = data.draw(st.integers(0, size - 1))
    hashes = _hashes(size)
    proof = m.inclusion_proof(hashes, index)
    root, leaf = m.root(hashes), hashes[index]
    at = data.draw(st.integers(0, 31))
    assert m.verify_inclusion(leaf, index, size, proof, root)
    assert not m.verify_inclusion(_flip(leaf, at), index, size, proof, root)
    assert not m.verify_inclusion(leaf, index, size, proof, _flip(root, at))
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof[:k], _flip(proof[k], at), *proof[k + 1 :]]
        assert not m.verify_inclusion(leaf, index, size, bad, root)
        assert not m.verify_inclusion(leaf, index, size, proof[:-1], root)
    assert not m.verify_inclusion(leaf, index, size, [*proof, root], root)
    other_index = data.draw(st.integers(0, 2 * size).filter(lambda i: i != index))
    assert not m.verify_inclusion(leaf, other_index, size, proof, root)
    assert not m.verify_inclusion(leaf, index, size * 2, proof, root)
    if index < size // 2:
        assert not m.verify_inclusion(leaf, index, size // 2, proof, root)
    # A size whose audit path has the same shape (same siblings on the same sides) is
    # indistinguishable to any RFC 9162 verifier; every other size must fail.
    other_size = data.draw(st.integers(1, 2 * MAX).filter(lambda s: s != size))
    accepted = m.verify_inclusion(leaf, index, other_size, proof, root)
    assert accepted == (_shape(index, other_size) == _shape(index, size))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_tampered_consistency_proofs_fail(data):
    """Flipping a byte of the proof or a root, or changing a size, fails."""
    new = data.draw(st.integers(2, MAX))
    old = data.draw(st.integers(1, new - 1))
    hashes = _hashes(new)
    proof = m.consistency_proof(hashes, old)
    old_root, new_root = m.root(hashes[:old]), m.root(hashes)
    at = data.draw(st.integers(0, 31))
    assert m.verify_consistency(old, new, old_root, new_root, proof)
    assert not m.verify_consistency(old, new, _flip(old_root, at), new_root, proof)
    assert not m.verify_consistency(old, new, old_root, _flip(new_root, at), proof)
    k = data.draw(st.integers(0, len(proof) - 1))
    bad = [*proof[:k], _flip(proof[k], at), *proof[k + 1 :]]
    assert not m.verify_consistency(old, new, old_root, new_root, bad)
    assert not m.verify_consistency(old, new, old_root, new_root, proof[:-1])
    assert not m.verify_consistency(old, new * 2, old_root, new_root, proof)
    assert not m.verify_consistency(old + 1, new, old_root, new_root, proof)
    assert not m.verify_consistency(old - 1, new, old_root, new_root, proof)
