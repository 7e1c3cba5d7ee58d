"""The audit log as a Merkle log with signed, witnessed heads, tried by the tamper kinds of
docs/reliability.md: on both databases, an outsider with write access to the database (no
key), and an insider with the database *and* the governance signing key, caught by the
witnesses' cosignatures.
The tampering is plain SQL built from the test's own values (hashes, numbers), as an
attacker holding the database would write it.
"""

# ruff: noqa: S608

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from exchange import CertificateAuthority, SubsystemId, cert_to_pem
from exchange.log import CompactRange, Cosignature, cosign, utc_timestamp
from governance import AuditLog, AuditSigner, AuditTampered, GovernanceStore, entry_hash
from governance._audit import _entry, audit_leaf
from tests.governance.conftest import Backend
from tests.governance.test_audit import fill

GOVERNANCE = SubsystemId.parse("MA/GOV/DNUM/REGISTRY")
WITNESSES = ("MA/GOV/MOI/CIVIL-REGISTRY", "MA/GOV/MEF/TAX")


@pytest.fixture
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("MA")


@pytest.fixture
def signer(ca: CertificateAuthority) -> AuditSigner:
    key = ed25519.Ed25519PrivateKey.generate()
    return AuditSigner(GOVERNANCE, key, ca.issue(GOVERNANCE, key.public_key()))


@pytest.fixture
def witnesses(ca: CertificateAuthority) -> dict[str, tuple[ed25519.Ed25519PrivateKey, str]]:
    made = {}
    for name in WITNESSES:
        key = ed25519.Ed25519PrivateKey.generate()
        cert = ca.issue(SubsystemId.parse(name), key.public_key())
        made[name] = (key, cert_to_pem(cert))
    return made


@pytest.fixture
def signed(store: GovernanceStore, signer: AuditSigner) -> GovernanceStore:
    store.audit_signer = signer
    return store


def _witness(log: AuditLog, witnesses, name: str = WITNESSES[0]) -> Cosignature:
    head = log.signed_head()
    assert head is not None
    key, pem = witnesses[name]
    return cosign(head, name, key, witnessed_at=utc_timestamp(), certificate=pem)


def _rewrite(backend: Backend, log: AuditLog, signer: AuditSigner | None, seq: int) -> None:
    """Change the actor of entry ``seq`` and recompute every hash after it, the tree, the
    head, and (with ``signer``) the head's signature: what someone with write access to the
    database and the project's code can do."""
    backend.sql(f"UPDATE audit_log SET actor = 'mallory' WHERE seq = {seq}")
    _recompute(backend, log, signer)


def _recompute(backend: Backend, log: AuditLog, signer: AuditSigner | None) -> None:
    prev = "0" * 64
    tree = CompactRange()
    for entry in log.entries():
        row = _entry_row(backend, entry.seq)
        digest = entry_hash(prev, row.hashed_fields())
        backend.sql(
            f"UPDATE audit_log SET prev_hash = '{prev}', hash = '{digest}' WHERE seq = {entry.seq}"
        )
        tree.append(audit_leaf(digest))
        prev = digest
    size, root = tree.size, tree.root()
    values = (
        f"seq = {size}, hash = '{prev}', root = '{root.hex()}', "
        f"tree = '{json.dumps([n.hex() for n in tree.roots])}'"
    )
    if signer is not None:
        at = utc_timestamp()
        values += (
            f", signed_size = {size}, signed_root = '{root.hex()}', signed_at = '{at}', "
            f"signature = '{signer.sign(size, root, at).hex()}'"
        )
    backend.sql(f"UPDATE audit_head SET {values} WHERE id = 1")


def _entry_row(backend: Backend, seq: int):
    columns = "seq, at, actor, action, subject, reason, content_sha256, details, prev_hash, hash"
    (values,) = backend.sql(f"SELECT {columns} FROM audit_log WHERE seq = {seq}")

    class Row:
        pass

    row = Row()
    for name, value in zip(columns.split(", "), values, strict=True):
        setattr(row, name, value)
    return _entry(row)  # type: ignore[arg-type]


def test_every_entry_signs_the_head_and_it_verifies_with_the_ca(signed, signer, ca):
    """With a signer, each append signs the tree head in its own transaction; verify checks
    the Merkle root rebuilt from the entries and the signature against the CA."""
    log = fill(signed, 5)
    head = log.signed_head()
    assert head is not None
    assert (head.size, head.log_id) == (5, "MA/GOV/DNUM/REGISTRY#audit")
    report = log.verify(ca_certificate=ca.certificate)
    assert (report.count, report.signed_size, report.log_id) == (5, 5, head.log_id)
    assert report.root == head.root_hash.hex()


def test_an_outsider_who_recomputes_the_chain_is_caught(signed, backend, ca):
    """Changed actor, whole chain and tree recomputed, but no key: the signed head no longer
    covers the entries (the project's own hash recomputation no longer fools verify)."""
    log = fill(signed, 6)
    _rewrite(backend, log, None, 3)
    with pytest.raises(AuditTampered, match="not those the signed head covers") as caught:
        log.verify()
    assert caught.value.kind == "changed"


