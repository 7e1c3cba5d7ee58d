"""``tabadul api serve``: serves the API over the database it is given until SIGTERM, then
exits cleanly; it trusts no proxy's forwarding headers unless told to; an unreadable token
file is a usage error."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from governance import SIGN_IN_LIMIT
from tabadul._services import Services, Settings
from tests.api.conftest import CLASSIFIED_PUBLIC, dataset_body, register_people
from tests.support.served import wait_until
from tests.support.uploads import connect, file_head, request_head

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


def test_an_upload_of_a_killed_server_is_removed_by_the_next(tmp_path):
    """A server killed (SIGKILL) in the middle of an upload cannot remove its folder; the
    next server started over the same upload directory removes it once it is stale (an
    hour untouched), and leaves a recent one alone."""
    db, uploads = tmp_path / "governance.sqlite", tmp_path / "uploads"
    services = Services.open(Settings(governance_db=str(db), data_dir=tmp_path / "data"))
    register_people(services, {"root": ("DNUM", ["operator"]), "amina": ("DOUANE", ["steward"])})
    services.workflow.register_dataset("amina", **dataset_body("tariffs"))
    services.workflow.classify("amina", "tariffs", **CLASSIFIED_PUBLIC)
    token = services.tokens.issue("amina", "amina", label="tests").token
    services.close()
    env = {"TABADUL_UPLOAD_DIR": str(uploads)}

    port = _free_port()
    process = _serve(tmp_path, port, **env)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _answers(f"{base}/openapi.json"), timeout=30)
        sock = connect(base)
        start = file_head("file", "t.csv") + b"code,rate\n"
        head = request_head(
            base, "/datasets/tariffs/submit", length=10_000_000,
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        sock.sendall(head + start + b"0101,2.5\n" * 1000)
        assert wait_until(lambda: list(uploads.glob("tabadul-upload-*/t.csv")), timeout=30)
    finally:
        process.kill()
        process.communicate(timeout=30)
    sock.close()
    (left,) = uploads.glob("tabadul-upload-*")
    recent = uploads / "tabadul-upload-recent"
    recent.mkdir()
    hours_ago = time.time() - 2 * 3600
    for path in (left, *left.iterdir()):
        os.utime(path, (hours_ago, hours_ago))

    port = _free_port()
    process = _serve(tmp_path, port, **env)
    try:
        assert wait_until(lambda: _answers(f"http://127.0.0.1:{port}/openapi.json"), timeout=30)
        assert sorted(p.name for p in uploads.iterdir()) == ["tabadul-upload-recent"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


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
