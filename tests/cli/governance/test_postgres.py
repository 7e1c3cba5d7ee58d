"""The governance commands on the real PostgreSQL, in a fresh schema named by --schema
(dropped after): bootstrap, the dataset review, tokens and the registry."""

from __future__ import annotations

import pytest

from tests.cli.governance.conftest import CSV, Cli, add_people, classify_args, register_args
from tests.governance.conftest import Backend


@pytest.mark.postgres
def test_review_flow_on_postgres(cli: Cli, pg_backend: Backend):
    """--db postgresql://... --schema S creates the schema on the first user and every
    command then works in it; the SQLite default is left untouched."""
    where = ["--db", pg_backend.location, "--schema", pg_backend.schema or ""]
    add_people(cli, *where)
    cli.ok(*register_args(cli), *where)
    cli.ok(*classify_args(), *where)
    csv_file = cli.file("offices.csv", CSV)
    submitted = cli.ok("dataset", "submit", "offices", csv_file, "--actor", "amina", *where)
    assert submitted["findings"] == ["contact:email"]
    cli.ok("dataset", "resolve", "offices", "contact:email", "--resolution", "justify",
           "--reason", "the offices' public desks", "--actor", "nadia", *where)  # fmt: skip
    four_eyes = cli.refused("four-eyes", "dataset", "approve", "offices", "--actor", "nadia",
                            *where)  # fmt: skip
    assert "resolved one of its PII findings" in four_eyes.output
    approved = cli.ok("dataset", "approve", "offices", "--actor", "karim", *where)
    assert approved["review"]["decision"] == "approved"
    cli.ok("token", "issue", "--label", "console", "--actor", "karim", *where)
    cli.ok("registry", "member", "add", "MA/GOV/MEF", "--name", "MEF", "--actor", "root", *where)
    assert [t["user_id"] for t in cli.ok("token", "list", *where)["tokens"]] == ["karim"]
    assert pg_backend.sql("SELECT state FROM datasets") == [("APPROVED",)]
    verify = cli("audit", "verify", *pg_backend.cli_args())
    assert verify.exit_code == 0, verify.output
    assert not (cli.tmp / "governance.sqlite").exists()
