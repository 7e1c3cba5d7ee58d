"""Fixtures of the governance commands: a CLI runner over a SQLite governance database in
``tmp_path`` (named by TABADUL_GOVERNANCE_DB, as a deployment would), the people of
tests/governance, and a small CSV with its Table Schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tabadul.cli import _output, build_app
from tests.governance.conftest import PEOPLE, pg_backend

__all__ = ["pg_backend"]

ENV = (
    "TABADUL_ACTOR",
    "TABADUL_GOVERNANCE_DB",
    "TABADUL_GOVERNANCE_SCHEMA",
    "TABADUL_DATA_DIR",
    "TABADUL_CA_DIR",
)
# Customs offices and their contact address: the address column is a PII finding (e-mail).
CSV = """bureau,ville,contact,droits
B01,الرباط,a.alaoui@douane.gov.ma,12.5
B02,Casablanca,k.idrissi@douane.gov.ma,7
"""
TABLE_SCHEMA = {
    "fields": [
        {"name": "bureau", "type": "string"},
        {"name": "ville", "type": "string"},
        {"name": "contact", "type": "string"},
        {"name": "droits", "type": "number"},
    ]
}
TITLE_AR = "مكاتب الجمارك"


@dataclass
class Cli:
    """Runs ``tabadul`` in-process; ``ok`` also asks for --json and checks success."""

    runner: CliRunner
    tmp: Path

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(build_app(), list(args))

    def ok(self, *args: str) -> dict[str, Any]:
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        data: dict[str, Any] = json.loads(result.stdout)
        assert data["ok"] is True
        return data

    def refused(self, code: str, *args: str) -> Result:
        """Run, expecting exit 2 with ``code`` both as text and as JSON."""
        text = self(*args)
        assert text.exit_code == 2, text.output
        assert f"error [{code}]:" in text.output, text.output
        assert "Traceback" not in text.output
        as_json = self(*args, "--json")
        assert as_json.exit_code == 2, as_json.output
        error = json.loads(as_json.stdout)
        assert error["ok"] is False
        assert error["error"]["code"] == code, error
        return text

    def file(self, name: str, text: str) -> str:
        path = self.tmp / name
        path.write_text(text, encoding="utf-8")
        return str(path)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI, with only this test's TABADUL_* settings and wide consoles (no folding)."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TABADUL_GOVERNANCE_DB", str(tmp_path / "governance.sqlite"))
    monkeypatch.setenv("TABADUL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(_output.console, "width", 240)
    monkeypatch.setattr(_output.err_console, "width", 240)
    return Cli(CliRunner(), tmp_path)


def add_people(cli: Callable[..., Result], *extra: str) -> None:
    """Bootstrap ``root`` (the first operator, with no actor), then the other people."""
    for user_id, (agency, roles) in PEOPLE.items():
        actor = [] if user_id == "root" else ["--actor", "root"]
        role_args = [arg for role in roles for arg in ("--role", role)]
        result = cli("user", "add", user_id, "--name", user_id.title(), "--agency", agency,
                     *role_args, *actor, *extra)  # fmt: skip
        assert result.exit_code == 0, result.output


@pytest.fixture
def people(cli: Cli) -> Cli:
    add_people(cli)
    return cli


def register_args(cli: Cli, dataset_id: str = "offices", **changes: str) -> list[str]:
    """``dataset register`` arguments for a dataset of DOUANE, by amina."""
    options = {
        "--actor": "amina",
        "--title-fr": "Bureaux de douane",
        "--title-ar": TITLE_AR,
        "--description-fr": "Les bureaux et leurs droits",
        "--source": "exports/offices.csv",
        "--schema-file": cli.file("schema.json", json.dumps(TABLE_SCHEMA)),
        "--licence": "ODbL-1.0",
        "--frequency": "yearly",
        **changes,
    }
    return ["dataset", "register", dataset_id, *[x for kv in options.items() for x in kv]]


def classify_args(dataset_id: str = "offices", actor: str = "amina") -> list[str]:
    return ["dataset", "classify", dataset_id, "--actor", actor, "--level", "PUBLIC",
            "--no-personal-data", "--legal-basis", "Loi 31-13",
            "--justification", "office list, published yearly"]  # fmt: skip


@pytest.fixture
def classified(people: Cli) -> Cli:
    """Dataset ``offices`` of DOUANE, registered and classified PUBLIC by amina."""
    people.ok(*register_args(people))
    people.ok(*classify_args())
    return people


@pytest.fixture
def submitted(classified: Cli) -> Cli:
    """``offices`` in review, with its one PII finding (contact:email) open."""
    classified.ok("dataset", "submit", "offices", classified.file("offices.csv", CSV),
                  "--actor", "amina")  # fmt: skip
    return classified
