"""``tabadul registry``: members, subsystems, certificates checked against a CA made here,
services, grants and subscriptions; each change by an operator only; the result signs as a
directory the exchange loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from exchange import CAStore, CertificateAuthority, SubsystemId, cert_to_pem, load_directory
from tests.cli.governance.conftest import Cli

PASSPHRASE = "ca secret"
MEF = "MA/GOV/MEF"
CUSTOMS = "MA/GOV/MEF/CUSTOMS"
TAX = "MA/GOV/MEF/TAX"
LOOKUP = "tax.compliance-certificate.request"
LOOKUP_RESPONSE = "tax.compliance-certificate.response"
LODGED = "customs.declaration-lodged"


@pytest.fixture
def ca(people: Cli, monkeypatch: pytest.MonkeyPatch) -> CAStore:
    """The operator's CA folder, named by TABADUL_CA_DIR (so --ca may be left out)."""
    store = CAStore.init(people.tmp / "ca", "MA", PASSPHRASE.encode())
    monkeypatch.setenv("TABADUL_CA_DIR", str(store.root))
    monkeypatch.setenv("TABADUL_CA_PASSPHRASE", PASSPHRASE)
    return store


def _certificate(cli: Cli, ca: CertificateAuthority, subsystem: str, usage: str) -> Path:
    """A certificate of ``subsystem`` issued by ``ca``, in a PEM file."""
    key = (
        ed25519.Ed25519PrivateKey.generate().public_key()
        if usage == "signing"
        else x25519.X25519PrivateKey.generate().public_key()
    )
    cert = ca.issue(SubsystemId.parse(subsystem), key)
    return Path(cli.file(f"{subsystem.replace('/', '_')}-{usage}.pem", cert_to_pem(cert)))


@pytest.fixture
def subsystems(people: Cli, ca: CAStore) -> Cli:
    """Member MEF with subsystems CUSTOMS and TAX."""
    people.ok("registry", "member", "add", MEF, "--name", "وزارة الاقتصاد والمالية",
              "--actor", "root")  # fmt: skip
    for subsystem in (CUSTOMS, TAX):
        people.ok("registry", "subsystem", "add", subsystem, "--actor", "root")
    return people


def test_members_and_subsystems(subsystems: Cli):
    """Members list with their (Arabic) names, subsystems with their member."""
    members = subsystems("registry", "member", "list")
    assert "وزارة الاقتصاد والمالية" in members.output
    assert subsystems.ok("registry", "member", "list")["members"] == [
        {"member_id": MEF, "name": "وزارة الاقتصاد والمالية"}
    ]
    assert subsystems.ok("registry", "subsystem", "list")["subsystems"] == [CUSTOMS, TAX]
    assert MEF in subsystems("registry", "subsystem", "list").output


def test_member_and_subsystem_refusals(subsystems: Cli):
    """Only operators; a malformed id; a subsystem of an unknown member; no duplicates."""
    subsystems.refused("wrong-role", "registry", "member", "add", "MA/GOV/MOI", "--name", "x",
                       "--actor", "amina")  # fmt: skip
    subsystems.refused("invalid-input", "registry", "member", "add", "MA/GOV", "--name", "x",
                       "--actor", "root")  # fmt: skip
    subsystems.refused("already-exists", "registry", "member", "add", MEF, "--name", "x",
                       "--actor", "root")  # fmt: skip
    subsystems.refused("not-found", "registry", "subsystem", "add", "MA/GOV/MOI/CIVIL",
                       "--actor", "root")  # fmt: skip
    subsystems.refused("no-actor", "registry", "subsystem", "add", "MA/GOV/MEF/X")


