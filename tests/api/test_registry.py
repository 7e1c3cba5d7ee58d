"""The bus registry through the API: members, subsystems, certificates (checked against the
CA), services, grants and subscriptions; the signed directory, published by operators and
downloaded by anyone; refusals and an unconfigured CA as problems."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from exchange import CAStore, SubsystemId, cert_to_pem, load_directory
from tests.api.conftest import CA_PASSPHRASE, is_problem

CUSTOMS = "MA/GOV/MEF/CUSTOMS"
TAX = "MA/GOV/MEF/TAX"
CIVIL = "MA/GOV/INTERIOR/CIVIL"
LOOKUP = "civil.person-lookup.request"
LOOKUP_RESPONSE = "civil.person-lookup.response"
LODGED = "customs.declaration-lodged"


def _bus(client) -> None:
    """Two members and three subsystems."""
    for member, name in (("MA/GOV/MEF", "Finances"), ("MA/GOV/INTERIOR", "Intérieur")):
        assert (
            client.post("/registry/members", json={"member_id": member, "name": name}).status_code
            == 201
        )
    for subsystem in (CUSTOMS, TAX, CIVIL):
        added = client.post("/registry/subsystems", json={"subsystem_id": subsystem})
        assert added.status_code == 201, added.text


def _certificate(ca_dir, subsystem: str, *, usage: str = "signing") -> tuple[str, str]:
    """A certificate issued by the CA folder: (PEM, hex serial)."""
    ca = CAStore.open(ca_dir, CA_PASSPHRASE.encode())
    key = (
        ed25519.Ed25519PrivateKey.generate().public_key()
        if usage == "signing"
        else x25519.X25519PrivateKey.generate().public_key()
    )
    cert = ca.issue(SubsystemId.parse(subsystem), key)
    return cert_to_pem(cert), f"{cert.serial_number:x}"


def test_members_and_subsystems(api):
    """Operators add members and subsystems; anyone with a role reads them."""
    root = api("root")
    _bus(root)
    assert api("amina").get("/registry/members").json() == [
        {"member_id": "MA/GOV/INTERIOR", "name": "Intérieur"},
        {"member_id": "MA/GOV/MEF", "name": "Finances"},
    ]
    assert {
        s["subsystem_id"]: s["member_id"] for s in api("audrey").get("/registry/subsystems").json()
    } == {
        CUSTOMS: "MA/GOV/MEF",
        TAX: "MA/GOV/MEF",
        CIVIL: "MA/GOV/INTERIOR",
    }


def test_registry_changes_are_refused_with_their_codes(api):
    root = api("root")
    _bus(root)
    is_problem(
        api("amina").post("/registry/members", json={"member_id": "MA/GOV/X", "name": "X"}),
        403,
        "wrong-role",
    )
    is_problem(
        root.post("/registry/members", json={"member_id": "MA/GOV/MEF", "name": "Again"}),
        409,
        "already-exists",
    )
    is_problem(
        root.post("/registry/members", json={"member_id": "not an id", "name": "X"}),
        422,
        "invalid-input",
    )
    is_problem(
        root.post("/registry/subsystems", json={"subsystem_id": "MA/GOV/NOPE/SUB"}),
        404,
        "not-found",
    )


def test_certificates_are_checked_against_the_ca(make_api, ca_dir, tmp_path):
    """With a CA folder: register (checked), list, retire, revoke; a foreign certificate and
    one of another subsystem are refused."""
    api = make_api(ca_dir=ca_dir)
    root = api("root")
    _bus(root)
    pem, serial = _certificate(ca_dir, CUSTOMS)
    created = root.post("/registry/certificates", json={"subsystem_id": CUSTOMS, "pem": pem})
    assert created.status_code == 201, created.text
    record = created.json()
    assert (record["serial"], record["usage"], record["subsystem"]) == (serial, "signing", CUSTOMS)
    assert record["pem"].strip() == pem.strip()
    listed = api("amina").get("/registry/certificates", params={"subsystem_id": CUSTOMS}).json()
    assert [c["serial"] for c in listed] == [serial]
    assert api("amina").get("/registry/certificates", params={"subsystem_id": TAX}).json() == []

    retired = root.post(
        f"/registry/certificates/{serial}/retire",
        json={"retire_after": "2030-01-01T00:00:00Z", "reason": "rotation"},
    )
    assert retired.json()["retire_after"].startswith("2030-01-01T00:00:00")
    revoked = root.post(f"/registry/certificates/{serial}/revoke", json={"reason": "key lost"})
    assert (revoked.json()["revoked_reason"], revoked.status_code) == ("key lost", 200)
    is_problem(
        root.post(f"/registry/certificates/{serial}/revoke", json={"reason": "again"}),
        422,
        "invalid-input",
    )
    is_problem(
        root.post("/registry/certificates/abc123/revoke", json={"reason": "x"}), 404, "not-found"
    )
    is_problem(
        root.post(
            "/registry/certificates/abc123/retire", json={"retire_after": "2030-01-01T00:00:00"}
        ),
        422,
        "invalid-request",  # a time without its zone
    )

    other_pem, _ = _certificate(ca_dir, TAX)
    body = is_problem(
        root.post("/registry/certificates", json={"subsystem_id": CUSTOMS, "pem": other_pem}),
        422,
        "invalid-input",
    )
    assert TAX in body["detail"]
    foreign_dir = tmp_path / "foreign-ca"
    CAStore.init(foreign_dir, "MA", CA_PASSPHRASE.encode())
    foreign_pem, _ = _certificate(foreign_dir, CUSTOMS)
    is_problem(
        root.post("/registry/certificates", json={"subsystem_id": CUSTOMS, "pem": foreign_pem}),
        422,
        "invalid-input",
    )
    is_problem(
        api("amina").post("/registry/certificates", json={"subsystem_id": CUSTOMS, "pem": pem}),
        403,
        "wrong-role",
    )


def test_without_a_ca_folder_certificates_cannot_be_registered(api):
    root = api("root")
    _bus(root)
    body = is_problem(
        root.post("/registry/certificates", json={"subsystem_id": CUSTOMS, "pem": "x"}),
        503,
        "ca-not-configured",
    )
    assert "TABADUL_CA_DIR" in body["detail"]


def test_services_grants_and_subscriptions(api):
    """Each is added, listed and removed; removing what is not there is a 404."""
    root = api("root")
    _bus(root)
    provided = {
        "subsystem_id": CIVIL,
        "message_type": LOOKUP,
        "role": "provides",
        "response_type": LOOKUP_RESPONSE,
    }
    published = {"subsystem_id": CUSTOMS, "message_type": LODGED, "role": "publishes"}
    assert root.post("/registry/services", json=provided).status_code == 201
    assert root.post("/registry/services", json=published).json() == {
        **published,
        "response_type": None,
    }
    assert api("karim").get("/registry/services").json() == [
        provided,
        {**published, "response_type": None},
    ]
    terms = {"purpose": "identity-check", "legal_basis": "Loi 09-08, art. 4"}
    grant = {"sender": TAX, "message_type": LOOKUP, "recipient": CIVIL}
    listed = {
        **grant,
        "purpose": "identity-check",
        "legal_basis": {"text": "Loi 09-08, art. 4", "reference": ""},
        "expires": None,
    }
    is_problem(root.post("/registry/grants", json=grant), 422, "invalid-request")
    assert root.post("/registry/grants", json={**grant, **terms}).json() == listed
    is_problem(root.post("/registry/grants", json={**grant, **terms}), 409, "already-exists")
    subscription = {"subscriber": TAX, "topic": LODGED}
    created = root.post("/registry/subscriptions", json={**subscription, **terms})
    assert created.status_code == 201
    assert api("karim").get("/registry/grants").json() == [listed]
    assert [
        {k: v for k, v in s.items() if k in subscription}
        for s in api("karim").get("/registry/subscriptions").json()
    ] == [subscription]

    is_problem(api("amina").post("/registry/grants/remove", json=grant), 403, "wrong-role")
    assert (
        root.post("/registry/grants/remove", json={**grant, "reason": "ended"}).status_code == 204
    )
    assert root.post("/registry/subscriptions/remove", json=subscription).status_code == 204
    assert root.post("/registry/services/remove", json=published).status_code == 204
    assert api("karim").get("/registry/grants").json() == []
    assert api("karim").get("/registry/subscriptions").json() == []
    assert [s["message_type"] for s in api("karim").get("/registry/services").json()] == [LOOKUP]
    is_problem(root.post("/registry/grants/remove", json=grant), 404, "not-found")
    is_problem(root.post("/registry/subscriptions/remove", json=subscription), 404, "not-found")
    is_problem(root.post("/registry/services/remove", json=published), 404, "not-found")
    is_problem(
        root.post("/registry/services", json={**published, "message_type": "no.such-type"}),
        404,
        "not-found",
    )
    is_problem(
        root.post("/registry/services", json={**provided, "role": "sings"}), 422, "invalid-request"
    )


def test_directory_is_published_by_operators_and_public(make_api, ca_dir):
    """POST /directory signs the registry (serial after serial); GET /directory/latest, with
    no token, answers the signed bytes, which verify with the CA certificate."""
    api = make_api(ca_dir=ca_dir)
    root = api("root")
    _bus(root)
    pem, serial = _certificate(ca_dir, CUSTOMS)
    root.post("/registry/certificates", json={"subsystem_id": CUSTOMS, "pem": pem})
    is_problem(api("amina").post("/directory", json={}), 403, "wrong-role")

    first = root.post("/directory", json={"valid_hours": 6, "reason": "weekly"})
    assert first.status_code == 201, first.text
    summary = first.json()
    assert (summary["serial"], summary["instance"], summary["members"]) == (1, "MA", 2)
    assert summary["certificates"] == 1
    assert root.post("/directory", json={}).json()["serial"] == 2

    latest = api().get("/directory/latest")
    assert latest.status_code == 200
    assert latest.headers["content-type"] == "application/json"
    assert latest.headers["x-tabadul-directory-serial"] == "2"
    ca = CAStore.open(ca_dir, CA_PASSPHRASE.encode())
    directory = load_directory(latest.content, ca.ca.certificate)
    assert directory.serial == 2
    assert {e.info.serial for e in directory.certificates.values()} == {int(serial, 16)}
    entries = api("audrey").get("/audit/entries", params={"subject": "directory:1"}).json()
    assert [(e["action"], e["reason"]) for e in entries] == [("directory.publish", "weekly")]


def test_directory_publishing_without_a_usable_ca(make_api, ca_dir, monkeypatch):
    """No CA folder, no passphrase or a wrong one: a 503 problem saying which, nothing
    published."""
    no_folder = make_api()
    body = is_problem(no_folder("root").post("/directory", json={}), 503, "ca-not-configured")
    assert "TABADUL_CA_DIR" in body["detail"]
    api = make_api(ca_dir=ca_dir)
    monkeypatch.delenv("TABADUL_CA_PASSPHRASE")
    body = is_problem(api("root").post("/directory", json={}), 503, "ca-not-configured")
    assert "TABADUL_CA_PASSPHRASE" in body["detail"]
    monkeypatch.setenv("TABADUL_CA_PASSPHRASE", "not the passphrase")
    body = is_problem(api("root").post("/directory", json={}), 503, "ca-unavailable")
    assert "not the passphrase" not in body["detail"]
    is_problem(api().get("/directory/latest"), 404, "no-directory")
