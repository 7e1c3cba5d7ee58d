"""Authentication: every endpoint but the public directory needs a valid bearer token; a
missing, malformed, unknown, expired or revoked one is a 401 problem with WWW-Authenticate,
and the token is never echoed nor logged."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from tests.api.conftest import is_problem

# One GET per group of endpoints: each refuses without a valid token.
PROTECTED = [
    "/me",
    "/users",
    "/tokens",
    "/datasets",
    "/datasets/tariffs",
    "/registry/members",
    "/audit/entries",
    "/audit/verify",
    "/traffic",
]


@pytest.mark.parametrize("path", PROTECTED)
def test_no_token_is_refused_with_www_authenticate(api, path):
    """Without Authorization, a 401 problem naming the scheme to use."""
    response = api().get(path)
    body = is_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in body["detail"]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer nonsense",
        "Bearer tbd_0123456789abcdef." + "A" * 43,  # well formed, unknown
        "Basic YW1pbmE6c2VjcmV0",  # another scheme
        "Bearer",  # the scheme alone
    ],
)
def test_malformed_unknown_or_other_scheme_tokens_are_refused(api, header):
    """A token that is not ours, unknown, or sent with another scheme is a 401."""
    response = api().get("/me", headers={"Authorization": header})
    is_problem(response, 401, "unauthenticated")
    secret = header.partition(" ")[2]
    assert not secret or secret not in response.text


def test_a_client_guessing_tokens_is_made_to_wait(api):
    """After ten failed tokens within a minute, the client's calls (even with a good token)
    answer 429 too-many-attempts with Retry-After, without checking the token."""
    bad = {"Authorization": "Bearer tbd_0123456789abcdef." + "A" * 43}
    for _ in range(10):
        is_problem(api().get("/me", headers=bad), 401, "unauthenticated")
    response = api("amina").get("/me")
    body = is_problem(response, 429, "too-many-attempts")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert body["retry_after"] == int(response.headers["Retry-After"])


def test_expired_token_is_refused(api):
    """A token past its expiry is refused, saying so."""
    token_id = api.tokens["amina"].removeprefix("tbd_").split(".")[0]
    with api.services.store.transaction("expire a token") as conn:
        conn.execute(
            sa.text("UPDATE api_tokens SET expires_at = :t WHERE token_id = :i"),
            {"t": "2020-01-01T00:00:00.000Z", "i": token_id},
        )
    body = is_problem(api("amina").get("/me"), 401, "unauthenticated")
    assert "expired" in body["detail"]


def test_revoked_token_is_refused_at_once(api):
    """Revoking a token through the API makes the next call with it a 401."""
    assert api("amina").get("/me").status_code == 200
    token_id = api.tokens["amina"].removeprefix("tbd_").split(".")[0]
    revoked = api("amina").post(f"/tokens/{token_id}/revoke", json={"reason": "laptop lost"})
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    body = is_problem(api("amina").get("/me"), 401, "unauthenticated")
    assert "revoked" in body["detail"]


def test_tokens_are_never_logged(api, caplog):
    """Neither a valid token nor a refused one reaches the log."""
    caplog.set_level(logging.DEBUG)
    good = api.tokens["karim"]
    api("karim").get("/me")
    api().get("/me", headers={"Authorization": "Bearer tbd_0123456789abcdef." + "Z" * 43})
    assert good not in caplog.text
    assert good.split(".")[1] not in caplog.text
    assert "Z" * 43 not in caplog.text


def test_the_public_directory_needs_no_token(api):
    """GET /directory/latest answers without a token (404 before the first publication)."""
    is_problem(api().get("/directory/latest"), 404, "no-directory")
