"""The audit log through the API: entries (by subject, the last N) and verification, for
operators and auditors only; a tampered log is reported, not a failure."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.api.conftest import dataset_body, is_problem


@pytest.mark.parametrize("user", ["root", "audrey"])
def test_oversight_reads_entries_by_subject_and_limit(api, user):
    api("amina").post("/datasets", json=dataset_body("tariffs"))
    everything = api(user).get("/audit/entries", params={"limit": 1000}).json()
    assert [e["seq"] for e in everything] == list(range(1, len(everything) + 1))
    assert everything[0]["action"] == "user.register"
    last_two = api(user).get("/audit/entries", params={"limit": 2}).json()
    assert last_two == everything[-2:]
    about = api(user).get("/audit/entries", params={"subject": "dataset:tariffs"}).json()
    assert [(e["action"], e["actor"]) for e in about] == [("dataset.register", "amina")]
    assert about[0]["details"]["to"] == "DRAFT"


@pytest.mark.parametrize("path", ["/audit/entries", "/audit/verify"])
@pytest.mark.parametrize("user", ["amina", "karim"])
def test_others_may_not_read_the_audit_log(api, path, user):
    body = is_problem(api(user).get(path), 403, "wrong-role")
    assert "audit log" in body["detail"]


def test_limits_are_checked(api):
    is_problem(api("root").get("/audit/entries", params={"limit": 0}), 422, "invalid-request")
    is_problem(api("root").get("/audit/entries", params={"limit": "many"}), 422, "invalid-request")


def test_verify_intact_then_tampered(api):
    """An intact chain reports its count and head; a changed entry is named."""
    intact = api("audrey").get("/audit/verify").json()
    assert intact["intact"] is True
    assert intact["count"] == len(
        api("audrey").get("/audit/entries", params={"limit": 1000}).json()
    )
    assert intact["first_bad_seq"] is None
    with api.services.store.transaction("tamper") as conn:
        conn.execute(sa.text("UPDATE audit_log SET reason = 'forged' WHERE seq = 3"))
    tampered = api("audrey").get("/audit/verify")
    assert tampered.status_code == 200
    report = tampered.json()
    assert (report["intact"], report["first_bad_seq"]) == (False, 3)
    assert "changed" in report["reason"]
    assert report["count"] is None
