"""Every failure of the management API as an RFC 9457 problem document.

A refusal, an invalid request, an unknown route or a failing service answers
``application/problem+json``::

    {"type": "urn:tabadul:problem:<code>", "title": "<HTTP reason>", "status": <status>,
     "detail": "<the error's message>", "code": "<code>", ...the error's own members}

The project's errors (``GovernanceError``, ``OpenDataError``, ``PiiError``, ``ExchangeError``,
``SchemaError``, ``ConnectorError``) keep their stable ``code``; their status comes from the
most specific class whose code is in :data:`STATUS` (so ``unknown-dataset`` is a 404 through
``not-found``); a project error whose family is not listed is a 500 that still names its
code. The extra members are the error's ``as_dict()`` (``action``, ``dataset``,
``findings``...) and, for invalid data, the validation ``report``. Problems the API finds
itself are :class:`tabadul._http.ApiProblem` (limits passed: ``body-too-large``,
``upload-too-large``, ``field-too-long``...), each with its status and members; a body that
is not valid JSON is ``bad-request`` (400), as FastAPI's other unreadable bodies are.

Two messages are never shown: a database failure (``store``, 503: the governance database's
or a managed connector's) answers a fixed text, since
the driver's message may quote SQL and its parameters; anything unexpected is a 500 with code
``internal`` and no detail. Both are logged on the server, never with a request's headers (so
never with a token). A 401 always carries ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors import ConnectorError
from connectors import StoreError as ConnectorStoreError
from exchange import ExchangeError
from governance import GovernanceError, StoreError, TooManyAttempts
from governance.pii import PiiError
from opendata import InvalidData, OpenDataError
from schemas import SchemaError
from tabadul._http import ApiProblem, BodyTooLarge, FieldTooLong, UploadTooLarge

logger = logging.getLogger("tabadul.api")

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE = "urn:tabadul:problem:"
PROBLEM_REF = "#/components/schemas/Problem"
PROJECT_ERRORS = (
    GovernanceError,
    OpenDataError,
    PiiError,
    ExchangeError,
    SchemaError,
    ConnectorError,
)
ProjectError = (
    GovernanceError | OpenDataError | PiiError | ExchangeError | SchemaError | ConnectorError
)

# A code's status; an error whose own code is absent takes its nearest parent's.
STATUS: dict[str, int] = {
    "unauthenticated": 401,
    "too-many-attempts": 429,
    "wrong-role": 403,
    "other-agency": 403,
    "four-eyes": 403,
    "not-found": 404,
    "already-exists": 409,
    "refused": 409,  # the workflow's state says no: illegal-transition, pii-unresolved...
    "missing-file": 409,  # the data store lacks the approved bytes
    "not-published": 409,  # the portal has no package for a dataset recorded as published
    "invalid-input": 422,
    "invalid-data": 422,
    "pii-error": 422,  # the uploaded file cannot be screened (not UTF-8, not CSV)
    "store": 503,
    "key-store": 503,  # the CA folder cannot be opened
    "portal-unavailable": 503,
    "no-release-key": 503,  # the deployment has no governance key to sign releases
    "portal-error": 502,  # the portal refused the token or rejected the data
    # a managed connector's (dead letters)
    "unknown-connector": 404,
    "unknown-dead-letter": 404,
    "dead-letter": 409,  # resolved already, or not resendable
    "transport": 503,  # its broker is unreachable
    "config-invalid": 503,  # its configuration cannot be read
    # problems the API finds itself (tabadul._http), carrying their status
    **{kind.code: kind.status for kind in (BodyTooLarge, UploadTooLarge, FieldTooLong)},
}
STORE_DETAIL = "the governance database is unavailable; the server's log has the details"
CONNECTOR_STORE_DETAIL = "a connector's database is unavailable; the server's log has the details"
_UNAUTHENTICATED_HEADERS = {"WWW-Authenticate": 'Bearer realm="tabadul"'}


class Problem(BaseModel):
    """An RFC 9457 problem document; more members may follow, depending on ``code``."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="urn:tabadul:problem:<code>")
    title: str = Field(description="The HTTP status's reason phrase")
    status: int
    detail: str = Field(description="What went wrong, for people")
    code: str = Field(description="Stable, machine-readable error code")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entry documenting a problem document for each status."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
        }
        for status in statuses
    }


