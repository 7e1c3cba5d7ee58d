"""The bus registry: members, subsystems, certificates, services, grants and subscriptions,
published as a signed directory that the exchange accepts; refusals with their codes; an
audit entry for every change. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from typer.testing import CliRunner

from exchange import (
    CAStore,
    CertificateAuthority,
    DirectoryRollbackError,
    GrantExpired,
    LegalBasis,
    PurposeMismatch,
    SendGrant,
    Service,
    SubscribeGrant,
    SubsystemId,
    cert_to_pem,
    load_directory,
)
from governance import AuditLog, GovernanceStore, Workflow
from governance._errors import AlreadyExists, InvalidInput, NotFound, UnknownUser, WrongRole
from governance._registry import Registry
from tabadul.cli._directory import directory_app
from tests.governance.conftest import Backend, Clock

NOW = datetime(2026, 11, 22, 15, 0, 0, tzinfo=UTC)  # the test clock starts at 14:00
CUSTOMS = "MA/GOV/MEF/CUSTOMS"
TAX = "MA/GOV/MEF/TAX"
CIVIL = "MA/GOV/INTERIOR/CIVIL"
LOOKUP = "civil.person-lookup.request"
LOOKUP_RESPONSE = "civil.person-lookup.response"
LODGED = "customs.declaration-lodged"
NOPE = "MA/GOV/MEF/NOPE"
PURPOSE = "identity-check"
BASIS = LegalBasis("Loi 09-08, article 4", "BO 5714")
TERMS = {"purpose": PURPOSE, "legal_basis": BASIS.text, "legal_reference": BASIS.reference}


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("MA")


def _issue(ca: CertificateAuthority, subsystem: str, *, usage: str = "signing") -> tuple[str, int]:
    key = (
        ed25519.Ed25519PrivateKey.generate().public_key()
        if usage == "signing"
        else x25519.X25519PrivateKey.generate().public_key()
    )
    cert = ca.issue(SubsystemId.parse(subsystem), key, now=NOW - timedelta(hours=2))
    return cert_to_pem(cert), cert.serial_number


@pytest.fixture
def registry(flow: Workflow, store: GovernanceStore) -> Registry:
    return Registry(store, clock=Clock())


@pytest.fixture
def filled(registry: Registry, ca: CertificateAuthority) -> dict[str, int]:
    """Two members, three subsystems with certificates, services, grants, subscriptions."""
    registry.add_member("root", "MA/GOV/MEF", name="Ministère de l'Économie et des Finances")
    registry.add_member("root", "MA/GOV/INTERIOR", name="وزارة الداخلية")
    serials: dict[str, int] = {}
    for subsystem in (CUSTOMS, TAX, CIVIL):
        registry.add_subsystem("root", subsystem)
        for usage in ("signing", "encryption"):
            pem, serial = _issue(ca, subsystem, usage=usage)
            registry.register_certificate("root", subsystem, pem, ca_certificate=ca.certificate)
            serials[f"{subsystem}:{usage}"] = serial
    registry.add_service("root", CIVIL, LOOKUP, role="provides", response_type=LOOKUP_RESPONSE)
    registry.add_service("root", CUSTOMS, LODGED, role="publishes")
    registry.add_grant("root", CUSTOMS, LOOKUP, CIVIL, **TERMS)
    registry.add_grant("root", TAX, LOOKUP, CIVIL, **TERMS)
    registry.add_subscription("root", TAX, LODGED, **TERMS)
    return serials


def test_published_directory_is_accepted_by_the_exchange(registry, filled, ca):
    """The exchange loads the published directory with what the registry holds."""
    document = registry.publish_directory("root", ca)
    directory = load_directory(document, ca.certificate, now=NOW)
    assert directory.serial == 1
    assert directory.instance == "MA"
    assert {str(m): n for m, n in directory.members.items()} == {
        "MA/GOV/MEF": "Ministère de l'Économie et des Finances",
        "MA/GOV/INTERIOR": "وزارة الداخلية",
    }
    customs, tax, civil = (SubsystemId.parse(s) for s in (CUSTOMS, TAX, CIVIL))
    assert directory.send_grants == {
        SendGrant(customs, LOOKUP, civil, PURPOSE, BASIS),
        SendGrant(tax, LOOKUP, civil, PURPOSE, BASIS),
    }
    assert directory.subscribe_grants == {SubscribeGrant(tax, LODGED, PURPOSE, BASIS)}
    assert set(directory.services) == {
        Service(civil, LOOKUP, "provides", LOOKUP_RESPONSE),
        Service(customs, LODGED, "publishes"),
    }
    assert {e.info.serial for e in directory.certificates.values()} == set(filled.values())
    assert directory.subsystems() == sorted([customs, tax, civil])
    assert directory.encryption_certificate(civil, NOW) is not None
    assert directory.revoked_serials == frozenset()
    # schema refs: every registered version, with digest and classification
    assert directory.classification_of(LOOKUP_RESPONSE) == "RESTRICTED"
    assert directory.schemas[(LODGED, "1.1.0")].digest.startswith("sha256:")
    assert registry.latest_directory() == document


def test_serial_increases_and_revocation_reaches_the_next_directory(registry, filled, ca):
    """Each publication takes the next serial; a revoked certificate is listed as revoked."""
    first = load_directory(registry.publish_directory("root", ca), ca.certificate, now=NOW)
    serial = filled[f"{CUSTOMS}:signing"]
    revoked = registry.revoke_certificate("root", f"{serial:x}", reason="key compromised")
    assert revoked.revoked_at is not None
    assert revoked.revoked_reason == "key compromised"
    second_bytes = registry.publish_directory("root", ca, valid_for=timedelta(hours=6))
    second = load_directory(second_bytes, ca.certificate, now=NOW, held_serial=first.serial)
    assert (first.serial, second.serial) == (1, 2)
    assert serial not in first.revoked_serials
    assert second.revoked_serials == {serial}
    entry = next(e for e in second.certificates.values() if e.info.serial == serial)
    assert entry.revoked
    assert second.expires - second.issued == timedelta(hours=6)
    assert registry.latest_directory() == second_bytes
    assert registry.published(1) is not None
    with pytest.raises(DirectoryRollbackError):
        load_directory(registry.published(1).document, ca.certificate, now=NOW, held_serial=2)  # type: ignore[union-attr]
    third = load_directory(registry.publish_directory("root", ca), ca.certificate, now=NOW)
    assert third.serial == 3


def test_retire_after_shortens_a_certificate(registry, filled, ca):
    """A retired (rotated) certificate's effective end is its retire_after."""
    serial = filled[f"{TAX}:encryption"]
    retire = datetime(2026, 12, 1, tzinfo=UTC)
    registry.retire_certificate("root", serial, retire, reason="rotated")
    directory = load_directory(registry.publish_directory("root", ca), ca.certificate, now=NOW)
    entry = next(e for e in directory.certificates.values() if e.info.serial == serial)
    assert entry.not_after == retire


