"""``tabadul user``: the first operator bootstraps alone, operators register people and set
their roles, anyone reads who is who; refusals are a code and a message."""

from __future__ import annotations

import json

from tests.cli.governance.conftest import Cli


def test_bootstrap_creates_the_database_and_registers_the_first_operator(cli: Cli):
    """The first user registers with no actor, must be an operator, and the database is
    created where TABADUL_GOVERNANCE_DB says."""
    refused = cli.refused("invalid-input", "user", "add", "amina", "--name", "Amina",
                          "--agency", "DOUANE", "--role", "steward")  # fmt: skip
    assert "first user must be an operator" in refused.output
    made = cli.ok("user", "add", "root", "--name", "Root", "--agency", "DNUM", "--role", "operator")
    assert made["user"] == {
        "user_id": "root",
        "name": "Root",
        "agency": "DNUM",
        "roles": ["operator"],
    }
    assert (cli.tmp / "governance.sqlite").is_file()
    again = cli.refused("wrong-role", "user", "add", "omar", "--name", "Omar",
                        "--agency", "MEF", "--role", "operator")  # fmt: skip
    assert "only the first user registers alone" in again.output


def test_operator_registers_people_with_arabic_names(cli: Cli, monkeypatch):
    """An operator (from TABADUL_ACTOR) registers a person whose Arabic name prints as is."""
    cli.ok("user", "add", "root", "--name", "Root", "--agency", "DNUM", "--role", "operator")
    monkeypatch.setenv("TABADUL_ACTOR", "root")
    result = cli("user", "add", "amina", "--name", "أمينة العلوي", "--agency", "DOUANE",
                 "--role", "steward", "--role", "approver", "--reason", "new team")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "registered amina (أمينة العلوي, DOUANE: approver, steward)" in result.output
    listed = cli("user", "list")
    assert "أمينة العلوي" in listed.output
    assert "approver, steward" in listed.output
    shown = cli.ok("user", "show", "amina")
    assert shown["user"]["name"] == "أمينة العلوي"


def test_only_operators_register_and_ids_are_unique(people: Cli):
    """A steward may not register people; a taken id is refused."""
    people.refused("wrong-role", "user", "add", "zineb", "--name", "Zineb",
                   "--agency", "DOUANE", "--role", "steward", "--actor", "amina")  # fmt: skip
    people.refused("already-exists", "user", "add", "amina", "--name", "Amina",
                   "--agency", "DOUANE", "--role", "steward", "--actor", "root")  # fmt: skip
    people.refused("unknown-user", "user", "add", "zineb", "--name", "Zineb",
                   "--agency", "DOUANE", "--role", "steward", "--actor", "nobody")  # fmt: skip


def test_operator_sets_and_clears_roles(people: Cli):
    """Roles are replaced with the --role options given, or all taken away with --clear."""
    changed = people.ok("user", "roles", "samir", "--role", "approver", "--role", "steward",
                        "--reason", "promoted", "--actor", "root")  # fmt: skip
    assert changed["user"]["roles"] == ["approver", "steward"]
    cleared = people.ok("user", "roles", "samir", "--clear", "--reason", "left",
                        "--actor", "root")  # fmt: skip
    assert cleared["user"]["roles"] == []
    assert "no role" in people("user", "show", "samir").output


def test_roles_refusals(people: Cli):
    """Roles need --role or --clear (not both), an operator, a known person and a reason."""
    people.refused("roles", "user", "roles", "samir", "--reason", "x", "--actor", "root")
    people.refused("roles", "user", "roles", "samir", "--clear", "--role", "steward",
                   "--reason", "x", "--actor", "root")  # fmt: skip
    people.refused("wrong-role", "user", "roles", "samir", "--role", "approver",
                   "--reason", "x", "--actor", "amina")  # fmt: skip
    people.refused("unknown-user", "user", "roles", "nobody", "--role", "approver",
                   "--reason", "x", "--actor", "root")  # fmt: skip
    people.refused("invalid-input", "user", "roles", "samir", "--role", "approver",
                   "--reason", " ", "--actor", "root")  # fmt: skip
    people.refused("no-actor", "user", "roles", "samir", "--role", "approver", "--reason", "x")


def test_list_filters_by_agency_and_role(people: Cli):
    """``user list`` filters by agency and by role; an empty result says so."""
    douane = people.ok("user", "list", "--agency", "DOUANE", "--role", "approver")
    assert [u["user_id"] for u in douane["users"]] == ["karim", "nadia"]
    assert people.ok("user", "list")["users"][0]["user_id"] == "amina"  # by id
    assert "no user matches" in people("user", "list", "--agency", "NOPE").output


def test_show_unknown_user_and_missing_database(people: Cli, tmp_path):
    """An unknown person exits 2; reading a database that does not exist never creates it."""
    people.refused("unknown-user", "user", "show", "nobody")
    missing = tmp_path / "elsewhere.sqlite"
    result = people("user", "list", "--db", str(missing), "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "no-database"
    assert not missing.exists()


def test_db_option_wins_over_the_environment(cli: Cli, tmp_path):
    """--db names another database than TABADUL_GOVERNANCE_DB."""
    other = tmp_path / "other.sqlite"
    cli.ok("user", "add", "root", "--name", "Root", "--agency", "DNUM", "--role", "operator",
           "--db", str(other))  # fmt: skip
    assert other.is_file()
    assert not (tmp_path / "governance.sqlite").exists()
    assert cli.ok("user", "list", "--db", str(other))["users"][0]["user_id"] == "root"
