"""``tabadul api serve``: serves the API over the database it is given until SIGTERM, then
exits cleanly; it trusts no proxy's forwarding headers unless told to; an unreadable token
file is a usage error."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from governance import SIGN_IN_LIMIT
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


def _serve(tmp_path: Path, port: int, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "tabadul.cli", "api", "serve", "--port", str(port),
            "--db", str(tmp_path / "governance.sqlite"), "--data-dir", str(tmp_path / "data"),
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _guess_from_many_addresses(base: str) -> list[int]:
    """SIGN_IN_LIMIT + 1 wrong tokens at the API and the console, each claiming another
    client address in X-Forwarded-For; the statuses of the API's answers."""
    statuses = []
    for attempt in range(SIGN_IN_LIMIT + 1):
        forwarded = {"X-Forwarded-For": f"203.0.113.{attempt + 1}"}
        wrong = {"Authorization": "Bearer tbd_" + "0" * 16 + "." + "A" * 43, **forwarded}
        statuses.append(httpx.get(f"{base}/me", headers=wrong).status_code)
    return statuses


def test_the_served_api_trusts_no_forwarded_address_by_default(tmp_path):
    """Served as installed, a client that sends another X-Forwarded-For with each wrong token
    is still one client: the throttle stops it (429). With TABADUL_TRUSTED_PROXIES naming
    the address the calls come from, that proxy's X-Forwarded-For is believed instead."""
    port = _free_port()
    process = _serve(tmp_path, port)
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: _answers(f"{base}/openapi.json"), timeout=30)
        assert _guess_from_many_addresses(base) == [401] * SIGN_IN_LIMIT + [429]
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)

    port = _free_port()
    process = _serve(tmp_path / "behind-a-proxy", port, TABADUL_TRUSTED_PROXIES="127.0.0.1")
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: _answers(f"{base}/openapi.json"), timeout=30)
        assert _guess_from_many_addresses(base) == [401] * (SIGN_IN_LIMIT + 1)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
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
