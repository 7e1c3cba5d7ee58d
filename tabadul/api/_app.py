"""The management API application: the routers, problem details for every failure, the
OpenAPI description, and the web console under ``/console`` when it is installed."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import RedirectResponse

from tabadul._http import guard, text_limit
from tabadul._services import Services, Settings
from tabadul._uploads import remove_stale_uploads
from tabadul.api import (
    _routes_audit,
    _routes_datasets,
    _routes_dead_letters,
    _routes_registry,
    _routes_subjects,
    _routes_traffic,
    _routes_users,
)
from tabadul.api._models import strict_query
from tabadul.api._problems import Problem, install_problem_handlers, problem_responses

TITLE = "Tabadul management API"
VERSION = "1"
DESCRIPTION = """\
The bus registry and its signed directory, people and API tokens, the dataset inventory and
its four-eyes publication workflow, the audit log and the exchange traffic.

Every endpoint but `GET /directory/latest` needs `Authorization: Bearer tbd_<id>.<secret>`
(an API token: `POST /tokens`, or `tabadul token issue`). Every failure is an RFC 9457
problem document (`application/problem+json`) with a stable `code`.
"""
CONSOLE_MODULE = "tabadul.console"


def _console(services: Services) -> APIRouter | None:
    """The console's router when the console package is installed (it is optional)."""
    if importlib.util.find_spec(CONSOLE_MODULE) is None:
        return None
    factory = getattr(importlib.import_module(CONSOLE_MODULE), "console_router", None)
    if factory is None:
        return None
    router = factory(services)
    if not isinstance(router, APIRouter):
        raise TypeError(f"{CONSOLE_MODULE}.console_router returned {type(router).__name__}")
    return router


def _install_openapi(app: FastAPI) -> None:
    """Generate the description once, with the problem document among its schemas (every
    route refers to it for its failures)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                Problem.model_json_schema()
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def create_app(services: Services, *, console: bool = True) -> FastAPI:
    """The management API over ``services`` (which the caller opens and closes), with the web
    console under ``/console`` when ``console`` is true and the console is installed; ``/``
    leads to the console, or else to the API's documentation."""
    return _build(services, console=console, lifespan=None)


def create_app_from_settings(settings: Settings, *, console: bool = True) -> FastAPI:
    """The management API over the services of ``settings``, opened now (so a database that
    cannot be opened fails here, with :class:`~governance.StoreError`) and closed when the
    server shuts the application down. Upload folders a killed server left are removed."""
    services = Services.open(settings)
    remove_stale_uploads(settings)  # of a server killed in the middle of them

    @asynccontextmanager
    async def closing(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            services.close()

    return _build(services, console=console, lifespan=closing)


def _build(
    services: Services,
    *,
    console: bool,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None,
) -> FastAPI:
    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        # any endpoint may refuse its query string (see strict_query) or fail
        responses=problem_responses(422, 500),
        lifespan=lifespan,
    )
    app.state.services = services
    guard(app, services.settings)  # body limit, forwarding headers from trusted proxies only
    install_problem_handlers(app)
    checks = [Depends(strict_query), Depends(text_limit(services.settings.max_field_chars))]
    for router in (
        _routes_users.router,
        _routes_datasets.router,
        _routes_registry.router,
        _routes_registry.public,
        _routes_audit.router,
        _routes_traffic.router,
        _routes_subjects.router,
        _routes_dead_letters.router,
    ):
        app.include_router(router, dependencies=checks)
    pages = _console(services) if console else None
    if pages is not None:
        app.include_router(pages, prefix="/console")
    home = "/console/" if pages is not None else "/docs"

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(home)

    _install_openapi(app)
    return app
