"""Publishing and withdrawing through the API on the real local CKAN (scripts/ckan-local):
exactly the approved bytes reach the portal, the same bytes publish nothing new, a withdrawal
purges the package; a refused token and an unreachable portal are problems. Each test uses
its own agency and dataset, purged afterwards."""

from __future__ import annotations

import contextlib
import hashlib
import uuid

import ckanapi
import httpx
import pytest

from opendata import ckan_name
from tests.api.conftest import CLASSIFIED_PUBLIC, CLOSED_URL, dataset_body, is_problem
from tests.opendata.conftest import TOKEN_FILE

CSV = b"code,rate\n0101,2.5\n0102,10\n"


@pytest.fixture
def agency(ckan):
    """A fresh agency code and dataset id; their CKAN organisation and package are purged
    afterwards."""
    tag = uuid.uuid4().hex[:8]
    code, dataset_id = f"T{tag.upper()}", f"tariffs-{tag}"
    yield code, dataset_id
    for action, ident in (
        ("dataset_purge", ckan_name(dataset_id)),
        ("organization_purge", ckan_name(code)),
    ):
        with contextlib.suppress(ckanapi.NotFound):
            ckan.call_action(action, {"id": ident})


def _approved(make_api, agency, **settings):
    """The API with a steward and an approver of ``agency`` and an approved dataset."""
    code, dataset_id = agency
    api = make_api(**settings)
    for user_id, roles in (("st", ["steward"]), ("ap", ["approver"])):
        created = api("root").post(
            "/users", json={"user_id": user_id, "name": user_id, "agency": code, "roles": roles}
        )
        assert created.status_code == 201, created.text
        api.tokens[user_id] = api.services.tokens.issue(user_id, user_id, label="t").token
    assert api("st").post("/datasets", json=dataset_body(dataset_id)).status_code == 201
    assert (
        api("st").post(f"/datasets/{dataset_id}/classify", json=CLASSIFIED_PUBLIC).status_code
        == 200
    )
    submitted = api("st").post(
        f"/datasets/{dataset_id}/submit", files={"file": ("tariffs.csv", CSV, "text/csv")}
    )
    assert submitted.status_code == 201, submitted.text
    assert api("ap").post(f"/datasets/{dataset_id}/approve", json={}).status_code == 200
    return api


def _ckan_token() -> str:
    return TOKEN_FILE.read_text("utf-8").strip()


def test_publish_then_withdraw_on_the_portal(make_api, agency, ckan):
    """Publish: the package holds exactly the approved bytes and the dataset is PUBLISHED;
    again: unchanged; withdraw: purged, WITHDRAWN, with the reason in the history."""
    code, dataset_id = agency
    api = _approved(make_api, agency, ckan_token=_ckan_token())
    published = api("st").post(f"/datasets/{dataset_id}/publish")
    assert published.status_code == 200, published.text
    result = published.json()
    assert (result["status"], result["version"]) == ("created", 1)
    assert result["sha256"] == hashlib.sha256(CSV).hexdigest()

    package = ckan.action.package_show(id=result["name"])
    assert package["organization"]["name"] == ckan_name(code)
    data = next(r for r in package["resources"] if r["name"] == "data.csv")
    assert httpx.get(data["url"], headers={"Authorization": _ckan_token()}).content == CSV
    detail = api("audrey").get(f"/datasets/{dataset_id}").json()
    assert detail["state"] == "PUBLISHED"
    assert detail["published_sha256"] == result["sha256"]

    again = api("root").post(f"/datasets/{dataset_id}/publish")  # operators publish too
    is_problem(again, 409, "illegal-transition")  # PUBLISHED: nothing approved to publish

    is_problem(
        api("ap").post(f"/datasets/{dataset_id}/withdraw", json={"reason": ""}),
        422,
        "invalid-request",
    )
    withdrawn = api("ap").post(f"/datasets/{dataset_id}/withdraw", json={"reason": "error found"})
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["package_id"] == result["package_id"]
    assert withdrawn.json()["reason"] == "error found"
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id=result["name"])
    history = api("st").get(f"/datasets/{dataset_id}/history").json()
    assert [e["action"] for e in history][-2:] == ["dataset.publish", "dataset.withdraw"]
    assert history[-1]["reason"] == "error found"
    is_problem(
        api("st").post(f"/datasets/{dataset_id}/withdraw", json={"reason": "again"}),
        409,
        "illegal-transition",
    )


def test_an_operator_publishes_the_same_bytes_once(make_api, agency, ckan):
    """The central operator may publish any agency's approved data; a new review of the
    same bytes publishes nothing new (unchanged)."""
    _code, dataset_id = agency
    api = _approved(make_api, agency, ckan_token=_ckan_token())
    first = api("root").post(f"/datasets/{dataset_id}/publish").json()
    assert first["status"] == "created"
    resubmitted = api("st").post(
        f"/datasets/{dataset_id}/submit", files={"file": ("tariffs.csv", CSV, "text/csv")}
    )
    assert resubmitted.status_code == 201
    api("ap").post(f"/datasets/{dataset_id}/approve", json={})
    second = api("root").post(f"/datasets/{dataset_id}/publish").json()
    assert (second["status"], second["version"]) == ("unchanged", 1)
    # withdrawn by the operator: an emergency take-down
    assert (
        api("root")
        .post(f"/datasets/{dataset_id}/withdraw", json={"reason": "takedown"})
        .status_code
        == 200
    )


def test_a_refused_portal_token_is_a_bad_gateway(make_api, agency, ckan):
    """CKAN refusing the token: 502 portal-refused, and the dataset stays APPROVED."""
    _code, dataset_id = agency
    api = _approved(make_api, agency, ckan_token="not-a-ckan-token")
    body = is_problem(api("st").post(f"/datasets/{dataset_id}/publish"), 502, "portal-refused")
    assert "not-a-ckan-token" not in body["detail"]
    assert api("st").get(f"/datasets/{dataset_id}").json()["state"] == "APPROVED"


def test_an_unreachable_portal_is_unavailable(make_api, agency, ckan):
    """No portal listening: 503 portal-unavailable, nothing recorded."""
    _code, dataset_id = agency
    api = _approved(make_api, agency, ckan_url=CLOSED_URL)
    is_problem(api("st").post(f"/datasets/{dataset_id}/publish"), 503, "portal-unavailable")
    assert api("st").get(f"/datasets/{dataset_id}").json()["state"] == "APPROVED"
