"""MessageLog on SQLite and PostgreSQL: appends, group commit, proofs, reopening, tampering."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange._errors import LogError, LogIntegrityError
from exchange.log import (
    LogEntry,
    MessageLog,
    SignedTreeHead,
    SQLiteLogStore,
    leaf_hash,
    root,
    verify_head_signature,
    verify_inclusion,
)
from tests.log.conftest import Backend, CountingConnection, clock, entry


def _filled(backend: Backend, key: Ed25519PrivateKey, n: int = 20, batch: int = 5) -> MessageLog:
    log = MessageLog(backend.open(), log_id="douane", signing_key=key, clock=clock)
    for start in range(0, n, batch):
        log.append_batch([entry(i) for i in range(start, min(n, start + batch))])
    return log


def test_round_trip(backend, key):
    """Appended records read back with their fields, envelope and a verifying tree."""
    log = _filled(backend, key)
    assert log.size == 20
    (record,) = log.records("msg-0007")
    assert record.seq == 7
    assert record.at == "2026-11-22T14:00:00.123Z"
    assert record.envelope == entry(7).envelope
    assert record.envelope_matches()
    report = log.verify()
    assert (report.size, report.signed_size, report.heads) == (20, 20, 4)
    leaves = [leaf_hash(r.record.leaf_data()) for r in log.store.read_range(0, 20)]
    assert report.root == root(leaves) == log.root
    log.close()


def test_leaf_excludes_envelope_and_has_version(backend, key):
    """The leaf is canonical JSON of the fields with "v": 1 and no envelope bytes."""
    log = _filled(backend, key, n=1)
    (record,) = log.records("msg-0000")
    assert record.leaf_fields()["v"] == 1
    assert b"payload" not in record.leaf_data()
    assert record.leaf_data().startswith(b'{"at":"2026-11-22T14:00:00.123Z","direction"')
    log.close()


def test_rejected_needs_a_code(backend):
    """A rejected entry without a reject code, or another with one, raises LogError."""
    log = MessageLog(backend.open(), log_id="douane")
    with pytest.raises(LogError):
        log.append(LogEntry("rejected", "m", "t", "a", "b", b"{}"))
    with pytest.raises(LogError):
        log.append(LogEntry("sent", "m", "t", "a", "b", b"{}", reject_code="forbidden"))
    with pytest.raises(LogError):
        log.append(LogEntry("sent", "m", "t", "a", "b", b"{}", at="2026-11-22 14:00"))
    log.close()


def test_group_commit_is_one_commit_per_flush(tmp_path: Path):
    """Each flush of a batch commits exactly once, whatever the batch size."""
    store = SQLiteLogStore(tmp_path / "log.sqlite", factory=CountingConnection)
    log = MessageLog(store, log_id="douane", signing_key=Ed25519PrivateKey.generate())
    CountingConnection.commits = 0
    for i in range(300):
        log.append(entry(i))
    assert log.pending == 300
    assert log.flush() == 300
    assert CountingConnection.commits == 1
    assert log.flush() == 300  # nothing queued: no write
    assert CountingConnection.commits == 1
    log.append_batch([entry(i) for i in range(300, 310)])
    assert CountingConnection.commits == 2
    log.close()


def test_group_commit_calls_store_once(backend, key):
    """MessageLog hands a whole flush to the store in one append call."""
    store = backend.open()
    calls = []
    original = store.append

    def counting(records, nodes, head=None):
        calls.append(len(records))
        original(records, nodes, head)

    store.append = counting  # type: ignore[method-assign]
    log = MessageLog(store, log_id="douane", signing_key=key)
    log.append_batch([entry(i) for i in range(100)])
    assert calls == [100]
    log.close()


def test_reopen_and_continue(backend, key):
    """A reopened log has the same root and keeps appending from where it was."""
    log = _filled(backend, key, n=13)
    before = log.root
    log.close()
    again = MessageLog(backend.open(), log_id="douane", signing_key=key, clock=clock)
    assert (again.size, again.root) == (13, before)
    assert again.signed_head().size == 13
    again.append_batch([entry(i) for i in range(13, 21)])
    assert again.verify().size == 21
    assert again.consistency_proof(13).verify()
    again.close()


def test_inclusion_proof(backend, key):
    """The inclusion proof of a message verifies with the log's public key, offline."""
    log = _filled(backend, key, n=21, batch=4)
    proof = log.inclusion_proof("msg-0011")
    assert (proof.index, proof.size) == (11, 21)
    assert proof.head is not None
    assert proof.verify(key.public_key())
    assert verify_head_signature(proof.head, key.public_key())
    assert verify_inclusion(proof.record.leaf_hash(), 11, 21, proof.proof, proof.head.root_hash)
    assert not proof.verify(Ed25519PrivateKey.generate().public_key())
    with pytest.raises(LogError):
        log.inclusion_proof("nope")
    log.close()


