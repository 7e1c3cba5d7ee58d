"""The hash-chained audit log: the chain arithmetic, and tampering caught on both databases."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest

from exchange import canonical
from governance import (
    GENESIS,
    AuditEntry,
    AuditLog,
    AuditTampered,
    GovernanceStore,
    InvalidInput,
    entry_hash,
    verify_chain,
)
from tests.governance.conftest import Backend

HASHED = "at, actor, action, subject, reason, content_sha256, details"


def fill(store: GovernanceStore, n: int = 6) -> AuditLog:
    log = AuditLog(store)
    for i in range(1, n + 1):
        log.append(
            actor="amina",
            action="dataset.classify",
            subject=f"dataset:d{i % 2}",
            reason=f"قرار رقم {i} — décision n°{i}",
            content_sha256=f"{i:064x}" if i % 2 else None,
            details={"from": "DRAFT", "to": "CLASSIFIED", "n": i, "tags": ["a", "é"]},
        )
    return log


def test_hash_is_prev_hash_then_canonical_fields(store):
    """Each hash is SHA-256 of the previous hash's bytes followed by the canonical fields."""
    log = fill(store, 3)
    entries = log.entries()
    assert entries[0].prev_hash == GENESIS
    for before, entry in zip([None, *entries], entries, strict=False):
        prev = before.hash if before else GENESIS
        assert entry.prev_hash == prev
        fields = {
            "seq": entry.seq,
            "at": entry.at,
            "actor": entry.actor,
            "action": entry.action,
            "subject": entry.subject,
            "reason": entry.reason,
            "content_sha256": entry.content_sha256,
            "details": dict(entry.details),
        }
        expected = hashlib.sha256(bytes.fromhex(prev) + canonical(fields)).hexdigest()
        assert entry.hash == expected == entry_hash(prev, fields)


def test_intact_log_verifies(store):
    """An untouched log verifies: its count and the hash of its last entry."""
    log = fill(store)
    report = log.verify()
    assert report.count == 6
    assert report.head_hash == log.entries()[-1].hash
    assert report.as_dict()["count"] == 6


def test_empty_log_verifies(store):
    """A fresh database has an empty, intact log whose head is the genesis hash."""
    report = AuditLog(store).verify()
    assert (report.count, report.head_hash) == (0, GENESIS)


def test_entries_filter_and_limit(store):
    """Entries can be read by subject and as the last N, always in seq order."""
    log = fill(store)
    assert [e.seq for e in log.entries(subject="dataset:d1")] == [1, 3, 5]
    assert [e.seq for e in log.entries(limit=2)] == [5, 6]
    assert [e.seq for e in log.entries(subject="dataset:d0", limit=2)] == [4, 6]


def test_details_must_be_json(store):
    """Details that have no canonical JSON form are refused and nothing is appended."""
    log = AuditLog(store)
    with pytest.raises(InvalidInput, match="plain JSON"):
        log.append(actor="a", action="x", subject="s", details={"bad": float("nan")})
    assert log.verify().count == 0


def test_verify_chain_is_pure():
    """The chain check works on entries alone (no database), with the head given."""
    fields = {
        "seq": 1,
        "at": "2026-11-22T14:00:00.000Z",
        "actor": "a",
        "action": "x",
        "subject": "s",
        "reason": "",
        "content_sha256": None,
        "details": {},
    }
    digest = entry_hash(GENESIS, fields)
    entry = AuditEntry(**fields, prev_hash=GENESIS, hash=digest)
    assert verify_chain([entry], (1, digest)).count == 1
    with pytest.raises(AuditTampered) as caught:
        verify_chain([entry], (2, digest))
    assert caught.value.seq == 2


# ---- tampering, in SQL, on SQLite and PostgreSQL ----------------------------------------


def tampered(backend: Backend, store: GovernanceStore) -> AuditTampered:
    with pytest.raises(AuditTampered) as caught:
        AuditLog(store).verify()
    assert caught.value.code == "audit-tampered"
    assert caught.value.as_dict()["seq"] == caught.value.seq
    return caught.value


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actor", "mallory"),
        ("reason", "nothing to see"),
        ("at", "2020-01-01T00:00:00.000Z"),
        ("content_sha256", "f" * 64),
        ("details", '{"from":"DRAFT","n":3,"tags":["a","é"],"to":"PUBLISHED"}'),
        ("details", "not json"),
    ],
)
def test_changed_field_is_caught_at_its_entry(backend, store, column, value):
    """Changing any hashed field of entry 3 is reported at entry 3."""
    fill(store)
    # the column comes from the fixed list above, not from outside
    backend.sql(f"UPDATE audit_log SET {column} = %s WHERE seq = 3", value)  # noqa: S608
    error = tampered(backend, store)
    assert error.seq == 3
    assert "does not match its hash" in error.reason


def test_deleted_entry_is_caught(backend, store):
    """Deleting entry 4 is reported at 4 as missing."""
    fill(store)
    backend.sql("DELETE FROM audit_log WHERE seq = 4")
    error = tampered(backend, store)
    assert error.seq == 4
    assert "entry 4 is missing" in error.reason


