"""The dataset workflow through the API (without the portal): register, list, read, classify,
submit a CSV (multipart) with its PII and validation reports, resolve findings, four-eyes
approval, reject and reopen, history; who may read and act, and each refusal's code."""

from __future__ import annotations

from typing import get_args

import pytest

from governance import FREQUENCIES, LANGUAGES
from tabadul.api._routes_datasets import Frequency, Language
from tests.api.conftest import CLASSIFIED_PUBLIC, dataset_body, is_problem

CLEAN_CSV = b"code,rate\n0101,2.5\n0102,10\n"
PII_SCHEMA = {"fields": [{"name": "code"}, {"name": "rate"}, {"name": "contact"}]}
PII_CSV = b"code,rate,contact\n0101,2.5,amina@example.ma\n0102,10,karim@example.ma\n"


def _register(api, dataset_id="tariffs", user="amina", **changes):
    created = api(user).post("/datasets", json=dataset_body(dataset_id, **changes))
    assert created.status_code == 201, created.text
    return created.json()


def _classified(api, dataset_id="tariffs", **changes):
    _register(api, dataset_id, **changes)
    classified = api("amina").post(f"/datasets/{dataset_id}/classify", json=CLASSIFIED_PUBLIC)
    assert classified.status_code == 200, classified.text
    return classified.json()


def _submit(api, dataset_id="tariffs", data=CLEAN_CSV, user="amina", name="tariffs.csv"):
    return api(user).post(
        f"/datasets/{dataset_id}/submit",
        files={"file": (name, data, "text/csv")},
        data={"reason": "yearly update"},
    )


def test_literal_types_follow_governance():
    """The body's languages and frequencies are governance's."""
    assert set(get_args(Language)) == set(LANGUAGES)
    assert set(get_args(Frequency)) == set(FREQUENCIES)


def test_a_steward_registers_a_dataset_of_their_agency(api):
    record = _register(api)
    assert (record["owner_agency"], record["steward"], record["state"]) == (
        "DOUANE",
        "amina",
        "DRAFT",
    )
    assert record["classification"] is None
    assert record["title"]["fr"] == "Tarif douanier"
    assert record["tags"] == ["customs", "tariff"]


def test_registering_refusals(api):
    _register(api)
    is_problem(api("karim").post("/datasets", json=dataset_body("other")), 403, "wrong-role")
    is_problem(api("amina").post("/datasets", json=dataset_body("tariffs")), 409, "already-exists")
    is_problem(api("amina").post("/datasets", json=dataset_body("Bad Id")), 422, "invalid-input")
    is_problem(
        api("amina").post("/datasets", json=dataset_body("x1", update_frequency="hourly")),
        422,
        "invalid-request",
    )
    is_problem(
        api("amina").post("/datasets", json=dataset_body("x2", title={"de": "Zolltarif"})),
        422,
        "invalid-request",
    )
    is_problem(
        api("amina").post("/datasets", json=dataset_body("x3", table_schema={"fields": 3})),
        422,
        "invalid-input",
    )
    is_problem(
        api("amina").post("/datasets", json=dataset_body("x4", steward="yasmine")),
        422,
        "invalid-input",  # a steward of another agency
    )


def test_listing_shows_ones_own_agency_and_oversight_sees_all(api):
    _register(api, "tariffs")
    _register(api, "budget", user="yasmine")
    _classified(api, "quotas")
    ids = lambda response: [d["dataset_id"] for d in response.json()]  # noqa: E731
    assert ids(api("karim").get("/datasets")) == ["quotas", "tariffs"]
    assert ids(api("yasmine").get("/datasets")) == ["budget"]
    assert ids(api("root").get("/datasets")) == ["budget", "quotas", "tariffs"]
    assert ids(api("audrey").get("/datasets", params={"agency": "MEF"})) == ["budget"]
    assert ids(api("root").get("/datasets", params={"state": "CLASSIFIED"})) == ["quotas"]
    is_problem(api("amina").get("/datasets", params={"agency": "MEF"}), 403, "other-agency")
    is_problem(api("root").get("/datasets", params={"state": "LOST"}), 422, "invalid-request")


