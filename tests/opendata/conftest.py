"""Fixtures for the real CKAN 2.11.6 started by scripts/ckan-local, driven through ckanapi.

They fail loudly, never skip, when CKAN cannot be brought up.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import ckanapi
import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ckan-local"
TOKEN_FILE = ROOT / "var" / "ckan" / "token"
URL = "http://127.0.0.1:5000"


def run_script() -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"scripts/ckan-local failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def _ckan_answers() -> bool:
    try:
        return httpx.get(f"{URL}/api/3/action/status_show", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def ckan_local() -> Iterator[subprocess.CompletedProcess[str]]:
    """CKAN up for the session; stopped afterwards if it was not running before."""
    was_running = _ckan_answers()
    result = run_script()
    yield result
    if not was_running:
        subprocess.run(
            ["bash", str(SCRIPT), "--stop"], cwd=ROOT, capture_output=True, timeout=120, check=False
        )


@pytest.fixture
def ckan(ckan_local: subprocess.CompletedProcess[str]) -> ckanapi.RemoteCKAN:
    token = TOKEN_FILE.read_text("utf-8").strip()
    assert TOKEN_FILE.stat().st_mode & 0o077 == 0, "the token file must be private (0600)"
    with ckanapi.RemoteCKAN(URL, apikey=token, user_agent="tabadul-tests") as remote:
        yield remote