def test_removals_leave_the_next_directory(registry, filled, ca):
    """Removed grants, subscriptions and services are not published."""
    registry.remove_grant("root", TAX, LOOKUP, CIVIL, reason="no longer needed")
    registry.remove_subscription("root", TAX, LODGED)
    registry.remove_service("root", CUSTOMS, LODGED, role="publishes")
    directory = load_directory(registry.publish_directory("root", ca), ca.certificate, now=NOW)
    assert len(directory.send_grants) == 1
    assert directory.subscribe_grants == frozenset()
    assert [s.role for s in directory.services] == ["provides"]
    with pytest.raises(NotFound) as caught:
        registry.remove_grant("root", TAX, LOOKUP, CIVIL)
    assert caught.value.code == "not-found"


def test_a_grant_per_purpose_each_with_its_basis_and_expiry(registry, filled, ca):
    """A second purpose for the same sender, type and recipient is a grant of its own; its
    legal basis and expiry reach the directory, and removal names the purpose when two."""
    ends = NOW + timedelta(days=90)
    registry.add_grant(
        "root",
        TAX,
        LOOKUP,
        CIVIL,
        purpose="tax-compliance-check",
        legal_basis="Code général des impôts, article 214",
        legal_reference="CGI art. 214",
        expires=ends,
        reason="annual campaign",
    )
    directory = load_directory(registry.publish_directory("root", ca), ca.certificate, now=NOW)
    tax, civil = SubsystemId.parse(TAX), SubsystemId.parse(CIVIL)
    found = directory.grants_for(tax, LOOKUP, civil)
    assert [(g.purpose, g.legal_basis.reference, g.expires) for g in found] == [
        (PURPOSE, BASIS.reference, None),
        ("tax-compliance-check", "CGI art. 214", ends),
    ]
    with pytest.raises(InvalidInput, match="say which purpose"):
        registry.remove_grant("root", TAX, LOOKUP, CIVIL)
    registry.remove_grant("root", TAX, LOOKUP, CIVIL, purpose=PURPOSE)
    assert [g.purpose for g in registry.grants() if str(g.sender) == TAX] == [
        "tax-compliance-check"
    ]