def test_certificates_register_retire_revoke_list(subsystems: Cli, ca: CAStore):
    """A certificate issued by the CA registers (the CA from TABADUL_CA_DIR), retires at a
    time and is revoked; the list shows each state."""
    pem = _certificate(subsystems, ca.ca, CUSTOMS, "signing")
    made = subsystems.ok("registry", "cert", "register", CUSTOMS, str(pem), "--actor", "root")
    serial = made["certificate"]["serial"]
    assert made["certificate"]["usage"] == "signing"
    assert made["certificate"]["subsystem"] == CUSTOMS
    retired = subsystems.ok("registry", "cert", "retire", serial, "--after",
                            "2030-01-01T00:00:00Z", "--actor", "root")  # fmt: skip
    assert retired["certificate"]["retire_after"] == "2030-01-01T00:00:00.000Z"
    listed = subsystems("registry", "cert", "list", "--subsystem", CUSTOMS)
    assert serial in listed.output
    assert "valid" in listed.output
    revoked = subsystems("registry", "cert", "revoke", serial, "--reason", "key lost",
                         "--actor", "root")  # fmt: skip
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked signing certificate {serial} of {CUSTOMS}" in revoked.output
    again = subsystems.refused("invalid-input", "registry", "cert", "revoke", serial,
                               "--reason", "x", "--actor", "root")  # fmt: skip
    assert "already revoked" in again.output
    [record] = subsystems.ok("registry", "cert", "list")["certificates"]
    assert record["revoked_reason"] == "key lost"


def test_certificate_refusals(subsystems: Cli, ca: CAStore, monkeypatch):
    """A certificate of another CA or subsystem, an unreadable file, no CA, a bad time."""
    stranger = CertificateAuthority.create("MA")
    foreign = _certificate(subsystems, stranger, CUSTOMS, "signing")
    subsystems.refused("invalid-input", "registry", "cert", "register", CUSTOMS, str(foreign),
                       "--actor", "root")  # fmt: skip
    tax_cert = _certificate(subsystems, ca.ca, TAX, "encryption")
    wrong = subsystems.refused("invalid-input", "registry", "cert", "register", CUSTOMS,
                               str(tax_cert), "--actor", "root")  # fmt: skip
    assert f"is for {TAX}" in wrong.output
    subsystems.refused("unreadable-file", "registry", "cert", "register", CUSTOMS,
                       str(subsystems.tmp / "none.pem"), "--actor", "root")  # fmt: skip
    subsystems.refused("bad-time", "registry", "cert", "register", TAX, str(tax_cert),
                       "--retire-after", "2030-01-01", "--actor", "root")  # fmt: skip
    subsystems.refused("not-found", "registry", "cert", "retire", "abc", "--after",
                       "2030-01-01T00:00:00+01:00", "--actor", "root")  # fmt: skip
    explicit = subsystems.ok("registry", "cert", "register", TAX, str(tax_cert),
                             "--ca", str(ca.root / "ca.pem"), "--actor", "root")  # fmt: skip
    assert explicit["certificate"]["usage"] == "encryption"
    monkeypatch.delenv("TABADUL_CA_DIR")
    subsystems.refused("no-ca", "registry", "cert", "register", TAX, str(tax_cert),
                       "--actor", "root")  # fmt: skip


def test_services(subsystems: Cli):
    """A provided request type with its response, a published event; removal; refusals."""
    provided = subsystems.ok("registry", "service", "add", TAX, LOOKUP, "--role", "provides",
                             "--response-type", LOOKUP_RESPONSE, "--actor", "root")  # fmt: skip
    assert provided["service"] == {
        "subsystem": TAX,
        "type": LOOKUP,
        "role": "provides",
        "response_type": LOOKUP_RESPONSE,
    }
    subsystems.ok("registry", "service", "add", CUSTOMS, LODGED, "--role", "publishes",
                  "--actor", "root")  # fmt: skip
    listed = subsystems.ok("registry", "service", "list")["services"]
    assert [(s["subsystem"], s["role"]) for s in listed] == [
        (CUSTOMS, "publishes"),
        (TAX, "provides"),
    ]
    subsystems.refused("invalid-input", "registry", "service", "add", TAX, LODGED,
                       "--role", "provides", "--actor", "root")  # fmt: skip
    subsystems.refused("wrong-role", "registry", "service", "add", TAX, LODGED,
                       "--role", "publishes", "--actor", "karim")  # fmt: skip
    subsystems.ok("registry", "service", "remove", CUSTOMS, LODGED, "--role", "publishes",
                  "--actor", "root")  # fmt: skip
    subsystems.refused("not-found", "registry", "service", "remove", CUSTOMS, LODGED,
                       "--role", "publishes", "--actor", "root")  # fmt: skip
    assert TAX in subsystems("registry", "service", "list").output


TERMS = ("--purpose", "customs-clearance", "--legal-basis", "Code des douanes, art. 42")
BASIS = {"text": "Code des douanes, art. 42", "reference": ""}


