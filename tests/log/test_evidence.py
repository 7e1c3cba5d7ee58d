"""Evidence bundles: a message in a connector's log, proven offline with only the CA."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import typer
from cryptography.hazmat.primitives.serialization import Encoding
from typer.testing import CliRunner

from exchange import CertificateAuthority, EvidenceError, cert_from_pem, parse_envelope
from exchange.log import LogEntry, MessageLog, SQLiteLogStore, evidence_bundle, verify_evidence
from tabadul.cli._log import evidence_app, log_app
from tests.support.bus import Bus


def _log_of(bus: Bus, path: Path, data: bytes) -> MessageLog:
    """The civil registry's log after receiving ``data`` and two other messages."""
    key, _ = bus.civil.keys.signer()
    log = MessageLog(SQLiteLogStore(path), log_id=str(bus.civil.subsystem), signing_key=key)
    for raw in (bus.lookup(), data, bus.lookup()):
        header = parse_envelope(raw).header
        recipient = str(header.recipient)
        log.append(LogEntry("received", header.id, header.type, str(header.sender), recipient, raw))
    log.flush()
    return log


def _bundle(bus: Bus, tmp_path: Path) -> tuple[bytes, str]:
    data = bus.lookup()
    log = _log_of(bus, tmp_path / "civil.sqlite", data)
    message_id = parse_envelope(data).header.id
    proof = log.inclusion_proof(message_id)
    _, keeper = bus.civil.keys.signer()
    _, sender = bus.tax.keys.signer()
    log.close()
    return evidence_bundle(proof, keeper, sender), message_id


def test_bundle_verifies_with_only_the_ca(bus, tmp_path):
    """The bundle proves position, keeper and the sender's signature."""
    bundle, message_id = _bundle(bus, tmp_path)
    report = verify_evidence(bundle, bus.sandbox.ca.certificate)
    assert report.message_id == message_id
    assert (report.position, report.tree_size) == (1, 3)
    assert report.log_id == "MA/GOV/MOI/CIVIL"
    assert report.sender_signature == "valid"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d["record"].update(direction="sent"), "not in the tree"),
        (lambda d: d["record"].update(seq=1.0), "non-negative integers"),
        (lambda d: d["inclusion"].update(proof=[None]), "list of hex strings"),
        (lambda d: d["inclusion"]["proof"].reverse(), "bad audit path"),
        (lambda d: d["head"].update(size=4), "signature does not verify"),
        (lambda d: d.update(envelope=base64.b64encode(b"{}").decode()), "do not match"),
        (lambda d: d.update(sender_certificate=d["log_certificate"]), "not the one that signed"),
        (lambda d: d.update(tabadul_evidence=2, **{"tabadul-evidence": 2}), "version 1"),
    ],
)
def test_tampered_bundle_is_refused_with_the_reason(bus, tmp_path, change, reason):
    """Any change to the record, path, head, envelope or certificates is caught and named."""
    bundle, _ = _bundle(bus, tmp_path)
    doc = json.loads(bundle)
    change(doc)
    with pytest.raises(EvidenceError, match=reason):
        verify_evidence(json.dumps(doc).encode(), bus.sandbox.ca.certificate)


def test_record_that_misstates_the_envelope_is_refused(bus, tmp_path):
    """A keeper's record naming another sender than the signed envelope does not verify,
    even with a fresh head over the altered record."""
    data = bus.lookup()
    key, keeper = bus.civil.keys.signer()
    store = SQLiteLogStore(tmp_path / "l.sqlite")
    log = MessageLog(store, log_id=str(bus.civil.subsystem), signing_key=key)
    header = parse_envelope(data).header
    lie = LogEntry(
        "received", header.id, header.type, "MA/GOV/MEF/CUSTOMS", str(header.recipient), data
    )
    log.append(lie)
    log.flush()
    bundle = evidence_bundle(log.inclusion_proof(header.id), keeper)
    log.close()
    with pytest.raises(EvidenceError, match="does not match the envelope"):
        verify_evidence(bundle, bus.sandbox.ca.certificate)


def test_bundle_under_another_ca_is_refused(bus, tmp_path):
    """Certificates not issued by the CA the checker trusts make the bundle worthless."""
    bundle, _ = _bundle(bus, tmp_path)
    with pytest.raises(EvidenceError, match="not issued by this CA"):
        verify_evidence(bundle, CertificateAuthority.create("MA").certificate)


def test_cli_log_proof_then_evidence_verify(bus, tmp_path):
    """`tabadul log proof` writes a bundle that `tabadul evidence verify` accepts, and a
    damaged bundle exits 1 with the reason."""
    data = bus.lookup()
    _log_of(bus, tmp_path / "civil.sqlite", data).close()
    (tmp_path / "directory.json").write_bytes(bus.sandbox.sign())
    ca_pem = tmp_path / "ca.pem"
    ca_pem.write_bytes(bus.sandbox.ca.certificate.public_bytes(Encoding.PEM))
    app = typer.Typer()
    app.add_typer(log_app, name="log")
    app.add_typer(evidence_app, name="evidence")
    runner = CliRunner()
    message_id = parse_envelope(data).header.id
    out = tmp_path / "evidence.json"
    made = runner.invoke(
        app,
        [
            "log", "proof", str(tmp_path / "civil.sqlite"), message_id, "-o", str(out),
            "--directory", str(tmp_path / "directory.json"), "--ca", str(ca_pem),
        ],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    checked = runner.invoke(app, ["evidence", "verify", str(out), "--ca", str(ca_pem), "--json"])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.output)["sender_signature"] == "valid"
    doc = json.loads(out.read_bytes())
    doc["record"]["message_type"] = "civil.other"
    out.write_text(json.dumps(doc))
    bad = runner.invoke(app, ["evidence", "verify", str(out), "--ca", str(ca_pem)])
    assert bad.exit_code == 1
    assert "evidence-invalid" in bad.output
    missing = runner.invoke(app, ["log", "proof", str(tmp_path / "civil.sqlite"), "f" * 32,
                                  "-o", str(out), "--directory", str(tmp_path / "directory.json"),
                                  "--ca", str(ca_pem)])  # fmt: skip
    assert missing.exit_code == 2
    assert "is not in log" in missing.output
    assert cert_from_pem(ca_pem.read_bytes()) == bus.sandbox.ca.certificate
