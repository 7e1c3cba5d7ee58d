"""The connector's local HTTP API, for the agency's information system (IS).

The IS sends through the connector and receives what has no Python handler::

    POST /messages    {type, to, payload}            -> 202 {id}        one-way message
    POST /events      {type, payload}                -> 202 {id}        event to subscribers
    POST /requests    {type, to, payload, timeout?}  -> 200 {payload}   request, its response
    GET  /inbox?limit=                               -> 200 {messages}  pull inbox (no webhook)
    POST /inbox/ack   {ids}                          -> 200 {acknowledged, waiting}
    GET  /health                                     -> 200 | 503 {status, broker, ...}
    GET  /metrics                                    -> Prometheus text exposition

Errors are RFC 7807 problem details (``application/problem+json``) with a stable ``code``
and, where there are several, an ``errors`` list (JSON paths for invalid payloads); never a
traceback. The sender's own checks (schema, grant) answer 422, a provider's error response
502, no response in time 504, an unreachable broker or database 503.

Receiving (:func:`install_delivery`): every message type the connector receives but has no
Python handler for goes either to a *webhook* of the IS (an HTTP POST of the delivery as
JSON; a request's response is the webhook's JSON answer) or, without a webhook, to an
*pull inbox* that the IS reads with ``GET /inbox`` and empties with
``POST /inbox/ack``. Both are at-least-once: the IS deduplicates by message id.

The pull inbox is the connector's durable inbox (its database): a pulled message stays
there, across restarts, until the IS acknowledges it.

Every endpoint but ``/health`` and ``/metrics`` needs ``Authorization: Bearer <token>``
(the OpenAPI description at ``/openapi.json`` and ``/docs`` stay readable: they hold no
data); serving without a token is an explicit choice, for loopback development. Every
request must name the API's own host in ``Host`` and come from no web page (``Origin``)
unless allowed, so DNS rebinding cannot reach it. The API listens on localhost unless the
configuration says otherwise.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors._api_dead_letters import dead_letter_router
from connectors._dead_letters import BadDeadLetterInput, DeadLetterError, UnknownDeadLetter
from connectors._errors import (
    ConnectorError,
    RemoteError,
    RequestTimeout,
    SendRefused,
    StoreError,
    TransportError,
)
from connectors._handlers import Context, Delivery, Hold, Refuse
from connectors.runtime import Connector
from exchange import DEFAULT_MAX_SIZE, ExchangeError, utcnow

logger = logging.getLogger("connectors.api")

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE = "urn:tabadul:problem:"
# what Metrics.exposition() writes: the classic text format (every metric name is a legacy
# name, so its escaping changes nothing), which every Prometheus version scrapes
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WEBHOOK_TIMEOUT = 10.0  # seconds for the IS to take a delivery or answer a request
# A body carries one payload, which the connector refuses beyond the envelope limit anyway
# (JSON escapes may make the body up to six times the payload's bytes).
MAX_BODY = 8 * DEFAULT_MAX_SIZE
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_RECEIVED_KINDS = frozenset({"request", "event", "message"})


# ---------------------------------------------------------------------- receiving


class WebhookError(ConnectorError):
    """The IS's webhook did not take a delivery (connection error, timeout, non-2xx answer);
    the runtime tries again with backoff, then dead-letters as ``handler-failed``."""

    code = "webhook-failed"


def delivery_document(delivery: Delivery) -> dict[str, Any]:
    """A delivery as the IS sees it (webhook body, pull inbox entry)."""
    return {
        "id": delivery.message_id,
        "type": delivery.message_type,
        "kind": delivery.kind,
        "sender": str(delivery.sender),
        "correlation_id": delivery.correlation_id,
        "purpose": delivery.purpose,
        "attempt": delivery.attempt,
        "payload": delivery.payload,
    }


class Inbox:
    """Where deliveries without a Python handler go: the IS's webhook when ``webhook_url``
    is set, else the connector's durable pull inbox. :meth:`deliver` is the handler the
    runtime calls."""

    def __init__(
        self,
        connector: Connector,
        webhook_url: str | None = None,
        *,
        timeout: float = WEBHOOK_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.connector = connector
        self.webhook_url = webhook_url
        self._client = (
            httpx.Client(timeout=timeout, transport=transport) if webhook_url is not None else None
        )

    @property
    def mode(self) -> str:
        return "webhook" if self.webhook_url is not None else "pull"

    # -- the handler

    def deliver(self, delivery: Delivery, _ctx: Context) -> Any:
        """Hand ``delivery`` to the IS. For a request, return the response payload or raise
        :class:`Refuse`; anything else that goes wrong raises, so the runtime retries."""
        if self._client is None:
            if delivery.kind == "request":
                raise Refuse(
                    f"no handler for {delivery.message_type}: requests need a webhook",
                    "not-implemented",
                )
            raise Hold
        return self._post(self._client, delivery)

    def _post(self, client: httpx.Client, delivery: Delivery) -> Any:
        assert self.webhook_url is not None
        try:
            answer = client.post(
                self.webhook_url,
                json=delivery_document(delivery),
                # the same key on every attempt: the IS applies each message once
                headers={
                    "X-Tabadul-Message-Id": delivery.message_id,
                    "Idempotency-Key": delivery.message_id,
                },
            )
        except httpx.HTTPError as exc:
            raise WebhookError(f"webhook {self.webhook_url} unreachable: {exc}") from exc
        if delivery.kind == "request" and answer.is_client_error:
            raise _refusal(answer)
        if not answer.is_success:
            raise WebhookError(
                f"webhook {self.webhook_url} answered HTTP {answer.status_code} "
                f"to {delivery.message_id}"
            )
        if delivery.kind != "request":
            return None
        try:
            return answer.json()
        except ValueError as exc:
            raise WebhookError(
                f"webhook {self.webhook_url} answered request {delivery.message_id} "
                "without a JSON body"
            ) from exc

    # -- the pull side

    def pending(self, limit: int = 100) -> list[dict[str, Any]]:
        """The oldest ``limit`` unacknowledged deliveries (they stay until acknowledged)."""
        return [delivery_document(d) for d in self.connector.held(limit)]

    def ack(self, message_ids: Iterable[str]) -> int:
        """Mark pulled deliveries done; returns how many were waiting (unknown ids are
        ignored, so acknowledging twice is harmless)."""
        return self.connector.release(list(message_ids))

    def counts(self) -> dict[str, Any]:
        if self.webhook_url is not None:
            return {"mode": self.mode}
        return {"mode": self.mode, "waiting": self.connector.store.counts().get("held", 0)}

    def close(self) -> None:
        """Close the webhook's HTTP client (after the connector stopped)."""
        if self._client is not None:
            self._client.close()