def test_reading_a_dataset_is_for_its_agency_operators_and_auditors(api):
    _register(api)
    for user in ("amina", "karim", "root", "audrey"):
        assert api(user).get("/datasets/tariffs").status_code == 200, user
    # to someone of another agency, it is as unknown as a dataset never registered
    hidden = is_problem(api("yasmine").get("/datasets/tariffs"), 404, "unknown-dataset")
    missing = is_problem(api("yasmine").get("/datasets/nothing"), 404, "unknown-dataset")
    assert hidden == {**missing, "detail": missing["detail"].replace("nothing", "tariffs")}
    is_problem(api("yasmine").get("/datasets/tariffs/history"), 404, "unknown-dataset")
    is_problem(api("root").get("/datasets/nothing"), 404, "unknown-dataset")


def test_classify_then_submit_a_clean_file(api):
    """A clean CSV goes to review with both reports; the detail shows the review."""
    classified = _classified(api)
    assert classified["state"] == "CLASSIFIED"
    assert classified["classification"]["publishable"] is True
    assert classified["classification"]["classified_by"] == "amina"
    submitted = _submit(api)
    assert submitted.status_code == 201, submitted.text
    submission = submitted.json()
    assert submission["findings"] == []
    assert submission["validation"]["valid"] is True
    assert submission["pii"]["has_findings"] is False
    detail = api("karim").get("/datasets/tariffs").json()
    assert detail["state"] == "IN_REVIEW"
    assert detail["content_sha256"] == submission["sha256"]
    review = detail["review"]
    assert (review["decision"], review["submitted_by"]) == ("open", "amina")
    assert review["reports"]["validation"]["rows"] == 2
    assert "pii" in review["reports"]


def test_submitting_invalid_data_is_refused_with_the_report(api):
    """A CSV that does not match the Table Schema: 422 invalid-data with the validation
    report; the dataset stays CLASSIFIED."""
    _classified(api)
    body = is_problem(_submit(api, data=b"code,rate,extra\n0101,2.5,x\n"), 422, "invalid-data")
    assert body["report"]["valid"] is False
    assert body["report"]["errors"]
    assert "tariffs.csv" in body["detail"]
    assert api("amina").get("/datasets/tariffs").json()["state"] == "CLASSIFIED"


def test_submission_refusals(api):
    _register(api)
    is_problem(_submit(api), 409, "illegal-transition")  # not classified yet
    api("amina").post("/datasets/tariffs/classify", json=CLASSIFIED_PUBLIC)
    is_problem(_submit(api, user="karim"), 403, "wrong-role")
    is_problem(_submit(api, user="root"), 403, "wrong-role")
    is_problem(_submit(api, "nothing"), 404, "unknown-dataset")
    is_problem(
        api("amina").post("/datasets/tariffs/submit", data={"reason": "x"}), 422, "invalid-request"
    )
    secret = api("amina").post(
        "/datasets/tariffs/classify", json={**CLASSIFIED_PUBLIC, "level": "RESTRICTED"}
    )
    assert secret.status_code == 200
    is_problem(_submit(api), 409, "not-publishable")


def test_upload_names_never_become_paths(api):
    """A file name with a path is reduced to a plain name (or replaced)."""
    _classified(api)
    body = is_problem(_submit(api, data=b"nope\n1\n", name="../../etc/passwd"), 422, "invalid-data")
    assert "passwd" in body["detail"]
    assert "../" not in body["detail"]


def test_pii_findings_block_approval_until_resolved(api):
    """Findings are listed; approval waits for each to be resolved; whoever resolved one may
    not approve (four eyes); another approver then approves."""
    _classified(api, table_schema=PII_SCHEMA)
    submission = _submit(api, data=PII_CSV).json()
    assert submission["findings"] == ["contact:email"]
    blocked = is_problem(
        api("karim").post("/datasets/tariffs/approve", json={}), 409, "pii-unresolved"
    )
    assert blocked["findings"] == ["contact:email"]

    resolve = {"finding_id": "contact:email", "resolution": "justify", "reason": "office e-mails"}
    is_problem(api("karim").post("/datasets/tariffs/resolve", json=resolve), 403, "wrong-role")
    is_problem(
        api("nadia").post("/datasets/tariffs/resolve", json={**resolve, "finding_id": "x:y"}),
        404,
        "unknown-finding",
    )
    is_problem(
        api("nadia").post("/datasets/tariffs/resolve", json={**resolve, "resolution": "ignore"}),
        422,
        "invalid-request",
    )
    review = api("nadia").post("/datasets/tariffs/resolve", json=resolve).json()
    assert review["unresolved"] == []
    assert review["findings"][0]["resolved_by"] == "nadia"
    is_problem(api("nadia").post("/datasets/tariffs/approve", json={}), 403, "four-eyes")
    approved = api("karim").post("/datasets/tariffs/approve", json={"reason": "fine"})
    assert approved.json()["decision"] == "approved"
    assert api("amina").get("/datasets/tariffs").json()["state"] == "APPROVED"