def problem_response(
    status: int, code: str, detail: str, extras: Mapping[str, Any] | None = None
) -> JSONResponse:
    """The problem document as a response (``extras`` never override the standard members)."""
    body = Problem(
        type=PROBLEM_TYPE + code,
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        code=code,
    ).model_dump()
    body = {**dict(extras or {}), **body}
    headers = _UNAUTHENTICATED_HEADERS if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(error: Exception) -> int:
    """The status of a project error: its class's code, else its nearest parent's, else 500."""
    for cls in type(error).__mro__:
        code = vars(cls).get("code")
        if isinstance(code, str) and code in STATUS:
            return STATUS[code]
    return 500


def project_problem(error: ProjectError) -> JSONResponse:
    """The problem document of one of the project's coded errors."""
    if isinstance(error, StoreError):
        logger.error("governance database failure: %s", error.message)
        return problem_response(503, error.code, STORE_DETAIL)
    if isinstance(error, ConnectorStoreError):
        logger.error("connector database failure: %s", error.message)
        return problem_response(503, error.code, CONNECTOR_STORE_DETAIL)
    extras = {k: v for k, v in error.as_dict().items() if k not in {"code", "message"}}
    if isinstance(error, InvalidData):
        extras["report"] = error.report.as_dict()
    response = problem_response(status_of(error), error.code, error.message, extras)
    if isinstance(error, TooManyAttempts):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """pydantic's errors as ``{path, message, type}``, without the offending input."""
    issues = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error.get("loc", ()))
        issues.append({"path": path, "message": str(error.get("msg", "")), "type": error["type"]})
    return issues


def _matches(template: str, path: str) -> bool:
    """Whether ``path`` is an instance of the OpenAPI path ``template`` (``/users/{id}``)."""
    parts, given = template.split("/"), path.split("/")
    return len(parts) == len(given) and all(
        part == value or (part.startswith("{") and part.endswith("}") and value != "")
        for part, value in zip(parts, given, strict=True)
    )


def _allowed_methods(request: Request) -> str | None:
    """Every method the described path of ``request`` answers to, or None for a path the
    description does not have. (Starlette names only the first route matching the path,
    though GET and POST of one path are two routes.)"""
    for template, operations in request.app.openapi()["paths"].items():
        if _matches(template, request.url.path):
            return ", ".join(sorted(method.upper() for method in operations))
    return None


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every failure raised while serving ``app`` with a problem document."""

    async def on_project_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PROJECT_ERRORS)
        return project_problem(exc)

    async def on_api_problem(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return problem_response(exc.status, exc.code, exc.detail, exc.extras)

    async def on_invalid_request(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        if any(error.get("type") == "json_invalid" for error in exc.errors()):
            # FastAPI reports unparsable JSON as a validation error; it is a bad request
            return problem_response(400, "bad-request", "the body is not valid JSON")
        return problem_response(
            422,
            "invalid-request",
            "the request does not match the API's description; see errors",
            {"errors": _validation_errors(exc)},
        )

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {400: "bad-request", 404: "not-found", 405: "method-not-allowed"}.get(
            exc.status_code, "http-error"
        )
        response = problem_response(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})
        allowed = _allowed_methods(request) if exc.status_code == 405 else None
        if allowed:
            response.headers["Allow"] = allowed
        return response

    async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        logger.error("unexpected error in the management API", exc_info=exc)
        return problem_response(500, "internal", "an internal error occurred; see the server's log")

    for kind in PROJECT_ERRORS:
        app.add_exception_handler(kind, on_project_error)
    app.add_exception_handler(ApiProblem, on_api_problem)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