def _refusal(answer: httpx.Response) -> Refuse:
    """A 4xx answer to a request: ``{code, message}`` from the IS when it gave them."""
    code, message = "refused", f"the information system answered HTTP {answer.status_code}"
    try:
        body = answer.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("code") or code)
        message = str(body.get("message") or message)
    return Refuse(message, code)


def received_types(connector: Connector) -> set[str]:
    """What the directory lets ``connector`` receive: its subscribed topics, the types it
    provides, and the types others are granted to send to it."""
    me, directory = connector.me, connector.directory
    return (
        {g.topic for g in directory.subscribe_grants if g.subscriber == me}
        | {
            s.message_type
            for s in directory.services
            if s.subsystem == me and s.role != "publishes"
        }
        | {g.message_type for g in directory.send_grants if g.recipient == me}
    )


def install_delivery(
    connector: Connector,
    webhook_url: str | None = None,
    *,
    timeout: float = WEBHOOK_TIMEOUT,
    transport: httpx.BaseTransport | None = None,
) -> Inbox:
    """Register an :class:`Inbox` as the handler of every type ``connector`` receives and
    has no Python handler for. Call it once, before ``connector.start()`` (so that messages
    left in the connector's durable inbox by a previous run go to the IS too).

    Besides the types the directory grants today, every request, event and one-way type of
    the schema registry is covered, so a grant added later needs no restart: the receive
    pipeline has already refused anything not granted before a handler is looked up.
    ``transport`` replaces httpx's network transport for the webhook (``httpx.MockTransport``
    in tests)."""
    inbox = Inbox(connector, webhook_url, timeout=timeout, transport=transport)
    known = {e.type for e in connector.registry.entries() if e.kind.value in _RECEIVED_KINDS}
    for message_type in sorted(received_types(connector) | known):
        connector.handlers.setdefault(message_type, inbox.deliver)
    return inbox


# ---------------------------------------------------------------------- the API's models


_PURPOSE_HELP = (
    "The purpose of the grant invoked (e.g. tax-compliance-check); by default the grant's only one."
)