def test_approval_refusals(api):
    _classified(api)
    _submit(api)
    is_problem(api("amina").post("/datasets/tariffs/approve", json={}), 403, "wrong-role")
    is_problem(api("omar").post("/datasets/tariffs/approve", json={}), 404, "unknown-dataset")
    is_problem(api("root").post("/datasets/tariffs/approve", json={}), 403, "wrong-role")
    api("karim").post("/datasets/tariffs/approve", json={})
    is_problem(api("karim").post("/datasets/tariffs/approve", json={}), 409, "illegal-transition")


def test_reject_then_reopen(api):
    """A rejection (with its reason) goes back to the steward; reopening returns to DRAFT."""
    _classified(api)
    _submit(api)
    is_problem(api("karim").post("/datasets/tariffs/reject", json={}), 422, "invalid-request")
    rejected = api("karim").post("/datasets/tariffs/reject", json={"reason": "wrong year"})
    assert (rejected.json()["decision"], rejected.json()["reason"]) == ("rejected", "wrong year")
    is_problem(
        api("karim").post("/datasets/tariffs/reopen", json={"reason": "x"}), 403, "wrong-role"
    )
    reopened = api("amina").post("/datasets/tariffs/reopen", json={"reason": "fixing it"})
    assert reopened.json()["state"] == "DRAFT"
    is_problem(
        api("amina").post("/datasets/tariffs/reopen", json={"reason": "x"}),
        409,
        "illegal-transition",
    )


def test_history_lists_each_step(api):
    _classified(api)
    _submit(api)
    api("karim").post("/datasets/tariffs/reject", json={"reason": "wrong year"})
    entries = api("audrey").get("/datasets/tariffs/history").json()
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("dataset.register", "amina"),
        ("dataset.classify", "amina"),
        ("dataset.submit", "amina"),
        ("dataset.reject", "karim"),
    ]
    assert entries[2]["content_sha256"]
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)


@pytest.mark.parametrize(
    ("user", "status", "code"),
    [
        ("amina", 409, "illegal-transition"),  # not approved yet: nothing reaches the portal
        ("yasmine", 404, "unknown-dataset"),  # another agency's: hidden
        ("karim", 403, "wrong-role"),
        ("audrey", 403, "wrong-role"),
    ],
)
def test_publish_refusals_never_reach_the_portal(make_api, user, status, code):
    """Refused before any portal call (the portal here does not even listen)."""
    api = make_api(ckan_url="http://127.0.0.1:9")
    _classified(api)
    is_problem(api(user).post("/datasets/tariffs/publish"), status, code)


@pytest.mark.parametrize(
    ("user", "status", "code"),
    [
        ("amina", 409, "illegal-transition"),  # never published
        ("yasmine", 404, "unknown-dataset"),
        ("audrey", 403, "wrong-role"),
    ],
)
def test_withdraw_refusals_never_reach_the_portal(make_api, user, status, code):
    api = make_api(ckan_url="http://127.0.0.1:9")
    _classified(api)
    is_problem(api(user).post("/datasets/tariffs/withdraw", json={"reason": "x"}), status, code)
    is_problem(
        api("amina").post("/datasets/tariffs/withdraw", json={"reason": " "}),
        422,
        "invalid-request",
    )


def test_a_datasets_quality_is_read_like_the_dataset(api):
    """GET /datasets/{id}/quality: the score and each criterion, for whoever may read the
    dataset; the tariff's licence id (ODbL-1.0) is not one of the register's."""
    _register(api)
    scored = api("amina").get("/datasets/tariffs/quality")
    assert scored.status_code == 200, scored.text
    body = scored.json()
    licence = next(c for c in body["criteria"] if c["name"] == "licence")
    assert licence["met"] is False
    assert "ODbL-1.0" in licence["why"]
    assert 0 <= body["score"] < 100
    assert api("yasmine").get("/datasets/tariffs/quality").status_code == 404  # another agency
