"""The application: its OpenAPI description (every failure documented as a problem
document), the console mounted under /console when installed, and / leading to it."""

from __future__ import annotations

import asyncio

import pytest

from tabadul._services import Services
from tabadul.api import _app
from tests.api.conftest import PROBLEM
from tests.support.served import Served

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def test_openapi_documents_every_failure_as_a_problem(api):
    """Each operation documents 500 and, behind a token, 401 and 403, all as problem
    documents; only /directory/latest is public."""
    spec = api().get("/openapi.json").json()
    assert spec["info"]["title"] == "Tabadul management API"
    assert spec["components"]["securitySchemes"]["ApiToken"]["scheme"] == "bearer"
    assert "Problem" in spec["components"]["schemas"]
    public = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            failures = {code: r for code, r in responses.items() if int(code) >= 400}
            assert "500" in failures, (method, path)
            for response in failures.values():
                assert response["content"] == {PROBLEM: {"schema": PROBLEM_REF}}, (method, path)
            if "security" in operation:
                assert {"401", "403"} <= set(failures), (method, path)
            else:
                public.append((method, path))
    assert public == [("get", "/directory/latest")]


def test_docs_are_served_and_root_leads_there_without_a_console(api):
    assert api().get("/docs").status_code == 200
    home = api().get("/", follow_redirects=False)
    assert home.status_code == 307
    assert home.headers["location"] == "/docs"


def test_the_console_is_mounted_when_installed(monkeypatch, settings):
    """With a console package, its router answers under /console and / leads to it."""
    monkeypatch.setattr(_app, "CONSOLE_MODULE", "tests.api.fake_console")
    services = Services.open(settings)
    served = Served(_app.create_app(services))
    try:
        client = served.client()
        home = client.get("/", follow_redirects=False)
        assert home.headers["location"] == "/console/"
        page = client.get("/console/")
        assert page.text == f"console over {settings.governance_db}"
    finally:
        served.close()
        services.close()


@pytest.mark.parametrize("module", ["tests.api.no_such_console", "tests.api.conftest"])
def test_without_a_console_router_nothing_is_mounted(monkeypatch, settings, module):
    """A missing console package, or one without console_router, mounts nothing."""
    monkeypatch.setattr(_app, "CONSOLE_MODULE", module)
    services = Services.open(settings)
    try:
        app = _app.create_app(services)
        assert not [r for r in app.routes if getattr(r, "path", "").startswith("/console")]
    finally:
        services.close()


def test_an_app_from_settings_closes_its_services_on_shutdown(settings, monkeypatch):
    """create_app_from_settings opens the database at once and closes it at shutdown."""
    app = _app.create_app_from_settings(settings, console=False)
    services = app.state.services
    assert services.workflow.audit.verify().count == 0
    closed = []
    close = services.close
    monkeypatch.setattr(services, "close", lambda: closed.append(close()))

    async def run_lifespan() -> None:
        async with app.router.lifespan_context(app):
            assert not closed

    asyncio.run(run_lifespan())
    assert closed == [None]


def test_the_installed_console_is_mounted(settings):
    """With tabadul.console installed (the default), / leads to it and it answers there."""
    services = Services.open(settings)
    served = Served(_app.create_app(services))
    try:
        client = served.client()
        assert client.get("/", follow_redirects=False).headers["location"] == "/console/"
        page = client.get("/console/", follow_redirects=False)
        assert page.status_code not in {404, 500}
    finally:
        served.close()
        services.close()