class MessageIn(BaseModel):
    """A one-way message to send."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, examples=["treasury.suspicious-transaction-alert"])
    to: str = Field(min_length=1, description="INSTANCE/CLASS/MEMBER/SUBSYSTEM")
    payload: JsonValue
    purpose: str | None = Field(default=None, max_length=64, description=_PURPOSE_HELP)


class EventIn(BaseModel):
    """An event to publish to the granted subscribers."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, examples=["customs.declaration-lodged"])
    payload: JsonValue


class RequestIn(BaseModel):
    """A request to send; the call waits for the response."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, examples=["civil.person-lookup.request"])
    to: str = Field(min_length=1, description="INSTANCE/CLASS/MEMBER/SUBSYSTEM")
    payload: JsonValue
    purpose: str | None = Field(default=None, max_length=64, description=_PURPOSE_HELP)
    timeout: float | None = Field(
        default=None, gt=0, le=300, description="Seconds to wait (the connector's default)."
    )


class Sent(BaseModel):
    id: str


class Answer(BaseModel):
    payload: JsonValue


class DeliveryOut(BaseModel):
    party: str
    state: str
    code: str | None
    at: str


class StatusOut(BaseModel):
    """What became of a message this subsystem sent (protocol.md §12)."""

    id: str
    type: str
    kind: str
    to: str
    sent_at: str | None
    deliveries: list[DeliveryOut]


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(max_length=10_000)


class Acknowledged(BaseModel):
    acknowledged: int
    waiting: int


class Pulled(BaseModel):
    messages: list[dict[str, JsonValue]]
    waiting: int


class Problem(BaseModel):
    """RFC 7807 problem details."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, JsonValue]] = Field(default_factory=list)


_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM_JSON: {}}}
    for status in (401, 422, 502, 503, 504)
}

_CHANGE: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM_JSON: {}}} for status in (404, 409)
}
_DEAD_LETTER_STATUS: dict[type[DeadLetterError], int] = {
    UnknownDeadLetter: 404,
    BadDeadLetterInput: 422,
}


class _Problem(Exception):
    """Raised inside the API to answer with a problem (mapped by the handler below)."""

    def __init__(  # noqa: PLR0913 - the members of a problem document
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        errors: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})


def problem_response(problem: _Problem) -> JSONResponse:
    body = Problem(
        type=PROBLEM_TYPE + problem.code,
        title=problem.title,
        status=problem.status,
        detail=problem.detail,
        code=problem.code,
        errors=[dict(e) for e in problem.errors],
    )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def _as_problem(exc: Exception) -> _Problem:  # noqa: PLR0911 - one branch per error family
    """The problem document for one of the connector's (or the exchange core's) errors."""
    if isinstance(exc, _Problem):
        return exc
    if isinstance(exc, SendRefused):
        return _Problem(
            422, exc.reason, "Refused by the sender's checks", exc.message, errors=exc.details
        )
    if isinstance(exc, RemoteError):
        errors = [e if isinstance(e, dict) else {"message": str(e)} for e in exc.details]
        return _Problem(
            502, exc.remote_code, "The provider answered with an error", exc.message, errors=errors
        )
    if isinstance(exc, DeadLetterError):
        status = _DEAD_LETTER_STATUS.get(type(exc), 409)
        return _Problem(status, exc.code, "The dead letter cannot be so", exc.message)
    if isinstance(exc, RequestTimeout):
        return _Problem(504, exc.code, "No response in time", exc.message)
    if isinstance(exc, TransportError | StoreError):
        return _Problem(503, exc.code, "The connector cannot reach a service", exc.message)
    if isinstance(exc, ConnectorError | ExchangeError):
        return _Problem(500, exc.code, "The connector failed", exc.message)
    if isinstance(exc, RequestValidationError):
        return _Problem(
            422,
            "invalid-request",
            "The request body is not valid",
            "see errors for each invalid member",
            errors=[_validation_issue(e) for e in exc.errors()],
        )
    if isinstance(exc, StarletteHTTPException):
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return _Problem(exc.status_code, code, str(exc.detail), str(exc.detail))
    logger.error("unexpected error in the local API", exc_info=exc)
    return _Problem(500, "internal", "Internal error", "an internal error occurred; see the log")


def _validation_issue(error: Mapping[str, Any]) -> dict[str, str]:
    """pydantic's error as a payload issue: ``$.payload.cin`` style path, message, keyword."""
    where, *rest = error.get("loc", ()) or ("body",)
    path = "$" if where == "body" else f"{where}:"
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return {"path": path, "message": str(error.get("msg", "")), "keyword": str(error.get("type"))}


