"""`tabadul ca` and `tabadul keys`: the operator's and the integrator's commands."""

import json
import stat

import pytest
from typer.testing import CliRunner

from tabadul.cli import build_app


@pytest.fixture
def cli(monkeypatch, tmp_path):
    monkeypatch.setenv("TABADUL_CA_PASSPHRASE", "ca secret")
    monkeypatch.setenv("TABADUL_KEY_PASSPHRASE", "key secret")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(build_app(), list(args))

    return run


def test_operator_flow_init_issue_list_revoke(cli, tmp_path):
    """init, issue (generating keys), list and revoke, each with JSON output."""
    made = cli("ca", "init", "--instance", "MA", "--dir", "ca", "--json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["fingerprint"].startswith("sha256:")
    issued = cli("ca", "issue", "--keys", "keys/customs", "--dir", "ca",
                 "--subsystem", "MA/GOV/MEF/CUSTOMS", "--json")  # fmt: skip
    assert issued.exit_code == 0, issued.output
    serial = json.loads(issued.stdout)["signing"]["serial"]
    key_file = tmp_path / "keys" / "customs" / "gen-1" / "signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    listed = json.loads(cli("ca", "list", "--dir", "ca", "--json").stdout)
    assert {c["usage"] for c in listed} == {"signing", "encryption"}
    revoked = cli("ca", "revoke", serial, "--reason", "lost laptop", "--dir", "ca", "--json")
    assert revoked.exit_code == 0, revoked.output
    assert json.loads(revoked.stdout)["revoked"]["reason"] == "lost laptop"


def test_integrator_generates_and_rotates_keys(cli):
    """keys generate, then rotate: a second generation awaiting its certificates."""
    assert cli("ca", "init", "--instance", "MA", "--dir", "ca").exit_code == 0
    made = cli("keys", "generate", "MA/GOV/MEF/TAX", "--keys", "k", "--json")
    assert made.exit_code == 0, made.output
    assert cli("ca", "issue", "--keys", "k", "--dir", "ca").exit_code == 0
    rotated = cli("keys", "rotate", "--keys", "k", "--overlap-hours", "24", "--json")
    assert json.loads(rotated.stdout)["generation"] == 2
    again = cli("keys", "generate", "MA/GOV/MEF/TAX", "--keys", "k")
    assert again.exit_code == 2
    assert "already holds keys" in again.output


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("ca", "list", "--dir", "nowhere"), "no-ca"),
        (("ca", "issue", "--keys", "empty", "--dir", "ca"), "no-keys"),
        (("keys", "generate", "MA/GOV", "--keys", "k"), "invalid-identity"),
        (("ca", "revoke", "abc", "--reason", "x", "--dir", "ca"), "invalid-certificate"),
    ],
)
def test_errors_are_a_code_and_a_message(cli, args, code):
    """Each mistake exits 2 with its code and a sentence, never a traceback."""
    assert cli("ca", "init", "--instance", "MA", "--dir", "ca").exit_code == 0
    result = cli(*args)
    assert result.exit_code == 2
    assert f"[{code}]" in result.output
    assert "Traceback" not in result.output


def test_wrong_and_missing_passphrases(cli, monkeypatch):
    """A wrong passphrase and a missing one (no terminal) are explained."""
    assert cli("ca", "init", "--instance", "MA", "--dir", "ca").exit_code == 0
    monkeypatch.setenv("TABADUL_CA_PASSPHRASE", "wrong")
    assert "wrong passphrase" in cli("ca", "list", "--dir", "ca").output
    monkeypatch.delenv("TABADUL_CA_PASSPHRASE")
    monkeypatch.setattr("tabadul.cli._ca.os.isatty", lambda _fd: False)
    result = cli("ca", "list", "--dir", "ca")
    assert result.exit_code == 2
    assert "[passphrase-required]" in result.output