@pytest.mark.parametrize(("n", "batch"), [(1, 1), (7, 3), (33, 16), (64, 64), (100, 37)])
def test_batched_inclusion_proofs_are_the_single_ones(backend, key, n, batch):
    """The proofs of a batch's records, computed together, are exactly the proofs computed
    one by one, and verify with the log's key; a head the log has not reached is refused."""
    log = MessageLog(backend.open(), log_id="douane", signing_key=key, clock=clock)
    for start in range(0, n, batch):
        records = [log.append(entry(i)) for i in range(start, min(n, start + batch))]
        log.flush()
        head = log.latest_head()
        assert head is not None
        together = log.inclusion_proofs(records, head)
        alone = [log.inclusion_proof_at(r.seq, head=head) for r in records]
        assert [(p.index, p.size, p.proof) for p in together] == [
            (p.index, p.size, p.proof) for p in alone
        ]
        assert all(p.verify(key.public_key()) for p in together)
    beyond = SignedTreeHead(log.size + 1, b"\0" * 32, "2026-11-22T14:00:00.123Z", "douane", b"")
    with pytest.raises(LogError):
        log.inclusion_proofs(records, beyond)
    log.close()


def test_inclusion_proof_picks_direction(backend, key):
    """A message logged twice (received, then rejected as duplicate) is found by direction."""
    log = MessageLog(backend.open(), log_id="douane", signing_key=key)
    duplicate = LogEntry(
        "rejected", "msg-0000", "customs.declaration", "a", "b", b"{}", reject_code="duplicate"
    )
    log.append_batch([entry(0), entry(1), duplicate])
    assert log.inclusion_proof("msg-0000").index == 0
    assert log.inclusion_proof("msg-0000", direction="rejected").index == 2
    log.close()


def test_consistency_proofs_between_all_sizes(backend, key):
    """Every consistency proof between two sizes of the log verifies."""
    log = _filled(backend, key, n=11, batch=3)
    for old in range(12):
        for new in range(old, 12):
            assert log.consistency_proof(old, new).verify()
    log.close()


def test_unsigned_log(backend):
    """Without a key, heads are not signed: signed_head raises, proofs carry no head."""
    log = MessageLog(backend.open(), log_id="douane")
    log.append_batch([entry(i) for i in range(5)])
    with pytest.raises(LogError):
        log.signed_head()
    proof = log.inclusion_proof("msg-0003")
    assert proof.head is None
    assert proof.verify()
    assert log.verify().signed_size == 0
    log.close()


def test_signed_head_signature(backend, key):
    """The head signature is Ed25519 over a context prefix and the canonical head, and fails
    once changed."""
    log = _filled(backend, key, n=3)
    head = log.signed_head()
    assert head.signed_bytes() == (
        b'tabadul/1 tree-head\n{"at":"2026-11-22T14:00:00.123Z","log":"douane","root":"'
        + head.root_hash.hex().encode()
        + b'","size":3,"v":1}'
    )
    assert verify_head_signature(head, key.public_key())
    forged = type(head)(4, head.root_hash, head.timestamp, head.log_id, head.signature)
    assert not verify_head_signature(forged, key.public_key())
    log.close()


# --- tampering -------------------------------------------------------------------------


def _tampered(backend: Backend, key: Ed25519PrivateKey, position: int) -> str:
    store = backend.open()
    log = MessageLog(store, log_id="douane")
    with pytest.raises(LogIntegrityError) as caught:
        log.verify(key.public_key())
    log.close()
    assert caught.value.position == position, caught.value.message
    return caught.value.message


def _recompute_leaf(backend: Backend, seq: int) -> None:
    """What an attacker with database access does: re-hash the changed record."""
    store = backend.open()
    (stored,) = store.read_range(seq, seq + 1)
    store.close()
    backend.sql(
        "UPDATE {s}.records SET leaf_hash = %s WHERE seq = %s", (stored.record.leaf_hash(), seq)
    )


def test_tamper_field(backend, key):
    """Changing a record field in SQL is reported at that record."""
    _filled(backend, key).close()
    backend.sql("UPDATE {s}.records SET sender = 'evil' WHERE seq = 9", ())
    assert "leaf hash" in _tampered(backend, key, 9)


def test_tamper_delete_row(backend, key):
    """Deleting a row is reported at its position."""
    _filled(backend, key).close()
    backend.sql("DELETE FROM {s}.records WHERE seq = 6", ())
    assert "seq is 7" in _tampered(backend, key, 6)


def test_tamper_delete_last_row(backend, key):
    """Deleting the last signed row is reported at its position."""
    _filled(backend, key).close()
    backend.sql("DELETE FROM {s}.records WHERE seq = 19", ())
    assert "missing" in _tampered(backend, key, 19)


