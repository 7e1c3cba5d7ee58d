"""Failures as RFC 9457 problem documents: each project error's code keeps its status family;
invalid requests, unknown routes and wrong methods are problems too; a database failure and
an unexpected error say nothing of their cause."""

from __future__ import annotations

import logging

import pytest

from exchange import KeyStoreError, Malformed
from governance import (
    AlreadyExists,
    AuditTampered,
    ChangedSinceApproval,
    FourEyes,
    IllegalTransition,
    InvalidInput,
    NotPublishable,
    NotUtf8,
    OtherAgency,
    PiiUnresolved,
    StoreError,
    Unauthenticated,
    UnknownDataset,
    UnknownFinding,
    UnknownUser,
    WrongRole,
)
from governance._derive import BadSource, DerivedNotReviewed, UnknownColumn
from opendata import (
    InvalidData,
    MissingFile,
    NotPublished,
    PortalRefused,
    PortalRejected,
    PortalUnavailable,
)
from opendata._validate import DataReport
from schemas import SchemaError
from tabadul.api._problems import status_of
from tests.api.conftest import PROBLEM, is_problem

REFUSED = {"action": "approve", "dataset_id": "tariffs"}


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (Unauthenticated("x"), 401),
        (WrongRole("x", **REFUSED), 403),
        (OtherAgency("x", **REFUSED), 403),
        (FourEyes("x", **REFUSED), 403),
        (UnknownUser("x"), 404),
        (UnknownDataset("x"), 404),
        (UnknownFinding("x"), 404),
        (AlreadyExists("x"), 409),
        (IllegalTransition("x", **REFUSED), 409),
        (NotPublishable("x", **REFUSED), 409),
        (PiiUnresolved("x", findings=["a:b"], **REFUSED), 409),
        (ChangedSinceApproval("x", approved="a", offered="b", **REFUSED), 409),
        (DerivedNotReviewed("x", **REFUSED), 409),
        (MissingFile("x"), 409),
        (NotPublished("x"), 409),
        (InvalidInput("x"), 422),
        (UnknownColumn("x", columns=["a"]), 422),
        (BadSource("x"), 422),
        (InvalidData("x", DataReport(valid=False, rows=0, errors=())), 422),
        (NotUtf8("x", 3), 422),
        (StoreError("x"), 503),
        (PortalUnavailable("x"), 503),
        (KeyStoreError("x"), 503),
        (PortalRefused("x"), 502),
        (PortalRejected("x"), 502),
        (AuditTampered(3, "x"), 500),
        (Malformed("x"), 500),
        (SchemaError("x"), 500),
    ],
)
def test_each_code_keeps_its_status_family(error, status):
    """A code not in the table takes its nearest parent's status (unknown-dataset: 404)."""
    assert status_of(error) == status


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"label": "x"',
        b"\xff\xfe{}",
        b'{"label": "\xff"}',
        b"[" * 100_000,
        b'{"label": ' + b"9" * 5000 + b"}",
        b"",
    ],
    ids=["garbage", "truncated", "utf16-bom", "not-utf8", "too-deep", "huge-number", "empty"],
)
def test_a_body_that_cannot_be_parsed_is_a_bad_request(api, content):
    """Malformed JSON (garbage, cut short, not UTF-8, nested too deep) is 400 bad-request, as
    documented, on every kind of endpoint; it is never a 422 nor a 500, and the body is not
    echoed. An empty body is a missing body: 422 invalid-request."""
    for path in ("/tokens", "/datasets", "/registry/members"):
        response = api("root").post(
            path, content=content, headers={"content-type": "application/json"}
        )
        if content == b"":
            is_problem(response, 422, "invalid-request")
            continue
        body = is_problem(response, 400, "bad-request")
        assert "not json" not in response.text
        assert "errors" not in body


def test_validation_errors_never_echo_the_input(api):
    response = api("root").post("/users", json={"user_id": "u", "roles": ["s3cr3t-role"]})
    body = is_problem(response, 422, "invalid-request")
    assert "s3cr3t-role" not in response.text
    assert {e["path"] for e in body["errors"]} >= {"body.name", "body.agency", "body.roles.0"}


def test_unknown_routes_and_methods_are_problems(api):
    is_problem(api("root").get("/nowhere"), 404, "not-found")
    is_problem(api().get("/nowhere"), 404, "not-found")
    wrong = api("root").delete("/me")
    is_problem(wrong, 405, "method-not-allowed")
    assert wrong.headers["allow"] == "GET"
    both = api("root").request("OPTIONS", "/users")
    is_problem(both, 405, "method-not-allowed")
    assert both.headers["allow"] == "GET, POST"  # two routes, one path
    assert api("root").put("/users/amina").headers["allow"] == "GET"


def test_a_database_failure_says_nothing_of_its_cause(api, monkeypatch, caplog):
    """StoreError: 503 with a fixed text; the cause goes to the log only."""

    def broken() -> None:
        raise StoreError("the governance database failed: [SQL: SELECT secret_sha256 ...]")

    monkeypatch.setattr(api.services.registry, "members", broken)
    with caplog.at_level(logging.ERROR, logger="tabadul.api"):
        body = is_problem(api("root").get("/registry/members"), 503, "store")
    assert "SQL" not in body["detail"]
    assert "secret_sha256" in caplog.text


def test_an_unexpected_error_is_a_bare_500(api, monkeypatch, caplog):
    """Anything else: 500 internal, no message, no traceback in the answer; logged."""

    def broken() -> None:
        raise RuntimeError("password=hunter2")

    monkeypatch.setattr(api.services.registry, "members", broken)
    with caplog.at_level(logging.ERROR, logger="tabadul.api"):
        response = api("root").get("/registry/members")
    body = is_problem(response, 500, "internal")
    assert response.headers["content-type"] == PROBLEM
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert set(body) == {"type", "title", "status", "detail", "code"}
    assert "hunter2" in caplog.text


def test_refusals_carry_the_errors_own_members(api):
    """A refusal names its action and dataset, as governance's as_dict does."""
    api("amina").post(
        "/datasets",
        json={
            "dataset_id": "tariffs",
            "title": {"fr": "Tarif"},
            "description": {"fr": "Droits"},
            "source": "x.csv",
            "table_schema": {"fields": [{"name": "code"}]},
            "licence": "ODbL-1.0",
            "update_frequency": "yearly",
        },
    )
    body = is_problem(api("amina").post("/datasets/tariffs/approve", json={}), 403, "wrong-role")
    assert (body["action"], body["dataset"]) == ("approve", "tariffs")
