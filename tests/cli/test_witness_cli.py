"""`tabadul audit verify` and `tabadul log verify` with witnesses' cosignatures, and
`tabadul witness export`: an insider's rewrite, re-signed with the key, exits 1."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from typer.testing import CliRunner

from connectors import ConnectorStore
from exchange import CertificateAuthority, SubsystemId, cert_to_pem
from exchange.log import LogEntry, MessageLog, SQLiteLogStore, cosign, utc_timestamp
from governance import AuditLog, AuditSigner, GovernanceStore
from tabadul.cli import build_app
from tests.governance.test_audit import fill

runner = CliRunner()
WITNESS = SubsystemId.parse("MA/GOV/MEF/TAX")


@pytest.fixture
def world(tmp_path):
    """A signed audit log and a message log, each cosigned by a witness whose connector
    database holds the cosignatures; the CA certificate on disk."""
    ca = CertificateAuthority.create("MA")
    (tmp_path / "ca.pem").write_bytes(ca.certificate.public_bytes(Encoding.PEM))
    gov_key = ed25519.Ed25519PrivateKey.generate()
    registry = SubsystemId.parse("MA/GOV/DNUM/REGISTRY")
    store = GovernanceStore.open(str(tmp_path / "governance.sqlite"))
    store.audit_signer = AuditSigner(registry, gov_key, ca.issue(registry, gov_key.public_key()))
    audit = fill(store, 4)
    witness_key = ed25519.Ed25519PrivateKey.generate()
    pem = cert_to_pem(ca.issue(WITNESS, witness_key.public_key()))
    witness_db = ConnectorStore(str(tmp_path / "witness.db"))
    head = audit.signed_head()
    assert head is not None
    witness_db.keep_cosignature(
        cosign(head, str(WITNESS), witness_key, witnessed_at=utc_timestamp(), certificate=pem)
    )
    log_key = ed25519.Ed25519PrivateKey.generate()
    log = MessageLog(
        SQLiteLogStore(tmp_path / "civil.log.sqlite"),
        log_id="MA/GOV/MOI/CIVIL",
        signing_key=log_key,
    )
    log.append_batch([LogEntry("sent", f"{i:032x}", "a.b", "x", "y", b"{}") for i in range(5)])
    witness_db.keep_cosignature(
        cosign(
            log.signed_head(),
            str(WITNESS),
            witness_key,
            witnessed_at=utc_timestamp(),
            certificate=pem,
        )
    )
    log.close()
    witness_db.close()
    return {"tmp": tmp_path, "store": store, "audit": audit, "signer": store.audit_signer}


def _cli(*args: str):
    return runner.invoke(build_app(), list(args))


def test_intact_logs_verify_against_the_witness(world):
    tmp = world["tmp"]
    audited = _cli("audit", "verify", str(tmp / "governance.sqlite"), "--ca", str(tmp / "ca.pem"),
                   "--witness", str(tmp / "witness.db"), "--json")  # fmt: skip
    assert audited.exit_code == 0, audited.output
    assert json.loads(audited.stdout)["witnessed"]["witnessed_size"] == 4
    logged = _cli("log", "verify", str(tmp / "civil.log.sqlite"), "--log-id", "MA/GOV/MOI/CIVIL",
                  "--witness", str(tmp / "witness.db"), "--ca", str(tmp / "ca.pem"))  # fmt: skip
    assert logged.exit_code == 0, logged.output
    assert "witnessed: 1 cosignatures" in logged.output


def test_an_insider_rewrite_exits_1_and_exports_verify_the_same(world):
    """The insider deletes entries and appends others, signing with the governance key: the
    chain and the signed head are fine, the witness's cosignature is not; an exported file
    of cosignatures gives the same verdict."""
    tmp, store = world["tmp"], world["store"]
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_log WHERE seq > 2")
        conn.exec_driver_sql("DELETE FROM audit_cosignatures")
    # rebuild the head as the code would, then keep writing with the key
    audit = AuditLog(store)
    entries = audit.entries()
    from exchange.log import CompactRange  # noqa: PLC0415 - only this test rebuilds a tree
    from governance._audit import audit_leaf  # noqa: PLC0415

    tree = CompactRange()
    for entry in entries:
        tree.append(audit_leaf(entry.hash))
    roots = json.dumps([r.hex() for r in tree.roots])
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE audit_head SET seq = 2, hash = '{entries[-1].hash}', tree = '{roots}', "  # noqa: S608
            f"root = '{tree.root().hex()}'"
        )
    fill(store, 2)  # four entries again, signed: a different history of the same length
    assert audit.verify().count == 4
    exported = tmp / "cosignatures.json"
    done = _cli("witness", "export", str(tmp / "witness.db"), "-o", str(exported))
    assert done.exit_code == 0, done.output
    for source in (["--witness", str(tmp / "witness.db")], ["--cosignatures", str(exported)]):
        caught = _cli("audit", "verify", str(tmp / "governance.sqlite"), *source, "--json")
        assert caught.exit_code == 1, caught.output
        error = json.loads(caught.stdout)["error"]
        assert (error["code"], error["kind"]) == ("audit-tampered", "split-view")


def test_missing_witness_files_are_refused_and_not_created(world):
    tmp = world["tmp"]
    absent = tmp / "nope.db"
    result = _cli("audit", "verify", str(tmp / "governance.sqlite"), "--witness", str(absent))
    assert result.exit_code == 2
    assert "cosignatures-unreadable" in result.output
    assert not absent.exists()
    bad = tmp / "bad.json"
    bad.write_text("{}")
    result = _cli("log", "verify", str(tmp / "civil.log.sqlite"), "--log-id", "x",
                  "--cosignatures", str(bad))  # fmt: skip
    assert result.exit_code == 2
    assert "cosignatures-unreadable" in result.output