def test_the_published_terms_are_enforced_by_the_exchange(registry, filled, ca):
    """A directory published from the registry refuses another purpose and an expired grant
    with their own codes (the policy the receive pipeline uses)."""
    from exchange import AccessRequest, directory_policy  # noqa: PLC0415 - one test

    ends = NOW + timedelta(days=1)
    registry.add_grant("root", TAX, LOOKUP, CIVIL, **{**TERMS, "purpose": "audit"}, expires=ends)
    registry.remove_grant("root", TAX, LOOKUP, CIVIL, purpose=PURPOSE)
    directory = load_directory(registry.publish_directory("root", ca), ca.certificate, now=NOW)
    policy = directory_policy(directory)
    tax, civil = SubsystemId.parse(TAX), SubsystemId.parse(CIVIL)

    def ask(purpose: str, at: datetime) -> None:
        policy.check(
            AccessRequest(tax, LOOKUP, "request", civil, "INTERNAL", False, civil, at, purpose)
        )

    ask("audit", NOW)
    with pytest.raises(PurposeMismatch):
        ask("marketing", NOW)
    with pytest.raises(GrantExpired):
        ask("audit", ends + timedelta(seconds=1))


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"purpose": "Tax Check"}, "must be a code"),
        ({"purpose": ""}, "must be a code"),
        ({"legal_basis": "  "}, "legal basis must be given"),
        ({"legal_basis": "x" * 2001}, "at most 2000"),
        ({"legal_reference": "r" * 501}, "at most 500"),
        ({"expires": NOW - timedelta(hours=2)}, "must be in the future"),
        ({"expires": datetime(2027, 1, 1)}, "time zone"),  # noqa: DTZ001 - the point
    ],
)
def test_bad_grant_terms_are_refused(registry, filled, change, says):
    """A grant without a purpose code, a legal basis, or with an expiry in the past is
    invalid-input and changes nothing."""
    before = registry.grants()
    with pytest.raises(InvalidInput, match=says) as caught:
        registry.add_grant("root", CUSTOMS, LOOKUP, CIVIL, **{**TERMS, **change})
    assert caught.value.code == "invalid-input"
    with pytest.raises(InvalidInput, match=says):
        registry.add_subscription("root", CIVIL, LODGED, **{**TERMS, **change})
    assert registry.grants() == before


def test_reads_list_the_registry(registry, filled):
    assert registry.members()["MA/GOV/MEF"].startswith("Ministère")
    assert [str(s) for s in registry.subsystems()] == sorted([CUSTOMS, TAX, CIVIL])
    assert len(registry.certificates()) == 6
    assert {c.usage for c in registry.certificates(CIVIL)} == {"signing", "encryption"}
    assert len(registry.grants()) == 2
    assert registry.subscriptions() == [
        SubscribeGrant(SubsystemId.parse(TAX), LODGED, PURPOSE, BASIS)
    ]
    assert len(registry.services()) == 2
    assert registry.latest_directory() is None


