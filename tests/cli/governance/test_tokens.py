"""``tabadul token``: the secret is printed once and works; lists never show it; revoking
stops it; people manage their own tokens, operators anyone's."""

from __future__ import annotations

import os

import pytest

from governance import GovernanceStore, Tokens, Unauthenticated
from tests.cli.governance.conftest import Cli


def _authenticate(secret: str) -> str:
    store = GovernanceStore.open(os.environ["TABADUL_GOVERNANCE_DB"], migrate=False)
    try:
        return Tokens(store).authenticate(secret).user_id
    finally:
        store.close()


def test_issue_prints_the_secret_once_and_it_works(people: Cli):
    """The secret is the one stdout line of ``issue``; ``list`` shows the record only."""
    result = people("token", "issue", "--label", "console", "--actor", "amina")
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("tbd_")
    assert "shown once" in result.stderr
    assert _authenticate(secret) == "amina"
    listed = people("token", "list")
    assert "console" in listed.output
    assert "active" in listed.output
    assert secret.split(".")[1] not in listed.output


def test_issue_json_and_operator_issues_for_others(people: Cli):
    """--json gives the record and the secret; an operator may issue anyone's token."""
    issued = people.ok("token", "issue", "karim", "--label", "scripts", "--days", "7",
                       "--actor", "root")  # fmt: skip
    assert issued["token"]["user_id"] == "karim"
    assert issued["token"]["created_by"] == "root"
    assert _authenticate(issued["secret"]) == "karim"
    assert set(issued["token"]) >= {"token_id", "expires_at", "revoked_at"}


def test_issue_refusals(people: Cli):
    """Only the holder or an operator; a label; at most 366 days; an actor."""
    people.refused("wrong-role", "token", "issue", "karim", "--label", "x", "--actor", "amina")
    people.refused("invalid-input", "token", "issue", "--label", " ", "--actor", "amina")
    people.refused("invalid-input", "token", "issue", "--label", "x", "--days", "400",
                   "--actor", "amina")  # fmt: skip
    people.refused("unknown-user", "token", "issue", "--label", "x", "--actor", "nobody")
    people.refused("no-actor", "token", "issue", "--label", "x")


def test_revoke_stops_the_token(people: Cli):
    """A revoked token no longer authenticates and lists as revoked; to others (but
    operators) it is as unknown as a token never issued."""
    issued = people.ok("token", "issue", "--label", "console", "--actor", "amina")
    token_id = issued["token"]["token_id"]
    people.refused("not-found", "token", "revoke", token_id, "--reason", "x", "--actor", "samir")
    revoked = people.ok("token", "revoke", token_id, "--reason", "laptop lost", "--actor", "root")
    assert revoked["token"]["revoked_at"] is not None
    with pytest.raises(Unauthenticated, match="revoked"):
        _authenticate(issued["secret"])
    listed = people.ok("token", "list", "--user", "amina")
    assert [(t["token_id"], t["status"]) for t in listed["tokens"]] == [(token_id, "revoked")]
    people.refused("not-found", "token", "revoke", "0" * 16, "--reason", "x", "--actor", "root")


def test_list_when_there_is_none(people: Cli):
    """An empty list says so, and is an empty JSON list."""
    assert "no API token" in people("token", "list").output
    assert people.ok("token", "list")["tokens"] == []
