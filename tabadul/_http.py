"""What the management API and the console share at the HTTP level: the problems they find
themselves, and the limits every request is held to.

The problems, drawn as a tree (each with its status and a stable code)::

    ApiProblem          any status, any code (ca-not-configured 503, no-directory 404,
    │                   bad-request 400...)
    ├── BodyTooLarge    413 body-too-large    the request's body passed its limit
    ├── UploadTooLarge  413 upload-too-large  an uploaded file passed TABADUL_MAX_UPLOAD_BYTES
    └── FieldTooLong    422 field-too-long    a text of the body or the query string passed
                                              TABADUL_MAX_FIELD_CHARS (``errors`` say where)

An :class:`ApiProblem` is a Starlette ``HTTPException``, so that it crosses FastAPI's reading
of a request body (where a body limit is found passed) untouched; the API answers it as a
problem document, the console as a page.

The limits (:func:`guard` installs them on an application; the console's text check also
goes on its own router):

- every request body at most ``max_body_bytes`` (1 MiB), refused as soon as that is passed,
  or at once when its declared length says so (:class:`BodyLimit`); an upload route raises
  its own request's limit (:func:`allow_body`);
- every text of a JSON or form body, member names included, however deep, and every query
  parameter at most ``max_field_chars`` characters (:func:`text_limit`);
- forwarding headers believed only from ``trusted_proxies``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, params
from fastapi.routing import APIRoute
from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from tabadul._services import Settings

_BUDGET = "tabadul.body_budget"  # the scope key of a request's BodyBudget
_MAX_ERRORS = 20  # texts named in one field-too-long


class ApiProblem(HTTPException):
    """A problem found by the API or the console themselves (not an error of the packages
    below them): an HTTP status, a stable ``code``, a message for people (``detail``) and
    the problem document's extra members (``extras``)."""

    status: int
    code: str

    def __init__(self, status: int, code: str, detail: str, **extras: Any) -> None:
        super().__init__(status_code=status, detail=detail)
        self.status = status
        self.code = code
        self.extras = extras


class _Limited(ApiProblem):
    """A limit passed: the subclass's ``code`` and ``status`` name it, ``limit`` is its
    value (a member of the problem document)."""

    def __init__(self, limit: int, detail: str, **extras: Any) -> None:
        super().__init__(type(self).status, type(self).code, detail, limit=limit, **extras)


class BodyTooLarge(_Limited):
    code = "body-too-large"
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(limit, f"the request's body is larger than {limit} bytes")


class UploadTooLarge(_Limited):
    code = "upload-too-large"
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(limit, f"the uploaded file is larger than {limit} bytes")


class FieldTooLong(_Limited):
    code = "field-too-long"
    status = 422

    def __init__(self, limit: int, paths: list[str]) -> None:
        shown = paths[:_MAX_ERRORS]  # a body of many long texts makes no longer an answer
        errors = [
            {"path": path, "message": f"longer than {limit} characters", "type": "too-long"}
            for path in shown
        ]
        listed = ", ".join(shown) + (f" and {len(paths) - len(shown)} more" * (paths != shown))
        super().__init__(
            limit, f"{listed}: longer than {limit} characters; see errors", errors=errors
        )


# ---- the body limit ----------------------------------------------------------------------


@dataclass(slots=True)
class BodyBudget:
    """How many bytes of body one request may still send: ``limit`` in all, ``received`` so
    far, ``declared`` by its Content-Length (None: not declared, e.g. chunked)."""

    limit: int
    declared: int | None
    received: int = 0
    too_large: ApiProblem | None = None  # what to answer instead of BodyTooLarge

    def take(self, size: int) -> None:
        """Count ``size`` more bytes; :class:`BodyTooLarge` (or the route's own problem)
        once past the limit (or when the declared length already is)."""
        self.received += size
        if self.received > self.limit or (self.declared or 0) > self.limit:
            raise self.too_large or BodyTooLarge(self.limit)