def test_non_operators_are_refused(registry, ca):
    """Only operators change the registry or publish; nothing changes when refused."""
    with pytest.raises(WrongRole) as caught:
        registry.add_member("amina", "MA/GOV/MEF", name="MEF")
    assert caught.value.code == "wrong-role"
    assert caught.value.action == "registry.add_member"
    with pytest.raises(WrongRole):
        registry.publish_directory("audrey", ca)
    with pytest.raises(UnknownUser) as unknown:
        registry.add_member("nobody", "MA/GOV/MEF", name="MEF")
    assert unknown.value.code == "unknown-user"
    assert registry.members() == {}
    assert registry.latest_directory() is None


def test_unknown_member_subsystem_and_type_are_refused(registry, filled):
    """Unknown members, subsystems and message types are refused with their codes."""
    cases = [
        (lambda: registry.add_subsystem("root", "MA/GOV/HEALTH/CNSS"),
         "member MA/GOV/HEALTH, which is not registered"),
        (lambda: registry.add_grant("root", NOPE, LOOKUP, CIVIL, **TERMS),
         f"subsystem {NOPE} is not"),
        (lambda: registry.add_grant("root", CUSTOMS, LOOKUP, NOPE, **TERMS),
         f"subsystem {NOPE} is not"),
        (lambda: registry.add_grant("root", CUSTOMS, "no.such-type", CIVIL, **TERMS),
         "'no.such-type' is not in the schema registry"),
        (lambda: registry.add_subscription("root", TAX, "no.such-topic", **TERMS),
         "'no.such-topic' is not in the schema registry"),
        (lambda: registry.add_service("root", NOPE, LODGED, role="publishes"),
         f"subsystem {NOPE} is not"),
        (lambda: registry.revoke_certificate("root", 0xABC, reason="x"),
         "no certificate with serial abc"),
    ]  # fmt: skip
    for call, message in cases:
        with pytest.raises(NotFound) as caught:
            call()
        assert caught.value.code == "not-found"
        assert message in caught.value.message
    assert len(registry.grants()) == 2


def test_malformed_input_is_refused(registry, filled):
    """Bad identities, wrong kinds of type and duplicates are refused."""
    cases = [
        (lambda: registry.add_member("root", "MA/GOV", name="x"), "invalid-input"),
        (lambda: registry.add_member("root", "MA/GOV/MEF", name="again"), "already-exists"),
        (lambda: registry.add_subsystem("root", "not an id"), "invalid-input"),
        (lambda: registry.add_subscription("root", TAX, LOOKUP, **TERMS), "invalid-input"),
        (lambda: registry.add_service("root", CIVIL, LOOKUP), "invalid-input"),  # no response
        (lambda: registry.add_service("root", CIVIL, LODGED, role="provides",
                                      response_type=LOOKUP_RESPONSE), "invalid-input"),
        (lambda: registry.add_grant("root", CUSTOMS, LOOKUP, CIVIL, **TERMS), "already-exists"),
        (lambda: registry.revoke_certificate("root", "zz", reason="x"), "invalid-input"),
        (lambda: registry.revoke_certificate("root", 1, reason=" "), "invalid-input"),
    ]  # fmt: skip
    for call, code in cases:
        with pytest.raises((InvalidInput, AlreadyExists)) as caught:
            call()
        assert caught.value.code == code, caught.value.message
    serial = filled[f"{CIVIL}:signing"]
    registry.revoke_certificate("root", serial, reason="lost")
    with pytest.raises(InvalidInput, match="already revoked"):
        registry.revoke_certificate("root", serial, reason="lost")


