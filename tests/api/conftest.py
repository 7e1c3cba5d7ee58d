"""The management API served for real: uvicorn on 127.0.0.1 (a free port) in a thread, over a
fresh SQLite governance database per test, with one API token per person.

Serving is tests/support/served.py's, as for the connector's API and the console. The CKAN
fixtures are re-exported for the publishing tests, the PostgreSQL one for the smoke test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from exchange import CAStore
from tabadul._services import Services, Settings
from tabadul.api import create_app
from tests.governance.conftest import PEOPLE, pg_backend
from tests.opendata.conftest import URL, ckan, ckan_local
from tests.support.ckan import RELEASE_SIGNER
from tests.support.served import Served

__all__ = ["ckan", "ckan_local", "pg_backend"]

CA_PASSPHRASE = "operator ca passphrase"
PROBLEM = "application/problem+json"
CLOSED_URL = "http://127.0.0.1:9"  # the discard port: nothing listens there
TABLE_SCHEMA = {"fields": [{"name": "code", "type": "string"}, {"name": "rate"}]}


class Api:
    """HTTP clients of the served API: ``api("amina")`` sends amina's token, ``api()`` none."""

    def __init__(self, served: Served, services: Services, tokens: dict[str, str]) -> None:
        self.served = served
        self.services = services
        self.tokens = tokens
        self._clients: dict[str | None, httpx.Client] = {}

    def __call__(self, user: str | None = None) -> httpx.Client:
        if user not in self._clients:
            headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
            self._clients[user] = self.served.client(headers=headers)
        return self._clients[user]


def register_people(services: Services, people: dict[str, tuple[str, list[str]]]) -> None:
    """Register ``people`` (id: (agency, roles)); the first is the bootstrap operator."""
    for index, (user_id, (agency, roles)) in enumerate(people.items()):
        services.workflow.register_user(
            None if index == 0 else "root",
            user_id,
            name=user_id.title(),
            agency=agency,
            roles=roles,
        )


def issue_tokens(services: Services, people: Iterable[str]) -> dict[str, str]:
    """One API token per person."""
    return {u: services.tokens.issue(u, u, label="tests").token for u in people}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings over tmp_path; the portal is the local CKAN (only publishing tests reach it)."""
    return Settings(
        governance_db=str(tmp_path / "governance.sqlite"),
        data_dir=tmp_path / "data",
        ckan_url=URL,
        ckan_token="",
        metrics_urls=(),
    )


@pytest.fixture
def make_api(settings: Settings) -> Iterator[Callable[..., Api]]:
    """Serve the API over a fresh database (one per call) with PEOPLE registered; keyword
    arguments change the settings. Everything is closed after the test."""
    opened: list[tuple[Api, Services]] = []

    def make(**changes: Any) -> Api:
        fresh = Path(settings.governance_db).with_suffix(f".{len(opened)}.sqlite")
        chosen = dataclasses.replace(settings, governance_db=str(fresh), **changes)
        services = Services.open(chosen)
        services.opendata.portal.signer = RELEASE_SIGNER  # the deployment's publishing key
        register_people(services, PEOPLE)
        api = Api(Served(create_app(services, console=False)), services, {})
        api.tokens.update(issue_tokens(services, list(PEOPLE)))
        opened.append((api, services))
        return api

    yield make
    for api, services in opened:
        api.served.close()
        services.close()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()


@pytest.fixture
def ca_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CA folder for instance MA, its passphrase in TABADUL_CA_PASSPHRASE."""
    folder = tmp_path / "ca"
    CAStore.init(folder, "MA", CA_PASSPHRASE.encode())
    monkeypatch.setenv("TABADUL_CA_PASSPHRASE", CA_PASSPHRASE)
    return folder


def is_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert ``response`` is the problem document of ``status`` and ``code``; return it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:tabadul:problem:{code}"
    assert body["title"]
    assert body["detail"]
    return body


def dataset_body(dataset_id: str, **changes: Any) -> dict[str, Any]:
    """A dataset registration body (the customs tariff of the governance tests)."""
    return {
        "dataset_id": dataset_id,
        "title": {"ar": "التعريفة الجمركية", "fr": "Tarif douanier", "en": "Customs tariff"},
        "description": {"fr": "Droits d'importation par position tarifaire"},
        "source": "exports/tariffs.csv",
        "table_schema": TABLE_SCHEMA,
        "licence": "ODbL-1.0",
        "update_frequency": "yearly",
        "tags": ["customs", "tariff"],
        **changes,
    }


CLASSIFIED_PUBLIC = {
    "level": "PUBLIC",
    "personal_data": False,
    "legal_basis": "Loi 31-13 sur le droit d'accès à l'information",
    "justification": "published tariff, no personal data",
}