class BodyLimit:
    """ASGI middleware: a request's body is refused with :class:`BodyTooLarge` as soon as
    it passes ``max_bytes`` (when its declared length does: at the first read, before any
    of it is taken). What reads the body (FastAPI, or an upload) meets the error there, so
    it is answered as every other problem; a body never read is never refused."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        budget = BodyBudget(self.max_bytes, int(declared) if declared is not None else None)
        scope[_BUDGET] = budget

        async def limited() -> Message:
            budget.take(0)
            message = await receive()
            if message["type"] == "http.request":
                budget.take(len(message.get("body", b"")))
            return message

        await self.app(scope, limited, send)


def allow_body(scope: Scope, max_bytes: int, too_large: ApiProblem | None = None) -> None:
    """Let this request's body be ``max_bytes`` long (an upload route, before reading it),
    answering ``too_large`` past it: a chunk of the body may pass that limit before the
    route has seen the file in it pass its own, and the caller is told of the file."""
    budget = scope.get(_BUDGET)
    if isinstance(budget, BodyBudget):
        budget.limit = max_bytes
        budget.too_large = too_large


# ---- the text limit ----------------------------------------------------------------------


def text_limit(max_chars: int) -> Callable[[Request], Awaitable[None]]:
    """A dependency refusing, with :class:`FieldTooLong`, a request any text of which is
    longer than ``max_chars`` characters: query parameters (names and values), and the JSON
    or form body the route reads (member names and values, however deep). It runs after
    FastAPI has read and parsed the body (which it then hands back from its cache), before
    the body is validated; an upload, read by its route, checks its own texts."""

    async def check_texts(request: Request) -> None:
        too_long = [
            f"query.{name[:100]}"
            for name, value in request.query_params.multi_items()
            if max(len(name), len(value)) > max_chars
        ]
        too_long += [
            path for path, text in _texts(await _parsed_body(request)) if len(text) > max_chars
        ]
        if too_long:
            raise FieldTooLong(max_chars, too_long)

    return check_texts


async def _parsed_body(request: Request) -> object:
    """The body FastAPI parsed for the request's route (None if it takes none)."""
    route = request.scope.get("route")
    body = route.body_field if isinstance(route, APIRoute) else None
    if body is None:
        return None
    if isinstance(body.field_info, params.Form):
        form = await request.form()
        return {
            name: value for name, value in form.multi_items() if not isinstance(value, UploadFile)
        }
    if "json" not in request.headers.get("content-type", "") or not await request.body():
        return None  # not parsed as JSON (FastAPI's validation refuses it), or no body
    try:
        return await request.json()
    except ValueError:  # FastAPI has answered bad JSON already; never a failure here
        return None


def _texts(value: object) -> Iterator[tuple[str, str]]:
    """(path, text) of every text in a parsed body: each string, each member name (with
    the path of its object). Iterative: a body nested as deep as the parser allows is no
    failure here."""
    stack: list[tuple[object, str]] = [(value, "body")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            yield path, item
        elif isinstance(item, dict):
            for key, member in item.items():
                yield path, str(key)
                stack.append((member, f"{path}.{str(key)[:100]}"))
        elif isinstance(item, list):
            stack.extend((member, f"{path}.{index}") for index, member in enumerate(item))


# ---- installing them ---------------------------------------------------------------------


def guard(app: FastAPI, settings: Settings) -> None:
    """Install on ``app`` the body limit and the reading of forwarding headers from trusted
    proxies only (the client's address is what the sign-in throttle counts by; a trusted
    proxy's X-Forwarded-Proto makes cookies Secure)."""
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))


__all__ = [
    "ApiProblem",
    "BodyLimit",
    "BodyTooLarge",
    "FieldTooLong",
    "UploadTooLarge",
    "allow_body",
    "guard",
    "text_limit",
]