def test_certificates_are_checked(registry, filled, ca):
    """A certificate of another CA, of another subsystem, or twice, is refused."""
    other_ca = CertificateAuthority.create("MA")
    pem, _ = _issue(other_ca, CUSTOMS)
    with pytest.raises(InvalidInput) as caught:
        registry.register_certificate("root", CUSTOMS, pem, ca_certificate=ca.certificate)
    assert caught.value.code == "invalid-input"
    assert "not issued by this CA" in caught.value.message
    pem, _ = _issue(ca, TAX)
    with pytest.raises(InvalidInput) as subject:
        registry.register_certificate("root", CUSTOMS, pem, ca_certificate=ca.certificate)
    assert subject.value.code == "invalid-input"
    assert TAX in subject.value.message
    with pytest.raises(InvalidInput):
        registry.register_certificate("root", CUSTOMS, "garbage", ca_certificate=ca.certificate)
    registry.register_certificate("root", TAX, pem, ca_certificate=ca.certificate)
    with pytest.raises(AlreadyExists):
        registry.register_certificate("root", TAX, pem, ca_certificate=ca.certificate)
    pem, _ = _issue(ca, "MA/GOV/MEF/BUDGET")
    with pytest.raises(NotFound):
        registry.register_certificate(
            "root", "MA/GOV/MEF/BUDGET", pem, ca_certificate=ca.certificate
        )
    assert len(registry.certificates()) == 7


def test_publishing_with_another_ca_is_refused(registry, filled):
    """A CA that did not issue the registered certificates publishes nothing."""
    with pytest.raises(InvalidInput, match="does not check against this CA"):
        registry.publish_directory("root", CertificateAuthority.create("MA"))
    assert registry.latest_directory() is None


def test_every_change_is_audited(registry, filled, ca, store):
    """Each change writes one audit entry; the chain still verifies."""
    log = AuditLog(store)
    before = log.verify().count
    serial = filled[f"{TAX}:signing"]
    registry.revoke_certificate("root", serial, reason="compromised")
    document = registry.publish_directory("root", ca, reason="weekly")
    entries = log.entries()
    assert log.verify().count == before + 2
    revoke, publish = entries[-2:]
    assert (revoke.action, revoke.actor, revoke.reason) == (
        "bus.certificate.revoke",
        "root",
        "compromised",
    )
    assert revoke.details["serial"] == f"{serial:x}"
    assert publish.action == "directory.publish"
    assert publish.subject == "directory:1"
    assert publish.details["revoked"] == [f"{serial:x}"]
    assert len(publish.content_sha256 or "") == 64
    actions = [e.action for e in entries]
    # 2 members, 3 subsystems, 6 certificates, 2 services, 2 grants, 1 subscription
    for action, count in [
        ("bus.member.add", 2),
        ("bus.subsystem.add", 3),
        ("bus.certificate.register", 6),
        ("bus.service.add", 2),
        ("bus.grant.add", 2),
        ("bus.subscription.add", 1),
    ]:
        assert actions.count(action) == count, action
    assert document == registry.latest_directory()


def test_a_refused_change_writes_no_audit_entry(registry, filled, store):
    log = AuditLog(store)
    before = log.verify().count
    with pytest.raises(NotFound):
        registry.add_grant("root", "MA/GOV/MEF/NOPE", LOOKUP, CIVIL, **TERMS)
    with pytest.raises(WrongRole):
        registry.add_grant("amina", CUSTOMS, LOOKUP, TAX, **TERMS)
    assert log.verify().count == before


# ---- the CLI -----------------------------------------------------------------------------

app = typer.Typer()
app.add_typer(directory_app, name="directory")
runner = CliRunner()
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def ca_folder(tmp_path: Path) -> CAStore:
    return CAStore.init(tmp_path / "ca", "MA", PASSPHRASE.encode())


@pytest.fixture
def bus(backend: Backend, ca_folder: CAStore) -> Backend:
    store = backend.open()
    flow = Workflow(store, clock=Clock())
    flow.register_user(None, "root", name="Root", agency="DNUM", roles=["operator"])
    flow.register_user("root", "amina", name="Amina", agency="DOUANE", roles=["steward"])
    registry = Registry(store, clock=Clock())
    registry.add_member("root", "MA/GOV/MEF", name="MEF")
    registry.add_subsystem("root", CUSTOMS)
    cert = ca_folder.issue(
        SubsystemId.parse(CUSTOMS), ed25519.Ed25519PrivateKey.generate().public_key()
    )
    registry.register_certificate(
        "root", CUSTOMS, cert_to_pem(cert), ca_certificate=ca_folder.ca.certificate
    )
    other = ca_folder.issue(
        SubsystemId.parse(CUSTOMS), x25519.X25519PrivateKey.generate().public_key()
    )
    ca_folder.revoke(f"{other.serial_number:x}", "never deployed")
    store.close()
    return backend


