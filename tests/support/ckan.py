"""Fixtures for the real CKAN 2.11.6 started by scripts/ckan-local, driven through ckanapi
(shared by every test folder through tests/conftest.py).

They fail loudly, never skip, when CKAN cannot be brought up.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import ckanapi
import httpx
import pytest

from opendata import Publisher

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ckan-local"
TOKEN_FILE = ROOT / "var" / "ckan" / "token"
# scripts/ckan-local honours CKAN_LOCAL_PORT, so two checkouts can each run their own CKAN.
URL = f"http://127.0.0.1:{os.environ.get('CKAN_LOCAL_PORT', '5000')}"


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


@pytest.fixture
def dataset(ckan):
    """A fresh dataset of a fresh agency; its package and organisation are purged afterwards."""
    tag = uuid.uuid4().hex[:10]
    ds = {
        "dataset_id": f"MoH.Water-{tag}",
        "owner_agency": f"MoH-{tag}",
        "steward": "steward-1",
        "title": {"ar": "جودة المياه", "fr": f"Qualité de l'eau {tag}", "en": "Water quality"},
        "description": {"fr": "Mesures", "en": "Measures"},
        "licence": "cc-by",
        "tags": ["water"],
        "classification": "public",
    }
    yield ds
    for action, ident in (
        ("dataset_purge", f"moh-water-{tag}"),
        ("organization_purge", f"moh-{tag}"),
    ):
        with contextlib.suppress(ckanapi.NotFound):
            ckan.call_action(action, {"id": ident})


@pytest.fixture
def publisher(ckan):
    return Publisher(URL, TOKEN_FILE.read_text("utf-8").strip())


def csv_file(tmp_path: Path, text: str, name: str = "water.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path