def test_grants(subsystems: Cli):
    """Grant for a purpose on a legal basis, list, refuse a duplicate, an unknown subsystem
    and a grant without a purpose, remove."""
    grant = subsystems.ok("registry", "grant", "add", CUSTOMS, LOOKUP, TAX, *TERMS,
                          "--expires", "2099-01-01", "--actor", "root")  # fmt: skip
    assert grant["grant"] == {
        "sender": CUSTOMS,
        "type": LOOKUP,
        "recipient": TAX,
        "purpose": "customs-clearance",
        "legal_basis": BASIS,
        "expires": "2099-01-01T00:00:00.000Z",
    }
    assert subsystems.ok("registry", "grant", "list")["grants"] == [grant["grant"]]
    assert CUSTOMS in subsystems("registry", "grant", "list").output
    subsystems.refused("already-exists", "registry", "grant", "add", CUSTOMS, LOOKUP, TAX,
                       *TERMS, "--actor", "root")  # fmt: skip
    subsystems.refused("not-found", "registry", "grant", "add", CUSTOMS, LOOKUP,
                       "MA/GOV/MEF/NOPE", *TERMS, "--actor", "root")  # fmt: skip
    subsystems.refused("invalid-input", "registry", "grant", "add", CUSTOMS, LOOKUP, TAX,
                       "--purpose", "Not A Code", "--legal-basis", "x",
                       "--actor", "root")  # fmt: skip
    no_purpose = subsystems("registry", "grant", "add", CUSTOMS, LOOKUP, TAX, "--actor", "root")
    assert no_purpose.exit_code != 0
    assert "--purpose" in no_purpose.output
    subsystems.ok("registry", "grant", "remove", CUSTOMS, LOOKUP, TAX, "--actor", "root")
    subsystems.refused("not-found", "registry", "grant", "remove", CUSTOMS, LOOKUP, TAX,
                       "--actor", "root")  # fmt: skip
    assert "no grant" in subsystems("registry", "grant", "list").output


def test_subscriptions(subsystems: Cli):
    """Subscribe to an event type, refuse a request type as a topic, unsubscribe."""
    made = subsystems.ok("registry", "subscription", "add", TAX, LODGED, *TERMS,
                         "--actor", "root")  # fmt: skip
    assert made["subscription"] == {
        "subscriber": TAX,
        "topic": LODGED,
        "purpose": "customs-clearance",
        "legal_basis": BASIS,
        "expires": None,
    }
    assert LODGED in subsystems("registry", "subscription", "list").output
    subsystems.refused("invalid-input", "registry", "subscription", "add", TAX, LOOKUP,
                       *TERMS, "--actor", "root")  # fmt: skip
    subsystems.ok("registry", "subscription", "remove", TAX, LODGED, "--actor", "root")
    subsystems.refused("not-found", "registry", "subscription", "remove", TAX, LODGED,
                       "--actor", "root")  # fmt: skip
    assert subsystems.ok("registry", "subscription", "list")["subscriptions"] == []


def test_registry_signs_as_a_directory(subsystems: Cli, ca: CAStore):
    """What the commands registered publishes as a signed directory the exchange loads."""
    for subsystem in (CUSTOMS, TAX):
        for usage in ("signing", "encryption"):
            pem = _certificate(subsystems, ca.ca, subsystem, usage)
            subsystems.ok("registry", "cert", "register", subsystem, str(pem), "--actor", "root")
    subsystems.ok("registry", "service", "add", CUSTOMS, LODGED, "--role", "publishes",
                  "--actor", "root")  # fmt: skip
    subsystems.ok("registry", "subscription", "add", TAX, LODGED, *TERMS, "--actor", "root")
    output = subsystems.tmp / "directory.json"
    published = subsystems.ok("directory", "publish", "--db",
                              str(subsystems.tmp / "governance.sqlite"), "--ca-dir",
                              str(ca.root), "--actor", "root", "-o", str(output))  # fmt: skip
    assert published["certificates"] == 4
    directory = load_directory(output.read_bytes(), ca.ca.certificate)
    assert {str(s.subscriber) for s in directory.subscribe_grants} == {TAX}
    assert json.loads(output.read_bytes())["directory"]["serial"] == 1
