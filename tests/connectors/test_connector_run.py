"""`tabadul connector run` as an agency runs it: a process with its configuration, on the real
RabbitMQ, answering its local API, stopping cleanly on SIGTERM."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import httpx

from bench._children import PASSPHRASE
from bench.bus import _cleanup, _write_bus
from schemas import default_registry

TOKEN = "a-local-api-token-of-32-chars-xx"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_serves_the_api_and_stops_on_sigterm(tmp_path):
    """The connector starts from its file, reports healthy, publishes an event through its
    API, and exits 0 on SIGTERM."""
    instance = "R" + uuid.uuid4().hex[:8].upper()
    configs = _write_bus(tmp_path, instance)
    port = _free_port()
    with configs["customs"].open("a", encoding="utf-8") as config:
        config.write(f"[api]\nport = {port}\n")
    output = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tabadul.cli",
            "connector",
            "run",
            "--config",
            str(configs["customs"]),
        ],
        env={**os.environ, "TABADUL_KEY_PASSPHRASE": PASSPHRASE, "TABADUL_API_TOKEN": TOKEN},
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        health = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert health is not None, (tmp_path / "run.log").read_text()
        assert health.status_code == 200, health.text
        assert health.json()["broker"] == "ok"
        declaration = default_registry().latest("customs.declaration-lodged").examples[0]
        sent = httpx.post(
            f"{base}/events",
            json={"type": "customs.declaration-lodged", "payload": declaration},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert sent.status_code == 202, sent.text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        output.close()
        _cleanup(instance)


def test_run_refuses_to_start_without_a_token(tmp_path):
    """A shipped-style configuration without $TABADUL_API_TOKEN does not serve an open API:
    `connector run` exits non-zero with a coded one-line error, before connecting."""
    instance = "R" + uuid.uuid4().hex[:8].upper()
    configs = _write_bus(tmp_path, instance)
    env = {k: v for k, v in os.environ.items() if k != "TABADUL_API_TOKEN"}
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tabadul.cli",
                "connector",
                "run",
                "--config",
                str(configs["customs"]),
            ],
            env={**env, "TABADUL_KEY_PASSPHRASE": PASSPHRASE},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        _cleanup(instance)
    assert done.returncode != 0
    assert "TABADUL_API_TOKEN" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_run_refuses_a_missing_payment_model_with_its_code(tmp_path):
    """`--payment-model DIR` without a model there: exit 2, `model-missing`, nothing made."""
    instance = "R" + uuid.uuid4().hex[:8].upper()
    configs = _write_bus(tmp_path, instance)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tabadul.cli", "connector", "run", "--config",
             str(configs["customs"]), "--payment-model", str(tmp_path / "none")],
            env={**os.environ, "TABADUL_KEY_PASSPHRASE": PASSPHRASE, "TABADUL_API_TOKEN": TOKEN},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        _cleanup(instance)
    assert done.returncode == 2, done.stderr
    assert "model-missing" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "none").exists()
