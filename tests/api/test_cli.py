"""``tabadul api serve``: serves the API over the database it is given until SIGTERM, then
exits cleanly; an unreadable token file is a usage error."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.served import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_answers_then_stops_on_sigterm(tmp_path):
    port = _free_port()
    db = tmp_path / "governance.sqlite"
    process = subprocess.Popen(
        [
            sys.executable, "-m", "tabadul.cli", "api", "serve", "--port", str(port),
            "--db", str(db), "--data-dir", str(tmp_path / "data"), "--no-console",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: _answers(f"{base}/openapi.json"), timeout=30)
        assert httpx.get(f"{base}/me").status_code == 401
        assert db.is_file()  # opened and migrated
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    # uvicorn shuts the application down (closing the database), then ends by the signal
    assert process.returncode in {0, -signal.SIGTERM}, err
    assert "Application shutdown complete" in err
    assert "serving" in out
    assert "Traceback" not in err


def test_an_unreadable_token_file_is_a_usage_error(tmp_path):
    result = subprocess.run(
        [
            sys.executable, "-m", "tabadul.cli", "api", "serve",
            "--db", str(tmp_path / "g.sqlite"), "--ckan-token-file", str(tmp_path / "missing"),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "error [unreadable-file]" in result.stderr
    assert not (tmp_path / "g.sqlite").exists()
