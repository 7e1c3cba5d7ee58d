"""Console fixtures: a governance database with the people of one small ministry (and one of
another), their API tokens, a registered dataset, and the console mounted under /console
of a bare FastAPI app (the management API mounts it the same way), served by uvicorn.

Each test talks to a real uvicorn server on a free port (tests/support/served.py) with plain
httpx clients, one per person (each its own cookie jar, like a browser).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from connectors._metrics import Metrics
from governance import User
from tabadul._services import Services, Settings
from tabadul.console import console_router
from tests.support.ckan import RELEASE_SIGNER
from tests.support.metrics import MetricsSource
from tests.support.served import Served

SCHEMA = {
    "fields": [
        {"name": "region", "type": "string", "constraints": {"required": True}},
        {"name": "annee", "type": "integer"},
        {"name": "naissances", "type": "integer"},
        {"name": "source", "type": "string"},
    ]
}
CLEAN_CSV = (
    "region,annee,naissances,source\n"
    "Rabat-Salé-Kénitra,2025,61234,HCP\n"
    "Souss-Massa,2025,40321,HCP\n"
)
# someone pasted phone numbers in the source column: a PII finding "source:phone"
PII_CSV = (
    "region,annee,naissances,source\n"
    "Rabat-Salé-Kénitra,2025,61234,0612345678\n"
    "Souss-Massa,2025,40321,0698765432\n"
)
BAD_CSV = "region,annee,naissances,source\nRabat,deux-mille,12,HCP\n"
CLOSED_PORT_URL = "http://127.0.0.1:9"  # nothing listens on the discard port


@dataclass
class World:
    """The people (and their tokens) and the dataset every console test starts from."""

    services: Services
    agency: str
    dataset_id: str
    tokens: dict[str, str]
    users: dict[str, User]
    tmp: Path

    def csv(self, text: str, name: str = "data.csv") -> Path:
        path = self.tmp / name
        path.write_text(text, "utf-8")
        return path


def make_world(
    tmp_path: Path, *, ckan_url: str, ckan_token: str = "", agency: str = "HCP"
) -> World:
    settings = Settings(
        governance_db=str(tmp_path / "governance.sqlite"),
        data_dir=tmp_path / "data",
        ckan_url=ckan_url,
        ckan_token=ckan_token,
    )
    services = Services.open(settings)
    services.opendata.portal.signer = RELEASE_SIGNER  # the deployment's publishing key
    flow = services.workflow
    users = {
        "op": flow.register_user(
            None, "op", name="Omar Operator", agency="DNUM", roles=["operator"]
        )
    }
    people = {
        # a steward who is also an approver: four eyes, not the role, stops her approving
        "amina": ("Amina Alaoui", agency, ["steward", "approver"]),
        "karim": ("Karim Bennani", agency, ["approver"]),
        "youssef": ("Youssef Idrissi", "DOUANE", ["steward"]),
        "audrey": ("Audrey Auditor", "COUR", ["auditor"]),
    }
    for user_id, (name, where, roles) in people.items():
        users[user_id] = flow.register_user("op", user_id, name=name, agency=where, roles=roles)
    dataset_id = f"naissances-{uuid.uuid4().hex[:8]}"
    flow.register_dataset(
        "amina",
        dataset_id,
        title={
            "ar": "الولادات حسب الجهة",
            "fr": "Naissances par région",
            "en": "Births by region",
        },
        description={
            "ar": "عدد الولادات المسجلة في كل جهة",
            "fr": "Nombre de naissances enregistrées par région",
            "en": "Registered births per region",
        },
        source="etat-civil/naissances.csv",
        table_schema=SCHEMA,
        licence="cc-by",
        update_frequency="yearly",
        tags=["population"],
    )
    tokens = {
        user_id: services.tokens.issue("op", user_id, label="console tests").token
        for user_id in users
    }
    return World(services, agency, dataset_id, tokens, users, tmp_path)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = make_world(tmp_path, ckan_url=CLOSED_PORT_URL)
    yield built
    built.services.close()


def console_app(services: Services) -> FastAPI:
    app = FastAPI()
    app.include_router(console_router(services), prefix="/console")
    return app


@contextmanager
def serving(services: Services) -> Iterator[Served]:
    served = Served(console_app(services))
    try:
        yield served
    finally:
        served.close()


@pytest.fixture
def server(world: World) -> Iterator[Served]:
    with serving(world.services) as served:
        yield served


@pytest.fixture
def client(server: Served) -> httpx.Client:
    """A browser-like client: its own cookies, following redirects."""
    return server.client(follow_redirects=True)


def sign_in(client: httpx.Client, token: str) -> None:
    answer = client.post("/console/signin", data={"token": token}, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def csrf_of(client: httpx.Client, dataset_id: str) -> str:
    """The CSRF token the dataset's page puts in its forms."""
    html = client.get(f"/console/datasets/{dataset_id}").text
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


class MetricsServer(MetricsSource):
    """A connector's /metrics and /health over real HTTP, from the connector's own Metrics."""

    def __init__(self, subsystem: str) -> None:
        self.metrics = Metrics()
        super().__init__(self.metrics.exposition, {"status": "ok", "subsystem": subsystem})
