"""The API over the real PostgreSQL (a fresh schema, dropped afterwards): people, tokens, a
dataset through classification and submission, the audit log verified."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tabadul.api import create_app_from_settings
from tests.api.conftest import CLASSIFIED_PUBLIC, Api, dataset_body, issue_tokens
from tests.governance.conftest import PG_URL
from tests.support.served import Served


@pytest.mark.postgres
def test_smoke_on_postgresql(pg_backend, settings):
    chosen = dataclasses.replace(
        settings, governance_db=PG_URL, governance_schema=pg_backend.schema
    )
    app = create_app_from_settings(chosen, console=False)
    services = app.state.services
    services.workflow.register_user(None, "root", name="Root", agency="DNUM", roles=["operator"])
    api = Api(Served(app), services, issue_tokens(services, ["root"]))
    try:
        for user_id, roles in (("amina", ["steward"]), ("audrey", ["auditor"])):
            created = api("root").post(
                "/users",
                json={"user_id": user_id, "name": user_id, "agency": "DOUANE", "roles": roles},
            )
            assert created.status_code == 201, created.text
            token = api("root").post("/tokens", json={"label": "pg", "user_id": user_id})
            api.tokens[user_id] = token.json()["token"]
        assert api("amina").post("/datasets", json=dataset_body("tariffs")).status_code == 201
        assert api("amina").post("/datasets/tariffs/classify", json=CLASSIFIED_PUBLIC).is_success
        submitted = api("amina").post(
            "/datasets/tariffs/submit",
            files={"file": ("t.csv", b"code,rate\n0101,2.5\n", "text/csv")},
        )
        assert submitted.status_code == 201, submitted.text
        assert api("audrey").get("/datasets/tariffs").json()["state"] == "IN_REVIEW"
        verified = api("audrey").get("/audit/verify").json()
        assert verified["intact"] is True
        assert verified["count"] == 9  # 3 people, 3 tokens, register, classify, submit
        tables = pg_backend.sql(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
            pg_backend.schema,
        )
        assert tables[0][0] > 0  # the governance tables live in the test's schema
    finally:
        api.served.close()
        asyncio.run(_shut_down(app))


async def _shut_down(app) -> None:
    """Run the application's lifespan to its end: it closes its services."""
    async with app.router.lifespan_context(app):
        pass