def test_tamper_insert_row(backend, key):
    """Inserting a row (shifting the later ones) is reported at the inserted position."""
    _filled(backend, key).close()
    for seq in range(19, 4, -1):
        backend.sql("UPDATE {s}.records SET seq = seq + 1 WHERE seq = %s", (seq,))
    backend.sql(
        "INSERT INTO {s}.records SELECT 5, direction, at, 'forged', message_type, sender, "
        "recipient, reject_code, envelope_sha256, envelope, leaf_hash FROM {s}.records "
        "WHERE seq = 4",
        (),
    )
    _recompute_leaf(backend, 5)
    _tampered(backend, key, 5)


def test_tamper_swap_rows(backend, key):
    """Swapping two rows is reported at the first of them."""
    _filled(backend, key).close()
    backend.sql("UPDATE {s}.records SET seq = -1 WHERE seq = 3", ())
    backend.sql("UPDATE {s}.records SET seq = 3 WHERE seq = 12", ())
    backend.sql("UPDATE {s}.records SET seq = 12 WHERE seq = -1", ())
    _tampered(backend, key, 3)


def test_tamper_envelope(backend, key):
    """Changing the stored envelope bytes is reported at that record."""
    _filled(backend, key).close()
    backend.sql("UPDATE {s}.records SET envelope = %s WHERE seq = 15", (b'{"forged": true}',))
    assert "envelope" in _tampered(backend, key, 15)


def test_tamper_with_recomputed_leaf_hash(backend, key):
    """A changed record whose leaf hash was recomputed is caught by the signed head, exactly."""
    _filled(backend, key).close()
    backend.sql("UPDATE {s}.records SET recipient = 'elsewhere' WHERE seq = 13", ())
    _recompute_leaf(backend, 13)
    assert "signed head of size 15" in _tampered(backend, key, 13)


def test_tamper_with_recomputed_leaf_and_nodes(backend, key):
    """If the stored tree nodes were rewritten too, the first unproven record is named."""
    _filled(backend, key).close()
    backend.sql("UPDATE {s}.records SET recipient = 'elsewhere' WHERE seq = 13", ())
    _recompute_leaf(backend, 13)
    backend.sql("DELETE FROM {s}.nodes", ())
    _tampered(backend, key, 10)


def test_tamper_forged_head(backend, key):
    """A head not signed by the log's key is reported from the last good head on."""
    _filled(backend, key).close()
    backend.sql("UPDATE {s}.heads SET signature = %s WHERE size = 15", (bytes(64),))
    assert "bad signature" in _tampered(backend, key, 10)


def test_tamper_reordered_with_recomputed_hashes(backend, key):
    """Reordering two records and re-hashing both is caught at the first of them."""
    _filled(backend, key).close()
    backend.sql("UPDATE {s}.records SET seq = -1 WHERE seq = 2", ())
    backend.sql("UPDATE {s}.records SET seq = 2 WHERE seq = 3", ())
    backend.sql("UPDATE {s}.records SET seq = 3 WHERE seq = -1", ())
    _recompute_leaf(backend, 2)
    _recompute_leaf(backend, 3)
    _tampered(backend, key, 2)


def test_unsigned_tail_is_reported(tmp_path: Path):
    """Records appended after the latest head verify but are counted as unsigned."""
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "log.sqlite"
    log = MessageLog(SQLiteLogStore(path), log_id="douane", signing_key=key)
    log.append_batch([entry(i) for i in range(4)])
    log.close()
    unsigned = MessageLog(SQLiteLogStore(path), log_id="douane")
    unsigned.append_batch([entry(i) for i in range(4, 6)])
    report = unsigned.verify(key.public_key())
    assert (report.size, report.signed_size) == (6, 4)
    unsigned.close()


def test_sqlite_refuses_missing_file(tmp_path: Path):
    """Opening a missing or foreign SQLite file without create raises LogError."""
    with pytest.raises(LogError):
        SQLiteLogStore(tmp_path / "none.sqlite", create=False)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.close()
    with pytest.raises(LogError):
        SQLiteLogStore(other, create=False)


@pytest.mark.parametrize(
    "content",
    [b"", b"records,nodes,heads\n" * 50, None],
    ids=["empty", "not sqlite", "foreign sqlite"],
)
def test_opening_without_create_never_writes(tmp_path: Path, content):
    """create=False opens read-only: an empty file, a file that is no SQLite database and
    another application's database are refused with LogError and stay byte for byte."""
    path = tmp_path / "target.sqlite"
    if content is None:
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE records (x)")
        conn.commit()
        conn.close()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(LogError):
        SQLiteLogStore(path, create=False)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["target.sqlite"]


def test_a_log_opened_without_create_is_read_only(tmp_path: Path):
    """An existing log opened with create=False verifies, and refuses to be appended to."""
    path = tmp_path / "log.sqlite"
    log = MessageLog(SQLiteLogStore(path), log_id="douane")
    log.append_batch([entry(i) for i in range(3)])
    log.close()
    before = path.read_bytes()
    reader = MessageLog(SQLiteLogStore(path, create=False), log_id="douane")
    assert reader.verify().size == 3
    with pytest.raises(LogError):
        reader.append_batch([entry(3)])
    reader.close()
    assert path.read_bytes() == before