def test_an_outsider_who_wipes_the_signature_is_caught_when_one_is_required(signed, backend, ca):
    """Removing the signed head to pass as an unsigned log is refused once the CA is given."""
    log = fill(signed, 4)
    backend.sql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    backend.sql("UPDATE audit_head SET signature = NULL, log_id = NULL")
    _recompute(backend, log, None)
    assert log.verify().signed_size == 0  # nothing to check it against: only a chain
    with pytest.raises(AuditTampered, match="not signed") as caught:
        log.verify(ca_certificate=ca.certificate)
    assert caught.value.kind == "unsigned"


def test_an_insider_with_the_key_is_caught_by_a_witness(signed, signer, backend, witnesses, ca):
    """Database and signing key: the rewrite is re-signed and verifies alone, but the tree no
    longer has, at the witnessed size, the root the witness cosigned: split view."""
    log = fill(signed, 6)
    witnessed = _witness(log, witnesses)
    assert log.keep_cosignature(witnessed)
    fill(signed, 2)
    _rewrite(backend, log, signer, 2)
    backend.sql("DELETE FROM audit_cosignatures")  # the insider also removes the evidence
    assert log.verify(ca_certificate=ca.certificate).count == 8  # alone, it looks intact
    with pytest.raises(AuditTampered, match="rewritten") as caught:
        log.verify(ca_certificate=ca.certificate, cosignatures=[witnessed])
    assert caught.value.kind == "split-view"


def test_an_insider_who_cuts_the_end_is_caught_as_rollback(signed, signer, backend, witnesses, ca):
    """Entries removed from the end and the head re-signed: fewer entries than witnessed."""
    log = fill(signed, 6)
    witnessed = _witness(log, witnesses)
    backend.sql("DELETE FROM audit_log WHERE seq > 4")
    _recompute(backend, log, signer)
    assert log.verify(ca_certificate=ca.certificate).count == 4
    with pytest.raises(AuditTampered, match="only 4 are stored") as caught:
        log.verify(cosignatures=[witnessed])
    assert caught.value.kind == "rollback"


def test_cosignatures_kept_in_the_database_are_checked_too(signed, signer, backend, witnesses):
    """Without the witnesses' records, those the governance keeps still catch a careless
    insider (one who re-signed but left the cosignatures)."""
    log = fill(signed, 5)
    assert log.keep_cosignature(_witness(log, witnesses))
    assert not log.keep_cosignature(log.cosignatures()[0])  # kept once
    _rewrite(backend, log, signer, 1)
    with pytest.raises(AuditTampered) as caught:
        log.verify()
    assert caught.value.kind == "split-view"


def test_two_witnesses_shown_two_logs_reveal_the_split(signed, signer, backend, witnesses):
    """The keeper shows one witness a head, rewrites, shows the other another head of the
    same size: their cosignatures disagree."""
    log = fill(signed, 5)
    first = _witness(log, witnesses, WITNESSES[0])
    _rewrite(backend, log, signer, 5)
    second = _witness(log, witnesses, WITNESSES[1])
    with pytest.raises(AuditTampered, match="cosigned different roots") as caught:
        log.verify(cosignatures=[first, second])
    assert caught.value.kind == "split-view"


def test_a_forged_or_foreign_cosignature_is_refused(signed, witnesses, ca):
    """A cosignature whose signature does not verify, or of a head this log never had, is
    not kept; one signed by a key the CA did not certify fails verify with the CA."""
    log = fill(signed, 3)
    good = _witness(log, witnesses)
    forged = Cosignature(good.head, good.witness, good.witnessed_at, b"\0" * 64, good.certificate)
    with pytest.raises(Exception, match="does not verify"):
        log.keep_cosignature(forged)
    stranger_ca = CertificateAuthority.create("MA")
    key = ed25519.Ed25519PrivateKey.generate()
    pem = cert_to_pem(stranger_ca.issue(SubsystemId.parse(WITNESSES[0]), key.public_key()))
    foreign = cosign(good.head, WITNESSES[0], key, witnessed_at=good.witnessed_at, certificate=pem)
    with pytest.raises(AuditTampered, match="certificate"):
        log.verify(ca_certificate=ca.certificate, cosignatures=[foreign])


def test_consistency_proofs_link_heads(signed, witnesses):
    """A later head extends an earlier one: the proof from the earlier size verifies."""
    log = fill(signed, 3)
    earlier = log.signed_head()
    fill(signed, 4)
    later = log.signed_head()
    assert earlier is not None
    assert later is not None
    proof = log.consistency_proof(earlier.size, later.size)
    assert (proof.old_root, proof.new_root) == (earlier.root_hash, later.root_hash)
    assert proof.verify()


def test_entries_from_before_the_tree_or_the_key_are_covered(backend, signer, ca):
    """Entries written before the tree existed get their root when migrating (revision 0008);
    those written without a key are covered by the next signed head."""
    from alembic import command  # noqa: PLC0415 - only this test walks the revisions

    from governance._db import alembic_config  # noqa: PLC0415

    store = backend.open()
    log = fill(store, 3)
    config = alembic_config()
    with store.transaction("downgrade") as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0006")
    store.migrate(backend.schema)
    unsigned = log.verify()
    assert (unsigned.count, unsigned.signed_size) == (3, 0)
    store.audit_signer = signer
    fill(store, 1)
    assert log.verify(ca_certificate=ca.certificate).signed_size == 4
    store.close()