# ---------------------------------------------------------------------- the application


def create_app(  # noqa: PLR0913 - the API's settings, keyword-only
    connector: Connector,
    *,
    token: str | None,
    webhook_url: str | None = None,
    inbox: Inbox | None = None,
    hosts: Iterable[str] = LOOPBACK_HOSTS,
    origins: Iterable[str] = (),
    max_body: int = MAX_BODY,
) -> FastAPI:
    """The local API of ``connector``. Unless an ``inbox`` is given, this installs the
    delivery of unhandled types (:func:`install_delivery` with ``webhook_url``), so call it
    before ``connector.start()``. The inbox is ``app.state.inbox`` (close it after the
    connector stopped).

    ``token`` is required by every endpoint but ``/health`` and ``/metrics``; ``None`` (no
    token) must be asked for explicitly (the configuration allows it on loopback only).
    Every request, whatever its token, must name one of ``hosts`` in ``Host``, carry no
    ``Origin`` or one of ``origins``, and send at most ``max_body`` bytes: so a web page the
    IS operator visits cannot reach the API through DNS rebinding, nor exhaust it."""
    inbox = inbox or install_delivery(connector, webhook_url)
    app = FastAPI(
        title=f"Tabadul connector {connector.me}",
        summary="Send, publish, request and receive on the Tabadul bus.",
        version="1",
    )
    app.state.connector = connector
    app.state.inbox = inbox
    _mount_errors(app)
    app.add_middleware(
        RequestGuard, hosts=frozenset(hosts), origins=frozenset(origins), max_body=max_body
    )
    guard = [Depends(_BearerGuard(token))] if token is not None else []

    @app.post("/messages", status_code=202, dependencies=guard, responses=_PROBLEMS)
    def send_message(body: MessageIn) -> Sent:
        """Send a one-way message; answers once the broker confirmed it."""
        return Sent(id=connector.send(body.type, body.to, body.payload, purpose=body.purpose))

    @app.post("/events", status_code=202, dependencies=guard, responses=_PROBLEMS)
    def publish_event(body: EventIn) -> Sent:
        """Publish an event to every granted subscriber."""
        return Sent(id=connector.publish(body.type, body.payload))

    @app.post("/requests", dependencies=guard, responses=_PROBLEMS)
    def send_request(body: RequestIn) -> Answer:
        """Send a request and wait for the response payload."""
        return Answer(
            payload=connector.request(
                body.type, body.to, body.payload, timeout=body.timeout, purpose=body.purpose
            )
        )

    @app.get("/messages/{message_id}", dependencies=guard, responses=_PROBLEMS)
    def message_status(message_id: Annotated[str, Path(pattern="^[0-9a-f]{32}$")]) -> StatusOut:
        """What became of a message sent from here: confirmed by the broker, then per
        recipient (per subscriber for an event) received or refused with the code, then
        handled or failed, from the receivers' signed receipts."""
        status = connector.status(message_id)
        if status is None:
            detail = f"{connector.me} sent no message {message_id}"
            raise _Problem(404, "unknown-message", "No such message", detail)
        return StatusOut.model_validate(status.as_dict())

    @app.get("/inbox", dependencies=guard, responses=_PROBLEMS)
    def pull(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Pulled:
        """The oldest unacknowledged deliveries (pull mode only)."""
        _pull_mode(inbox)
        return Pulled(messages=inbox.pending(limit), waiting=inbox.counts()["waiting"])

    @app.post("/inbox/ack", dependencies=guard, responses=_PROBLEMS)
    def acknowledge(body: AckIn) -> Acknowledged:
        """Forget deliveries the IS has taken (pull mode only)."""
        _pull_mode(inbox)
        done = inbox.ack(body.ids)
        return Acknowledged(acknowledged=done, waiting=inbox.counts()["waiting"])

    app.include_router(
        dead_letter_router(connector.me, connector.dead_letters, guard, _PROBLEMS, _CHANGE)
    )

    @app.get("/health", responses={503: {"description": "degraded"}})
    def health() -> JSONResponse:
        """Broker, database and directory state; 503 when degraded."""
        state = health_document(connector, inbox)
        return JSONResponse(state, status_code=200 if state["status"] == "ok" else 503)

    @app.get("/metrics", response_class=Response)
    def metrics() -> Response:
        """Prometheus text exposition of the connector's metrics."""
        return Response(connector.metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    return app


def _mount_errors(app: FastAPI) -> None:
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        return problem_response(_as_problem(exc))

    for kind in (
        _Problem,
        ConnectorError,
        ExchangeError,
        RequestValidationError,
        StarletteHTTPException,
        Exception,
    ):
        app.add_exception_handler(kind, handle)


def _host_name(value: str) -> str:
    """``Host`` without its port: ``[::1]:8080`` -> ``::1``, ``tax.local:80`` -> ``tax.local``."""
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class RequestGuard:
    """ASGI middleware in front of every route: ``Host`` must be one of ``hosts`` (400
    ``host-not-allowed``), ``Origin`` absent or one of ``origins`` (403
    ``origin-not-allowed``), and the body at most ``max_body`` bytes (413 ``too-large``,
    checked on ``Content-Length`` and while the body streams in: the guard reads it, so
    the routes see a body already bounded)."""

    def __init__(
        self, app: ASGIApp, *, hosts: frozenset[str], origins: frozenset[str], max_body: int
    ) -> None:
        self.app = app
        self.hosts = frozenset(h.lower() for h in hosts)
        self.origins = origins
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        problem = self._refusal(headers)
        body = b""
        if problem is None:
            body, problem = await self._read(receive)
        if problem is not None:
            await problem_response(problem)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _refusal(self, headers: Mapping[str, str]) -> _Problem | None:
        host = _host_name(headers.get("host", "")).lower()
        if host not in self.hosts:
            return _Problem(
                400,
                "host-not-allowed",
                "Host not allowed",
                f"this API answers to {', '.join(sorted(self.hosts))} only "
                "(add the name to api.allowed_hosts)",
            )
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:
            return _Problem(
                403,
                "origin-not-allowed",
                "Origin not allowed",
                "requests from web pages are refused unless their origin is in api.allowed_origins",
            )
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > self.max_body:
            return _too_large(self.max_body)
        return None

    async def _read(self, receive: Receive) -> tuple[bytes, _Problem | None]:
        """The whole body (at most ``max_body`` bytes, so holding it is bounded), or the
        refusal as soon as it grows past the limit."""
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", _Problem(400, "bad-request", "Bad request", "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return b"", _too_large(self.max_body)
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts), None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then waits as the server's."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _too_large(limit: int) -> _Problem:
    return _Problem(
        413, "too-large", "Request too large", f"a request body is at most {limit} bytes"
    )


_BEARER = HTTPBearer(auto_error=False, description="The token named by api.token_env.")


class _BearerGuard:
    """The dependency that checks ``Authorization: Bearer <token>`` (in constant time)."""

    def __init__(self, token: str) -> None:
        self._expected = token.encode()

    def __call__(
        self, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
    ) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, self._expected):
            raise _Problem(
                401,
                "unauthorized",
                "Unauthorized",
                "this endpoint needs 'Authorization: Bearer <token>' with the connector's token",
                headers={"WWW-Authenticate": "Bearer"},
            )