def test_deleted_last_entries_are_caught(backend, store):
    """Cutting entries from the end is caught by the head."""
    fill(store)
    backend.sql("DELETE FROM audit_log WHERE seq >= 5")
    error = tampered(backend, store)
    assert error.seq == 5
    assert "deleted from the end" in error.reason


def test_deleted_first_entry_is_caught(backend, store):
    """Deleting the very first entry is reported at 1."""
    fill(store)
    backend.sql("DELETE FROM audit_log WHERE seq = 1")
    assert tampered(backend, store).seq == 1


def test_inserted_entry_is_caught(backend, store):
    """An entry inserted in the middle (later ones renumbered) breaks the chain there."""
    fill(store)
    for seq in range(6, 2, -1):
        backend.sql("UPDATE audit_log SET seq = %s WHERE seq = %s", seq + 1, seq)
    row = backend.sql("SELECT hash FROM audit_log WHERE seq = 2")[0]
    backend.sql(
        "INSERT INTO audit_log (seq, at, actor, action, subject, reason, content_sha256, "
        "details, prev_hash, hash) VALUES (3, '2026-11-22T14:00:00.000Z', 'mallory', "
        "'dataset.approve', 'dataset:d1', '', NULL, '{}', %s, %s)",
        row[0],
        "0" * 64,
    )
    error = tampered(backend, store)
    assert error.seq == 3


def test_appended_forgery_with_a_valid_hash_is_caught_by_the_head(backend, store):
    """An entry added after the last, even with a correct hash, is outside the head."""
    log = fill(store)
    end = log.entries()[-1]
    fields = {
        "seq": 7,
        "at": "2026-11-22T14:00:00.000Z",
        "actor": "mallory",
        "action": "dataset.approve",
        "subject": "dataset:d1",
        "reason": "",
        "content_sha256": None,
        "details": {},
    }
    backend.sql(
        "INSERT INTO audit_log (seq, at, actor, action, subject, reason, content_sha256, "
        "details, prev_hash, hash) VALUES (7, %s, 'mallory', 'dataset.approve', "
        "'dataset:d1', '', NULL, '{}', %s, %s)",
        fields["at"],
        end.hash,
        entry_hash(end.hash, fields),
    )
    error = tampered(backend, store)
    assert error.seq == 7
    assert "outside the audit log's head" in error.reason


def test_swapped_entries_are_caught(backend, store):
    """Swapping entries 2 and 5 is reported at 2."""
    fill(store)
    backend.sql("UPDATE audit_log SET seq = -1 WHERE seq = 2")
    backend.sql("UPDATE audit_log SET seq = 2 WHERE seq = 5")
    backend.sql("UPDATE audit_log SET seq = 5 WHERE seq = -1")
    error = tampered(backend, store)
    assert error.seq == 2
    assert "chain is broken" in error.reason


def test_recomputed_hash_is_caught_at_the_next_entry(backend, store):
    """A changed entry whose own hash was recomputed breaks the link to the next one."""
    log = fill(store)
    entry = log.entries()[2]  # seq 3
    fields = {**entry.hashed_fields(), "reason": "rewritten"}
    backend.sql(
        "UPDATE audit_log SET reason = 'rewritten', hash = %s WHERE seq = 3",
        entry_hash(entry.prev_hash, fields),
    )
    error = tampered(backend, store)
    assert error.seq == 4
    assert "entry 3" in error.reason


def test_rewritten_tail_is_caught_by_the_head(backend, store):
    """Rewriting the last entry and its hash is caught: the head still holds the old hash."""
    log = fill(store)
    entry = log.entries()[-1]
    fields = {**entry.hashed_fields(), "actor": "mallory"}
    backend.sql(
        "UPDATE audit_log SET actor = 'mallory', hash = %s WHERE seq = 6",
        entry_hash(entry.prev_hash, fields),
    )
    error = tampered(backend, store)
    assert error.seq == 6
    assert "head" in error.reason


def test_appends_continue_the_chain_after_reopening(backend, store):
    """Reopening the database continues the same chain."""
    fill(store, 2)
    store.close()
    reopened = backend.open()
    try:
        log = AuditLog(reopened)
        entry = log.append(actor="amina", action="x", subject="s", details={"k": "v"})
        assert entry.seq == 3
        assert log.verify().count == 3
        assert json.loads(backend.sql("SELECT details FROM audit_log WHERE seq = 3")[0][0]) == {
            "k": "v"
        }
    finally:
        reopened.close()


def test_concurrent_appenders_keep_one_chain(backend, store):
    """Two processes' worth of appenders (separate connections pools) interleave into one
    unbroken chain: the head row serialises them."""
    second = backend.open()
    errors: list[BaseException] = []

    def append_many(target: GovernanceStore, who: str) -> None:
        try:
            log = AuditLog(target)
            for i in range(15):
                log.append(actor=who, action="x", subject="s", details={"i": i})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [
        threading.Thread(target=append_many, args=(store, "one")),
        threading.Thread(target=append_many, args=(second, "two")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    second.close()
    assert errors == []
    report = AuditLog(store).verify()
    assert report.count == 30
