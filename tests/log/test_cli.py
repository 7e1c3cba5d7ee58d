"""``tabadul log verify``: exit 0 intact, 1 tampered (with the position), 2 unreadable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from typer.testing import CliRunner

from exchange.log import MessageLog
from tabadul.cli._log import log_app
from tests.log.conftest import Backend, entry

app = typer.Typer()
app.add_typer(log_app, name="log")
runner = CliRunner()


@pytest.fixture
def filled(backend: Backend, tmp_path: Path) -> tuple[Backend, Path]:
    key = Ed25519PrivateKey.generate()
    log = MessageLog(backend.open(), log_id="douane", signing_key=key)
    for start in range(0, 12, 4):
        log.append_batch([entry(i) for i in range(start, start + 4)])
    log.close()
    pem = tmp_path / "log.pub"
    pem.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return backend, pem


def _args(backend: Backend, *extra: str) -> list[str]:
    return ["log", "verify", backend.location, "--name", backend.name, *extra]


def test_intact_log_exits_0(filled):
    """An intact log prints its size and root and exits 0."""
    backend, pem = filled
    result = runner.invoke(app, _args(backend, "--public-key", str(pem)))
    assert result.exit_code == 0, result.output
    assert "intact" in result.output
    assert "12 records" in result.output


def test_intact_log_json(filled):
    """--json prints the report as JSON."""
    backend, pem = filled
    result = runner.invoke(app, _args(backend, "--json", "--public-key", str(pem)))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert data["size"] == 12
    assert data["signatures_checked"] is True
    assert len(data["root"]) == 64


def test_tampered_log_exits_1(filled):
    """A tampered log exits 1 with the first bad position and the reason."""
    backend, pem = filled
    backend.sql("UPDATE {s}.records SET message_type = 'x' WHERE seq = 7", ())
    result = runner.invoke(app, _args(backend, "--json", "--public-key", str(pem)))
    assert result.exit_code == 1, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "log-tampered"
    assert error["position"] == 7
    text = runner.invoke(app, _args(backend))
    assert text.exit_code == 1
    assert "record 7" in text.output


def test_wrong_key_exits_1(filled, tmp_path):
    """Heads signed by another key make the log fail verification."""
    backend, _ = filled
    other = tmp_path / "other.pub"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    result = runner.invoke(app, _args(backend, "--public-key", str(other)))
    assert result.exit_code == 1
    assert "bad signature" in result.output


def test_missing_sqlite_file_exits_2(tmp_path):
    """A missing log file exits 2 with a message, not a traceback."""
    result = runner.invoke(app, ["log", "verify", str(tmp_path / "nope.sqlite")])
    assert result.exit_code == 2
    assert "no message log" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "nope.sqlite").exists()


@pytest.mark.postgres
def test_missing_postgres_log_exits_2():
    """A PostgreSQL database without that log exits 2 with a message."""
    url = "postgresql://postgres@127.0.0.1:5432/test"
    result = runner.invoke(app, ["log", "verify", url, "--name", "no_such_log_here", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "log"


def test_unreachable_postgres_exits_2():
    """An unreachable server exits 2 with a message."""
    result = runner.invoke(app, ["log", "verify", "postgresql://postgres@127.0.0.1:1/test"])
    assert result.exit_code == 2
    assert "cannot open" in result.output


def test_a_log_spanning_a_key_rotation_verifies_with_both_keys(backend, tmp_path):
    """Heads signed by generation 1 and then generation 2: with one key the other's heads
    are bad signatures (exit 1); with both keys given, each head checks out (exit 0)."""
    keys = [Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()]
    store = backend.open()
    for generation, key in enumerate(keys):
        log = MessageLog(store, log_id="douane", signing_key=key)
        log.append_batch([entry(i) for i in range(generation * 4, generation * 4 + 4)])
        log.close()
        store = backend.open()
    store.close()
    pems = []
    for n, key in enumerate(keys):
        pem = tmp_path / f"gen-{n + 1}.pub"
        pem.write_bytes(
            key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        )
        pems.append(str(pem))
    one = runner.invoke(app, _args(backend, "--json", "--public-key", pems[0]))
    assert one.exit_code == 1, one.output
    assert "bad signature" in json.loads(one.stdout)["error"]["message"]
    both = runner.invoke(
        app, _args(backend, "--json", "--public-key", pems[0], "--public-key", pems[1])
    )
    assert both.exit_code == 0, both.output
    assert json.loads(both.stdout)["size"] == 8
