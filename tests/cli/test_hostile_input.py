"""Hostile command-line input: every option naming an identity, a number of days or hours,
or a file to check is refused at the edge as one line ``error [code]: message`` with a
non-zero exit (never a traceback, never ``internal``), and a command asked to check, show or
prove a file never creates or changes it: a path that does not exist, an empty file, a file
that is no SQLite database, another application's SQLite database and a folder are each
refused and left byte for byte as they were."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from exchange import cert_to_pem
from exchange.sandbox import Sandbox
from tabadul.cli import build_app
from tests.support.ckan import CA_CERTIFICATE

BAD_INSTANCES = ["", " ", "MA/GOV", "M A", "M\u202eA", "x" * 300, "../x", "a\x00b", "M" * 49]
BAD_SUBSYSTEMS = [
    "",
    "MA/GOV",
    "MA/GOV/MEF/CUS TOMS",
    "MA/GOV/MEF/C\u202eX",
    "MA/GOV/MEF/" + "X" * 54,
]
# whole days and hours out of range, and what is no number a period can be
BAD_DAYS = ["0", "-1", "36501", "99999999999"]
BAD_HOURS = ["-1", "8761", "99999999999", "1e308", "nan", "inf", "-inf"]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Result]:
    monkeypatch.setenv("TABADUL_CA_PASSPHRASE", "ca secret")
    monkeypatch.setenv("TABADUL_KEY_PASSPHRASE", "key secret")
    for name in ("TABADUL_ACTOR", "TABADUL_GOVERNANCE_SCHEMA", "TABADUL_CA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TABADUL_GOVERNANCE_DB", str(tmp_path / "governance.sqlite"))
    monkeypatch.setenv("TABADUL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(build_app(), list(args))

    return run


def refused(result: Result, code: str) -> None:
    """Exit 1 or 2, the code on one line, no traceback, no unexpected exception."""
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert f"error [{code}]:" in result.output, result.output
    assert "Traceback" not in result.output
    assert "internal" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def refused_json(result: Result, code: str) -> None:
    assert result.exit_code in (1, 2), result.output
    assert json.loads(result.stdout)["error"]["code"] == code


# ---- identities and validity periods -----------------------------------------------------


@pytest.mark.parametrize("instance", BAD_INSTANCES)
def test_ca_init_refuses_an_instance_that_is_no_identity_part(cli, tmp_path, instance):
    refused(cli("ca", "init", "--instance", instance, "--dir", "ca"), "invalid-identity")
    assert not (tmp_path / "ca").exists()


@pytest.mark.parametrize("days", BAD_DAYS)
def test_ca_init_refuses_a_validity_out_of_range(cli, tmp_path, days):
    """0 days would make a CA that is already expired; a negative or huge count is no
    validity either."""
    refused(cli("ca", "init", "--instance", "MA", "--dir", "ca", "--days", days), "invalid-period")
    refused_json(
        cli("ca", "init", "--instance", "MA", "--dir", "ca", "--days", days, "--json"),
        "invalid-period",
    )
    assert not (tmp_path / "ca").exists()


@pytest.fixture
def ca_and_keys(cli) -> None:
    assert cli("ca", "init", "--instance", "MA", "--dir", "ca").exit_code == 0
    assert cli("keys", "generate", "MA/GOV/MEF/CUSTOMS", "--keys", "k").exit_code == 0


@pytest.mark.parametrize("days", BAD_DAYS)
def test_ca_issue_refuses_a_validity_out_of_range(cli, ca_and_keys, tmp_path, days):
    refused(cli("ca", "issue", "--keys", "k", "--dir", "ca", "--days", days), "invalid-period")
    assert not (tmp_path / "k" / "gen-1" / "signing.pem").exists()
    assert cli("ca", "list", "--dir", "ca", "--json").stdout.strip() == "[]"


@pytest.mark.parametrize("subsystem", BAD_SUBSYSTEMS)
def test_keys_generate_and_ca_issue_refuse_a_subsystem_no_certificate_can_name(
    cli, ca_and_keys, tmp_path, subsystem
):
    refused(cli("keys", "generate", subsystem, "--keys", "other"), "invalid-identity")
    refused(
        cli("ca", "issue", "--keys", "other", "--dir", "ca", "--subsystem", subsystem),
        "invalid-identity",
    )
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("hours", BAD_HOURS)
def test_keys_rotate_refuses_an_overlap_out_of_range(cli, ca_and_keys, tmp_path, hours):
    refused(cli("keys", "rotate", "--keys", "k", "--overlap-hours", hours), "invalid-period")
    assert not (tmp_path / "k" / "gen-2").exists()


@pytest.mark.parametrize("needle", ["", "0x", "sha256:", "x" * 300])
def test_ca_revoke_refuses_what_is_no_serial_or_fingerprint(cli, ca_and_keys, needle):
    refused(cli("ca", "revoke", needle, "--reason", "lost", "--dir", "ca"), "invalid-certificate")


@pytest.fixture
def people(cli) -> None:
    result = cli("user", "add", "root", "--name", "Root", "--agency", "DNUM", "--role", "operator")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("days", BAD_DAYS)
def test_token_issue_refuses_a_life_out_of_range(cli, people, days):
    refused(
        cli("token", "issue", "--label", "x", "--actor", "root", "--days", days), "invalid-input"
    )
    assert "no API token" in cli("token", "list", "--user", "root").output


@pytest.mark.parametrize("hours", ["0", "-1", "8785", "99999999999"])
def test_directory_publish_refuses_a_validity_out_of_range(cli, people, ca_and_keys, hours):
    refused(
        cli(
            "directory",
            "publish",
            "--db",
            "governance.sqlite",
            "--ca-dir",
            "ca",
            "--actor",
            "root",
            "-o",
            "d.json",
            "--valid-hours",
            hours,
        ),
        "invalid-input",
    )
    assert not Path("d.json").exists()


# ---- files to check ------------------------------------------------------------------------


def _foreign_sqlite(path: Path) -> None:
    """Another application's SQLite database (rollback journal, one table)."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('not yours')")
    conn.commit()
    conn.close()