def _pull_mode(inbox: Inbox) -> None:
    if inbox.webhook_url is not None:
        raise _Problem(
            409,
            "pull-inbox-disabled",
            "Deliveries go to the webhook",
            f"this connector delivers to {inbox.webhook_url}; there is no pull inbox",
        )


def broker_state(connector: Connector) -> str:
    """``ok`` or ``unreachable``, from the transport's ``ping()``."""
    try:
        return "ok" if connector.transport.ping() else "unreachable"
    except (ConnectorError, OSError):
        return "unreachable"


def health_document(connector: Connector, inbox: Inbox | None = None) -> dict[str, Any]:
    """What ``GET /health`` answers; ``status`` is ``degraded`` when the database or the
    broker is unreachable or the directory is stale."""
    broker = broker_state(connector)
    state: dict[str, object]
    try:
        state = dict(connector.health())
        database = bool(state.pop("database"))
    except StoreError:  # the database answered the ping but failed the counts
        directory = connector.directory
        state = {
            "subsystem": str(connector.me),
            "directory": {
                "serial": directory.serial,
                "expires": directory.expires.isoformat(),
                "fresh": not directory.is_stale(utcnow()),
            },
            "log_records": connector.log.size,
            "inbox": {},
        }
        database = False
    directory_state = state["directory"]
    fresh = isinstance(directory_state, dict) and bool(directory_state.get("fresh"))
    ok = database and fresh and broker != "unreachable"
    return {
        "status": "ok" if ok else "degraded",
        "broker": broker,
        "database": "ok" if database else "unreachable",
        **state,
        "delivery": inbox.counts() if inbox is not None else None,
    }
