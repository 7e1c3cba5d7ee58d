"""`tabadul publish`, `tabadul withdraw` and `tabadul opendata search|pull|catalog` against
the real local CKAN: the commands call the governed pipeline, print JSON for scripts, and
report refusals as a code and a message with exit 2 (a failed check on pull exits 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opendata import ckan_name
from tabadul.cli import build_app
from tests.opendata.conftest import TOKEN_FILE, URL
from tests.opendata.test_pipeline import ROWS, Env
from tests.opendata.test_publisher import STORAGE
from tests.support.ckan import governance_keys


@pytest.fixture
def env(ckan, tmp_path, monkeypatch):
    made = Env(tmp_path, TOKEN_FILE.read_text("utf-8").strip())
    monkeypatch.setenv("TABADUL_GOVERNANCE_DB", str(tmp_path / "governance.sqlite"))
    monkeypatch.setenv("TABADUL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TABADUL_CKAN_URL", URL)
    monkeypatch.setenv("TABADUL_CKAN_TOKEN_FILE", str(TOKEN_FILE))
    for name, value in governance_keys(tmp_path).items():  # signs releases; the CA checks them
        monkeypatch.setenv(name, value)
    yield made
    made.close(ckan)


def run(*args: str) -> object:
    return CliRunner().invoke(build_app(), list(args))


def test_publish_pull_search_catalog_withdraw(env: Env, tmp_path: Path) -> None:
    env.classify()
    env.approved()
    published = run("publish", env.dataset_id, "--actor", "amina", "--json")
    assert published.exit_code == 0, published.output
    result = json.loads(published.stdout)
    assert (result["ok"], result["status"], result["version"]) == (True, "created", 1)
    assert result["url"] == f"{URL}/dataset/{ckan_name(env.dataset_id)}"

    found = json.loads(run("opendata", "search", f'name:"{result["name"]}"', "--json").stdout)
    assert [r["dataset_id"] for r in found["results"]] == [env.dataset_id]

    pulled = run("opendata", "pull", env.dataset_id, "-o", str(tmp_path / "out"), "--json")
    assert pulled.exit_code == 0, pulled.output
    report = json.loads(pulled.stdout)
    assert report["ok"] is True
    assert report["release"]["approvers"] == ["karim"]
    assert (tmp_path / "out" / "data.csv").read_text("utf-8") == ROWS

    catalog = run("opendata", "catalog", "--format", "dcat")
    assert catalog.exit_code == 0, catalog.output
    ids = [d["dct:identifier"] for d in json.loads(catalog.stdout)["dcat:dataset"]]
    assert env.dataset_id in ids

    withdrawn = run(
        "withdraw", env.dataset_id, "--reason", "superseded", "--actor", "root", "--json"
    )
    assert withdrawn.exit_code == 0, withdrawn.output
    assert json.loads(withdrawn.stdout)["files_deleted"] == 4
    gone = run("opendata", "pull", env.dataset_id, "-o", str(tmp_path / "again"), "--json")
    assert gone.exit_code == 2
    assert json.loads(gone.stdout)["error"]["code"] == "not-published"


def test_publishing_an_unapproved_dataset_is_refused(env: Env) -> None:
    env.classify()
    refused = run("publish", env.dataset_id, "--actor", "amina")
    assert refused.exit_code == 2
    assert "illegal-transition" in refused.stderr
    assert "Traceback" not in refused.output


def test_pull_exits_1_on_a_tampered_file(env: Env, ckan, tmp_path: Path) -> None:
    env.classify()
    env.approved()
    assert run("publish", env.dataset_id, "--actor", "amina").exit_code == 0
    package = ckan.action.package_show(id=ckan_name(env.dataset_id))
    data = next(r for r in package["resources"] if r["name"] == "data.csv")
    (STORAGE / data["id"][:3] / data["id"][3:6] / data["id"][6:]).write_text("region\nX\n")
    pulled = run("opendata", "pull", env.dataset_id, "-o", str(tmp_path / "out"))
    assert pulled.exit_code == 1
    assert "[release-mismatch]" in pulled.stderr
    assert "of the signed release" in pulled.stderr
    assert not (tmp_path / "out" / "data.csv").exists()


def test_catalog_refuses_an_unknown_format() -> None:
    result = run("opendata", "catalog", "--format", "rdf")
    assert result.exit_code == 2
    assert "unknown-format" in result.stderr
