"""A stand-in for tabadul.console (the API mounts whatever ``console_router`` returns)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from tabadul._services import Services


def console_router(services: Services) -> APIRouter:
    router = APIRouter()

    @router.get("/", response_class=PlainTextResponse)
    def home() -> str:
        return f"console over {services.settings.governance_db}"

    return router
