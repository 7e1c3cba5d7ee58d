"""``tabadul audit``: verify exits 0 intact, 1 tampered (with the entry), 2 unreadable; show
lists entries."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from governance import GovernanceStore, Workflow
from tabadul.cli._audit import audit_app
from tests.governance.conftest import SHA_A, Backend, Clock, classify, register

app = typer.Typer()
app.add_typer(audit_app, name="audit")
runner = CliRunner()


@pytest.fixture
def filled(backend: Backend) -> Backend:
    store = backend.open()
    flow = Workflow(store, clock=Clock())
    flow.register_user(None, "root", name="Root", agency="DNUM", roles=["operator"])
    flow.register_user("root", "amina", name="أمينة", agency="DOUANE", roles=["steward"])
    register(flow)
    classify(flow)
    flow.submit_for_review("amina", "tariffs", content_sha256=SHA_A)
    store.close()
    return backend


def test_intact_log_exits_0(filled):
    """An intact log prints its size and head hash and exits 0."""
    result = runner.invoke(app, ["audit", "verify", *filled.cli_args()])
    assert result.exit_code == 0, result.output
    assert "intact" in result.output
    assert "5 entries" in result.output


def test_intact_log_json(filled):
    """--json prints the report."""
    result = runner.invoke(app, ["audit", "verify", *filled.cli_args(), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert data["count"] == 5
    assert len(data["head_hash"]) == 64


def test_tampered_log_exits_1(filled):
    """A tampered log exits 1 with the first bad entry and the reason."""
    filled.sql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
    result = runner.invoke(app, ["audit", "verify", *filled.cli_args(), "--json"])
    assert result.exit_code == 1, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "audit-tampered"
    assert error["seq"] == 4
    assert "does not match its hash" in error["reason"]
    text = runner.invoke(app, ["audit", "verify", *filled.cli_args()])
    assert text.exit_code == 1
    assert "audit entry 4" in text.output


def test_missing_database_exits_2(tmp_path):
    """A file that does not exist exits 2 and is not created."""
    path = tmp_path / "none.sqlite"
    result = runner.invoke(app, ["audit", "verify", str(path), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "store"
    assert not path.exists()


def test_not_a_governance_database_exits_2(tmp_path):
    """A file that is not a governance database exits 2 with a clear message."""
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not a database at all" * 100)
    result = runner.invoke(app, ["audit", "verify", str(path)])
    assert result.exit_code == 2
    assert "[store]" in result.output


@pytest.mark.postgres
def test_missing_postgres_schema_exits_2(pg_backend):
    """A PostgreSQL schema without the governance tables exits 2 (nothing is created)."""
    result = runner.invoke(app, ["audit", "verify", *pg_backend.cli_args(), "--json"])
    assert result.exit_code == 2
    assert "not a Tabadul governance database" in json.loads(result.stdout)["error"]["message"]
    assert pg_backend.sql(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s",
        pg_backend.schema,
    ) == [(0,)]


def test_show_lists_entries(filled):
    """show prints one row per entry, oldest first."""
    result = runner.invoke(app, ["audit", "show", *filled.cli_args()])
    assert result.exit_code == 0, result.output
    assert "user.register" in result.output
    assert "dataset.submit" in result.output
    assert result.output.index("user.register") < result.output.index("dataset.submit")


def test_show_subject_and_limit_json(filled):
    """--subject and --limit select the last entries about one subject."""
    result = runner.invoke(
        app,
        ["audit", "show", *filled.cli_args(), "--subject", "dataset:tariffs", "--limit", "2"],
    )
    assert result.exit_code == 0, result.output
    as_json = runner.invoke(
        app,
        [
            "audit",
            "show",
            *filled.cli_args(),
            "--subject",
            "dataset:tariffs",
            "--limit",
            "2",
            "--json",
        ],
    )
    entries = json.loads(as_json.stdout)["entries"]
    assert [e["action"] for e in entries] == ["dataset.classify", "dataset.submit"]
    assert entries[1]["content_sha256"] == SHA_A
    assert entries[1]["details"]["to"] == "IN_REVIEW"


def test_show_nothing_matches(filled):
    """A subject with no entries says so and exits 0."""
    result = runner.invoke(app, ["audit", "show", *filled.cli_args(), "--subject", "user:nobody"])
    assert result.exit_code == 0
    assert "no audit entry matches" in result.output


def test_show_does_not_migrate(tmp_path):
    """show on a missing file exits 2 without creating it."""
    path = tmp_path / "absent.sqlite"
    result = runner.invoke(app, ["audit", "show", str(path)])
    assert result.exit_code == 2
    assert not path.exists()
    assert GovernanceStore  # the CLI opens stores read-only; the library creates them