def _db_args(backend: Backend) -> list[str]:
    return ["--db", backend.location, *(["--schema", backend.schema] if backend.schema else [])]


def test_cli_publishes_a_directory(bus, ca_folder, tmp_path, monkeypatch):
    """`directory publish` writes a directory the exchange accepts, serial after serial."""
    monkeypatch.setenv("TABADUL_CA_PASSPHRASE", PASSPHRASE)
    out = tmp_path / "out" / "directory.json"
    args = ["directory", "publish", *_db_args(bus), "--ca-dir", str(ca_folder.root)]
    result = runner.invoke(app, [*args, "--actor", "root", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "serial 1" in result.output
    directory = load_directory(out.read_bytes(), ca_folder.ca.certificate)
    assert directory.serial == 1
    assert directory.revoked_serials == set(ca_folder.revoked_serials())
    result = runner.invoke(
        app, [*args, "--actor", "root", "-o", str(out), "--valid-hours", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert data["serial"] == 2
    reloaded = load_directory(out.read_bytes(), ca_folder.ca.certificate, held_serial=1)
    assert reloaded.expires - reloaded.issued == timedelta(hours=3)
    store = bus.open()
    try:
        assert Registry(store).latest_directory() == out.read_bytes()
    finally:
        store.close()


def test_cli_errors_are_clean(bus, ca_folder, tmp_path, monkeypatch):
    """Refusals and a missing passphrase print `error [code]: message` and exit 2."""
    out = tmp_path / "directory.json"
    args = ["directory", "publish", *_db_args(bus), "--ca-dir", str(ca_folder.root), "-o", str(out)]
    monkeypatch.delenv("TABADUL_CA_PASSPHRASE", raising=False)
    result = runner.invoke(app, [*args, "--actor", "root"])
    assert result.exit_code == 2
    assert "error [ca-passphrase]" in result.output
    monkeypatch.setenv("TABADUL_CA_PASSPHRASE", "wrong")
    result = runner.invoke(app, [*args, "--actor", "root"])
    assert result.exit_code == 2
    assert "error [" in result.output
    assert "Traceback" not in result.output
    monkeypatch.setenv("TABADUL_CA_PASSPHRASE", PASSPHRASE)
    result = runner.invoke(app, [*args, "--actor", "amina"])
    assert result.exit_code == 2
    assert "error [wrong-role]" in result.output
    result = runner.invoke(app, [*args, "--actor", "amina", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "wrong-role"
    assert not out.exists()
    missing = tmp_path / "none.sqlite"
    result = runner.invoke(
        app,
        ["directory", "publish", "--db", str(missing), "--ca-dir", str(ca_folder.root),
         "-o", str(out), "--actor", "root"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "error [store]" in result.output


def test_witnessing_declares_what_each_pair_needs(registry, filled, ca):
    """Three subsystems witnessing each other: each publishes heads, provides proofs,
    accepts cosignatures and subscribes; each may ask every other; a second call adds
    nothing; the directory carries it, for the log-witnessing purpose."""
    added = registry.enable_witnessing("root", [CUSTOMS, TAX, CIVIL], reason="pilot")
    assert added == 3 * 4 + 6 * 2
    assert registry.enable_witnessing("root", [CUSTOMS, TAX, CIVIL]) == 0
    directory = load_directory(registry.publish_directory("root", ca), ca.certificate, now=NOW)
    assert set(directory.subscribers("bus.log-head", NOW)) == {
        SubsystemId.parse(s) for s in (CUSTOMS, TAX, CIVIL)
    }
    (grant,) = directory.grants_for(
        SubsystemId.parse(TAX), "bus.log-consistency.request", SubsystemId.parse(CIVIL)
    )
    assert grant.purpose == "log-witnessing"
    with pytest.raises(InvalidInput):
        registry.enable_witnessing("root", [TAX])
