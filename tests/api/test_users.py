"""People and tokens: who may register, read and change people, and issue, list and revoke
tokens; each refusal with its code."""

from __future__ import annotations

import pytest

from tests.api.conftest import is_problem

NEWCOMER = {"user_id": "leila", "name": "Leila", "agency": "DOUANE", "roles": ["steward"]}


def test_me_is_the_token_holder(api):
    """GET /me answers the holder's id, name, agency and roles."""
    assert api("nadia").get("/me").json() == {
        "user_id": "nadia",
        "name": "Nadia",
        "agency": "DOUANE",
        "roles": ["approver", "steward"],
    }


@pytest.mark.parametrize("user", ["root", "audrey"])
def test_operators_and_auditors_list_everyone(api, user):
    """The user list is for operators and auditors, sorted by id."""
    found = api(user).get("/users")
    assert found.status_code == 200
    ids = [u["user_id"] for u in found.json()]
    assert ids == sorted(ids)
    assert {"root", "amina", "yasmine"} <= set(ids)


def test_people_are_filtered_by_agency_and_role(api):
    ids = lambda **params: [u["user_id"] for u in api("root").get("/users", params=params).json()]  # noqa: E731
    assert ids(agency="MEF") == ["omar", "yasmine"]
    assert ids(role="approver") == ["karim", "nadia", "omar"]
    assert ids(agency="MEF", role="approver") == ["omar"]
    is_problem(api("root").get("/users", params={"role": "king"}), 422, "invalid-request")
    is_problem(api("root").get("/users", params={"agnecy": "MEF"}), 422, "invalid-request")


def test_others_may_not_list_everyone(api):
    body = is_problem(api("amina").get("/users"), 403, "wrong-role")
    assert "only an auditor or an operator" in body["detail"]


def test_operator_registers_a_person_and_the_audit_log_says_so(api):
    """POST /users (operator): 201 with the record; then an audit entry about them."""
    created = api("root").post("/users", json={**NEWCOMER, "reason": "new steward"})
    assert created.status_code == 201
    assert created.json() == NEWCOMER
    entries = api("audrey").get("/audit/entries", params={"subject": "user:leila"}).json()
    assert [(e["action"], e["actor"], e["reason"]) for e in entries] == [
        ("user.register", "root", "new steward")
    ]


def test_registering_people_is_refused_to_others_and_twice(api):
    is_problem(api("amina").post("/users", json=NEWCOMER), 403, "wrong-role")
    assert api("root").post("/users", json=NEWCOMER).status_code == 201
    is_problem(api("root").post("/users", json=NEWCOMER), 409, "already-exists")


def test_malformed_people_are_refused(api):
    """Governance's checks (an agency in capitals) and the body's (roles, members) both
    answer 422, with different codes."""
    body = is_problem(
        api("root").post("/users", json={**NEWCOMER, "agency": "douane"}), 422, "invalid-input"
    )
    assert "agency" in body["detail"]
    wrong_role = is_problem(
        api("root").post("/users", json={**NEWCOMER, "roles": ["king"]}), 422, "invalid-request"
    )
    assert wrong_role["errors"][0]["path"] == "body.roles.0"
    is_problem(api("root").post("/users", json={**NEWCOMER, "age": 3}), 422, "invalid-request")


def test_a_person_reads_themself_oversight_reads_anyone(api):
    assert api("amina").get("/users/amina").json()["agency"] == "DOUANE"
    assert api("root").get("/users/amina").status_code == 200
    assert api("audrey").get("/users/yasmine").json()["agency"] == "MEF"
    is_problem(api("amina").get("/users/samir"), 403, "wrong-role")
    is_problem(api("root").get("/users/nobody"), 404, "unknown-user")


def test_operator_sets_roles_with_a_reason(api):
    """PUT /users/{id}/roles replaces the roles; others are refused, a reason is required."""
    changed = api("root").put(
        "/users/samir/roles", json={"roles": ["steward", "auditor"], "reason": "audit duty"}
    )
    assert changed.json()["roles"] == ["auditor", "steward"]
    assert api("samir").get("/audit/verify").status_code == 200  # the new role counts at once
    is_problem(
        api("amina").put("/users/samir/roles", json={"roles": [], "reason": "x"}),
        403,
        "wrong-role",
    )
    is_problem(
        api("root").put("/users/samir/roles", json={"roles": [], "reason": ""}),
        422,
        "invalid-request",
    )
    is_problem(
        api("root").put("/users/nobody/roles", json={"roles": [], "reason": "x"}),
        404,
        "unknown-user",
    )


def test_a_person_without_roles_is_disabled(api):
    """Roles emptied (a disabled account): the person's tokens no longer authenticate."""
    api("root").put("/users/samir/roles", json={"roles": [], "reason": "left the agency"})
    for path in ("/me", "/datasets", "/tokens"):
        is_problem(api("samir").get(path), 401, "unauthenticated")


def test_issued_token_is_shown_once_and_works(api):
    """POST /tokens: the secret in the answer, a record without it in the list."""
    issued = api("amina").post("/tokens", json={"label": "script", "ttl_days": 2})
    assert issued.status_code == 201
    token, record = issued.json()["token"], issued.json()["record"]
    assert record["user_id"] == "amina"
    assert record["label"] == "script"
    me = api().get("/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["user_id"] == "amina"
    listed = api("amina").get("/tokens").json()
    assert record["token_id"] in {t["token_id"] for t in listed}
    assert token.split(".")[1] not in str(listed)


def test_operators_issue_anyones_tokens_others_only_their_own(api):
    for_amina = api("root").post("/tokens", json={"label": "console", "user_id": "amina"})
    assert for_amina.json()["record"]["created_by"] == "root"
    for someone in ("amina", "nobody"):  # the same refusal, whether the person exists or not
        is_problem(
            api("samir").post("/tokens", json={"label": "x", "user_id": someone}),
            403,
            "wrong-role",
        )
    is_problem(
        api("root").post("/tokens", json={"label": "x", "user_id": "nobody"}), 404, "unknown-user"
    )
    is_problem(
        api("amina").post("/tokens", json={"label": "x", "ttl_days": 400}), 422, "invalid-request"
    )


def test_listing_someone_elses_tokens_needs_oversight(api):
    assert [t["user_id"] for t in api("audrey").get("/tokens", params={"user_id": "amina"}).json()]
    is_problem(api("samir").get("/tokens", params={"user_id": "amina"}), 403, "wrong-role")


def test_revoking_someone_elses_token_needs_an_operator(api):
    """To anyone but its holder and operators, another's token is as unknown as a token never
    issued: the same 404, but for the id."""
    token_id = api.tokens["amina"].removeprefix("tbd_").split(".")[0]
    hidden = is_problem(
        api("samir").post(f"/tokens/{token_id}/revoke", json={"reason": "no"}), 404, "not-found"
    )
    missing = is_problem(
        api("samir").post("/tokens/0123456789abcdef/revoke", json={"reason": "no"}),
        404,
        "not-found",
    )
    assert hidden == {**missing, "detail": missing["detail"].replace("0123456789abcdef", token_id)}
    assert api("amina").get("/me").status_code == 200
    revoked = api("root").post(f"/tokens/{token_id}/revoke", json={"reason": "left"})
    assert revoked.json()["revoked_at"] is not None
    is_problem(
        api("root").post("/tokens/0123456789abcdef/revoke", json={"reason": "x"}), 404, "not-found"
    )
    is_problem(
        api("root").post(f"/tokens/{token_id}/revoke", json={"reason": " "}), 422, "invalid-request"
    )
