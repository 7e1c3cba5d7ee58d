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
from cryptography.hazmat.primitives.asymmetric import ed25519

from exchange import CertificateAuthority, KeyStore, SubsystemId, cert_to_pem
from governance import AuditSigner
from opendata import Publisher

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ckan-local"
TOKEN_FILE = ROOT / "var" / "ckan" / "token"
# scripts/ckan-local honours CKAN_LOCAL_PORT, so two checkouts can each run their own CKAN.
URL = f"http://127.0.0.1:{os.environ.get('CKAN_LOCAL_PORT', '5000')}"


# The tests' bus CA and governance publishing key: every publication signs its release with
# it, every pull checks the release against RELEASE_CA.certificate.
RELEASE_CA = CertificateAuthority.create("MA")
_REGISTRY = SubsystemId.parse("MA/GOV/DNUM/REGISTRY")
_KEY = ed25519.Ed25519PrivateKey.generate()
RELEASE_SIGNER = AuditSigner(_REGISTRY, _KEY, RELEASE_CA.issue(_REGISTRY, _KEY.public_key()))
CA_CERTIFICATE = RELEASE_CA.certificate


def governance_keys(folder: Path, passphrase: str = "governance key secret") -> dict[str, str]:  # noqa: S107 - a test key
    """A governance key folder certified by RELEASE_CA, and the CA certificate beside it:
    the environment a CLI that publishes and pulls reads them from."""
    store = KeyStore(folder / "governance-keys", passphrase.encode())
    n = store.generate(_REGISTRY)
    _, _, signing, encryption = store.public_keys(n)
    store.store_certificates(
        n, RELEASE_CA.issue(_REGISTRY, signing), RELEASE_CA.issue(_REGISTRY, encryption)
    )
    ca = folder / "bus-ca.pem"
    ca.write_text(cert_to_pem(RELEASE_CA.certificate), "utf-8")
    return {
        "TABADUL_GOVERNANCE_KEYS": str(folder / "governance-keys"),
        "TABADUL_GOVERNANCE_KEY_PASSPHRASE": passphrase,
        "TABADUL_CA_CERT": str(ca),
    }


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
    return Publisher(URL, TOKEN_FILE.read_text("utf-8").strip(), signer=RELEASE_SIGNER)


def csv_file(tmp_path: Path, text: str, name: str = "water.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path