KINDS: dict[str, Callable[[Path], None]] = {
    "missing": lambda _path: None,
    "empty": lambda path: path.write_bytes(b""),
    "not sqlite": lambda path: path.write_bytes(b"station,ph\nA,7.1\n" * 40),
    "foreign sqlite": _foreign_sqlite,
    "folder": lambda path: path.mkdir(),
}


def _state(path: Path) -> object:
    """What is at ``path``: absent, a folder's listing, or a file's SHA-256 (and any files
    SQLite would put beside it)."""
    beside = sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name + "-"))
    if path.is_dir():
        return ("folder", sorted(p.name for p in path.iterdir()), beside)
    if path.exists():
        return ("file", hashlib.sha256(path.read_bytes()).hexdigest(), beside)
    return ("absent", beside)


# each command and its code (the governance commands say no-database where no file is)
CHECKING_COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "audit verify": (("audit", "verify", "{path}"), "store"),
    "audit show": (("audit", "show", "{path}"), "store"),
    "log verify": (("log", "verify", "{path}"), "log"),
    "log proof": (
        (
            "log",
            "proof",
            "{path}",
            "m-1",
            "-o",
            "bundle.json",
            "--directory",
            "dir.json",
            "--ca",
            "bus-ca.pem",
        ),
        "log",
    ),
    "directory publish": (
        (
            "directory",
            "publish",
            "--db",
            "{path}",
            "--ca-dir",
            "ca",
            "--actor",
            "root",
            "-o",
            "d.json",
        ),
        "store",
    ),
    "user list": (("user", "list", "--db", "{path}"), "store"),
    "dataset list": (("dataset", "list", "--db", "{path}"), "store"),
    "token list": (("token", "list", "--db", "{path}"), "store"),
    "registry member list": (("registry", "member", "list", "--db", "{path}"), "store"),
}
NO_FILE_CODE = {
    "user list": "no-database",
    "dataset list": "no-database",
    "token list": "no-database",
    "registry member list": "no-database",
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", CHECKING_COMMANDS)
def test_a_command_asked_to_check_a_file_never_creates_or_changes_it(
    cli, ca_and_keys, tmp_path, command, kind
):
    """Each kind of wrong path is refused with the command's code and left as it was."""
    path = tmp_path / "target.sqlite"
    KINDS[kind](path)
    bus = Sandbox("MA")  # a CA and a signed directory, for log proof to reach the log
    Path("bus-ca.pem").write_text(cert_to_pem(bus.ca.certificate))
    Path("dir.json").write_bytes(bus.sign())
    before = _state(path)
    args, code = CHECKING_COMMANDS[command]
    if kind in {"missing", "folder"}:
        code = NO_FILE_CODE.get(command, code)
    result = cli(*(arg.replace("{path}", str(path)) for arg in args))
    refused(result, code)
    assert _state(path) == before
    assert not Path("d.json").exists()
    assert not Path("bundle.json").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("ca", "init", "--instance", "MA", "--dir", "ca", "--days", "abc"),
        ("ca", "init", "--instance", "MA", "--dir", "ca", "--days", "1.5"),
        ("ca", "init", "--dir", "ca"),
        ("keys", "rotate", "--keys", "k", "--overlap-hours", "soon"),
        ("token", "issue", "--label", "x", "--days", "nan"),
        (
            "directory",
            "publish",
            "--db",
            "g",
            "--ca-dir",
            "ca",
            "--actor",
            "root",
            "-o",
            "d",
            "--valid-hours",
            "inf",
        ),
    ],
)
def test_a_value_that_is_no_number_or_is_missing_is_a_coded_usage_error(cli, tmp_path, args):
    """What the option's type cannot read, or a missing required option, is one line
    error [usage] (JSON with --json), exit 2, and nothing is made."""
    refused(cli(*args), "usage")
    refused_json(cli(*args, "--json"), "usage")
    assert not (tmp_path / "ca").exists()


@pytest.mark.parametrize("dataset", ["", " ", "!?", "\u202e"])
def test_opendata_pull_of_a_name_no_package_can_have_is_not_published(cli, dataset):
    """A dataset name with nothing CKAN could name a package by: not-published, before any
    request (the portal here is the discard port)."""
    Path("ca.pem").write_text(cert_to_pem(CA_CERTIFICATE), "utf-8")
    args = ("opendata", "pull", dataset, "-o", "pulled", "--ckan-url", "http://127.0.0.1:9",
            "--ca", "ca.pem")  # fmt: skip
    refused(cli(*args), "not-published")


def test_a_ckan_token_file_that_is_no_text_is_unreadable(cli, tmp_path):
    token = tmp_path / "token"
    token.write_bytes(b"\xdf\xff\x00binary")
    args = ("opendata", "pull", "x1", "-o", "pulled", "--ckan-token-file", str(token),
            "--ckan-url", "http://127.0.0.1:9", "--ca", "ca.pem")  # fmt: skip
    refused(cli(*args), "unreadable-file")


def test_audit_show_limit_beyond_what_the_database_counts_is_a_usage_error(cli, people):
    refused(cli("audit", "show", "governance.sqlite", "--limit", "9" * 20), "usage")
