"""The connector's local HTTP API on the in-memory transport: sending, errors as problem
details, token, health, metrics, and delivery to the information system (webhook, pull)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from connectors._api import create_app, install_delivery
from tests.support.federation import (
    ALERT,
    LODGED,
    LOOKUP,
    LOOKUP_REPLY,
    Federation,
    build_federation,
    example,
)
from tests.support.served import Served, wait_until

CIVIL = "MA/GOV/MOI/CIVIL-REGISTRY"
TAX = "MA/GOV/MEF/TAX"
PROBLEM = "application/problem+json"


@pytest.fixture
def unstarted(tmp_path, broker) -> Iterator[Federation]:
    """The federation before start, so a test can take handlers away and install delivery."""
    federation = build_federation(tmp_path, broker.transport, start=False)
    yield federation
    federation.bus.stop()


_served: list[Served] = []


@pytest.fixture(autouse=True)
def _stop_servers() -> Iterator[None]:
    yield
    while _served:
        _served.pop().close()


def serve(app: FastAPI) -> httpx.Client:
    """``app`` served as `connector run` serves it; a client of it (both closed after the test)."""
    _served.append(Served(app))
    return _served[-1].client(timeout=30.0)


def client(fed: Federation, name: str, **kwargs: Any) -> httpx.Client:
    """A client of ``name``'s API (without a token unless ``token=`` is given)."""
    return serve(create_app(fed[name], **{"token": None, **kwargs}))


def start(fed: Federation) -> None:
    for connector in fed.bus.connectors.values():
        connector.start()


class Webhook:
    """A tiny information system on 127.0.0.1: records each POST, answers with ``reply``."""

    def __init__(self, reply: Callable[[dict[str, Any]], tuple[int, Any]]) -> None:
        self.received: list[dict[str, Any]] = []
        self.keys: list[str | None] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.received.append(body)
                hook.keys.append(self.headers.get("Idempotency-Key"))
                status, answer = reply(body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/tabadul"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def webhook_factory() -> Iterator[Callable[..., Webhook]]:
    made: list[Webhook] = []

    def make(reply: Callable[[dict[str, Any]], tuple[int, Any]]) -> Webhook:
        made.append(Webhook(reply))
        return made[-1]

    yield make
    for hook in made:
        hook.close()


# ---------------------------------------------------------------------- sending


def test_post_message_sends_one_way_and_answers_202_with_id(fed: Federation):
    """POST /messages sends the alert to tax; the answer carries the message id."""
    alert = example(ALERT)
    answer = client(fed, "treasury").post(
        "/messages", json={"type": ALERT, "to": TAX, "payload": alert}
    )
    assert answer.status_code == 202
    got = fed.recorders["tax"].wait_for(1)
    assert [(d.message_id, d.payload) for d in got] == [(answer.json()["id"], alert)]


def test_post_event_publishes_to_subscribers(fed: Federation):
    """POST /events publishes the declaration; both subscribers receive it."""
    answer = client(fed, "customs").post(
        "/events", json={"type": LODGED, "payload": example(LODGED)}
    )
    assert answer.status_code == 202
    assert answer.json()["id"]
    assert len(fed.recorders["tax"].wait_for(1)) == 1
    assert len(fed.recorders["treasury"].wait_for(1)) == 1


def test_get_message_shows_its_status_per_recipient(fed: Federation):
    """GET /messages/{id} follows a one-way message to 'handled' at tax (from tax's
    receipts); an id nobody sent is 404 unknown-message, and a malformed one 422."""
    api = client(fed, "treasury")
    sent = api.post("/messages", json={"type": ALERT, "to": TAX, "payload": example(ALERT)})
    message_id = sent.json()["id"]

    def handled() -> dict | None:
        doc = api.get(f"/messages/{message_id}").json()
        return doc if [d["state"] for d in doc["deliveries"]] == ["handled"] else None

    status = wait_until(handled)
    assert (status["type"], status["kind"], status["to"]) == (ALERT, "message", TAX)
    assert status["sent_at"]
    assert [(d["party"], d["code"]) for d in status["deliveries"]] == [(TAX, None)]
    missing = api.get(f"/messages/{'0' * 32}")
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown-message")
    assert api.get("/messages/not-an-id").status_code == 422


def test_post_request_returns_the_response_payload(fed: Federation):
    """POST /requests waits for civil's answer and returns it as {payload}."""
    asked = example(LOOKUP)
    answer = client(fed, "tax").post(
        "/requests", json={"type": LOOKUP, "to": CIVIL, "payload": asked}
    )
    assert answer.status_code == 200
    assert answer.json()["payload"]["person"]["cin"] == asked["cin"]


# ---------------------------------------------------------------------- errors


def test_schema_invalid_payload_is_a_422_problem_with_json_paths(fed: Federation):
    """An invalid payload is refused at the source: 422 problem, code schema-invalid, paths."""
    answer = client(fed, "tax").post(
        "/requests", json={"type": LOOKUP, "to": CIVIL, "payload": {"cin": 12}}
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith(PROBLEM)
    problem = answer.json()
    assert problem["code"] == "schema-invalid"
    assert problem["status"] == 422
    assert problem["type"].endswith("schema-invalid")
    assert problem["title"]
    assert "$.cin" in [e["path"] for e in problem["errors"]]
    assert "Traceback" not in answer.text


def test_missing_grant_is_a_422_forbidden_problem(fed: Federation):
    """customs has no grant to ask civil: 422 problem with code forbidden."""
    answer = client(fed, "customs").post(
        "/requests", json={"type": LOOKUP, "to": CIVIL, "payload": example(LOOKUP)}
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "forbidden"


def test_invalid_body_is_a_422_problem_naming_the_member(fed: Federation):
    """A body without payload and with an unknown member lists both, as JSON paths."""
    answer = client(fed, "treasury").post("/messages", json={"type": ALERT, "to": TAX, "x": 1})
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith(PROBLEM)
    problem = answer.json()
    assert problem["code"] == "invalid-request"
    assert {e["path"] for e in problem["errors"]} == {"$.payload", "$.x"}


def test_unknown_recipient_identity_is_a_422_problem(fed: Federation):
    """A malformed subsystem identity in 'to' is refused with the identity error's code."""
    answer = client(fed, "treasury").post(
        "/messages", json={"type": ALERT, "to": "not-an-id", "payload": example(ALERT)}
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid-identity"


def test_provider_refusal_is_a_502_problem_with_the_remote_code(fed: Federation):
    """civil refuses an unknown card number; the caller gets 502 with code not-found."""
    asked = dict(example(LOOKUP), cin="ZZ999999")
    answer = client(fed, "tax").post(
        "/requests", json={"type": LOOKUP, "to": CIVIL, "payload": asked}
    )
    assert answer.status_code == 502
    assert answer.json()["code"] == "not-found"


def test_request_without_answer_is_a_504_problem(fed: Federation):
    """With civil's connector stopped, a request times out: 504 request-timeout."""
    fed["civil"].stop()
    answer = client(fed, "tax").post(
        "/requests", json={"type": LOOKUP, "to": CIVIL, "payload": example(LOOKUP), "timeout": 0.3}
    )
    assert answer.status_code == 504
    assert answer.json()["code"] == "request-timeout"


def test_unknown_path_is_a_404_problem(fed: Federation):
    """Routing errors are problem details too."""
    answer = client(fed, "tax").get("/nowhere")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert answer.json()["code"] == "not-found"


# ---------------------------------------------------------------------- token, health, metrics


def test_token_is_required_except_for_health_and_metrics(fed: Federation):
    """With a token, calls without it or with a wrong one get 401; health and metrics stay open."""
    api = client(fed, "treasury", token="s3cret-token")
    body = {"type": ALERT, "to": TAX, "payload": example(ALERT)}
    missing = api.post("/messages", json=body)
    assert missing.status_code == 401
    assert missing.headers["content-type"].startswith(PROBLEM)
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["code"] == "unauthorized"
    wrong = api.post("/messages", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert api.get("/inbox").status_code == 401
    good = api.post("/messages", json=body, headers={"Authorization": "Bearer s3cret-token"})
    assert good.status_code == 202
    assert api.get("/health").status_code == 200
    assert api.get("/metrics").status_code == 200


def test_health_reports_ok_with_a_fresh_directory(fed: Federation):
    """/health: 200, database ok, directory fresh with its serial, broker reachable."""
    answer = client(fed, "tax").get("/health")
    assert answer.status_code == 200
    state = answer.json()
    assert state["status"] == "ok"
    assert state["database"] == "ok"
    assert state["broker"] == "ok"
    assert state["directory"]["fresh"] is True
    assert state["directory"]["serial"] == fed["tax"].directory.serial
    assert state["subsystem"] == TAX
    assert isinstance(state["log_records"], int)
    assert state["delivery"]["mode"] == "pull"


def test_health_is_503_when_the_broker_does_not_answer(fed: Federation):
    """A transport whose ping() fails makes the connector degraded: 503."""
    fed["tax"].transport.ping = lambda: False
    answer = client(fed, "tax").get("/health")
    assert answer.status_code == 503
    assert answer.json()["status"] == "degraded"
    assert answer.json()["broker"] == "unreachable"


def test_metrics_are_a_prometheus_exposition(fed: Federation):
    """/metrics serves the text format and counts the messages sent."""
    api = client(fed, "treasury")
    api.post("/messages", json={"type": ALERT, "to": TAX, "payload": example(ALERT)})
    answer = api.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert f'tabadul_messages_sent_total{{type="{ALERT}"}} 1.0' in answer.text


def test_openapi_lists_the_endpoints(fed: Federation):
    """The OpenAPI description is served and names every endpoint."""
    paths = client(fed, "tax").get("/openapi.json").json()["paths"]
    assert {
        "/messages",
        "/events",
        "/requests",
        "/inbox",
        "/inbox/ack",
        "/health",
        "/metrics",
    } <= set(paths)


# ---------------------------------------------------------------------- delivery to the IS


def test_webhook_receives_events_and_answers_requests(unstarted: Federation, webhook_factory):
    """Without Python handlers, treasury's event and civil's request go to the webhook; the
    webhook's JSON answer is the response, its 4xx {code, message} a refusal."""

    def reply(body: dict[str, Any]) -> tuple[int, Any]:
        if body["kind"] != "request":
            return 204, None
        if body["payload"]["cin"] == "ZZ999999":
            return 404, {"code": "not-found", "message": "no such person"}
        answer = example(LOOKUP_REPLY)
        answer["person"]["cin"] = body["payload"]["cin"]
        return 200, answer

    hook = webhook_factory(reply)
    del unstarted["treasury"].handlers[LODGED]
    del unstarted["civil"].handlers[LOOKUP]
    create_app(unstarted["treasury"], token=None, webhook_url=hook.url)
    create_app(unstarted["civil"], token=None, webhook_url=hook.url)
    start(unstarted)

    client(unstarted, "customs").post("/events", json={"type": LODGED, "payload": example(LODGED)})
    events = wait_until(lambda: [b for b in hook.received if b["kind"] == "event"])
    assert [(e["type"], e["sender"]) for e in events] == [(LODGED, "MA/GOV/MEF/CUSTOMS")]
    assert events[0]["payload"] == example(LODGED)

    api = client(unstarted, "tax")
    asked = example(LOOKUP)
    answer = api.post("/requests", json={"type": LOOKUP, "to": CIVIL, "payload": asked})
    assert answer.status_code == 200
    assert answer.json()["payload"]["person"]["cin"] == asked["cin"]
    refused = api.post(
        "/requests", json={"type": LOOKUP, "to": CIVIL, "payload": dict(asked, cin="ZZ999999")}
    )
    assert refused.status_code == 502
    assert refused.json()["code"] == "not-found"


def test_failing_webhook_is_retried(unstarted: Federation, webhook_factory):
    """A webhook that fails once (HTTP 500) gets the same delivery again, as attempt 2."""
    answers = iter([(500, {"error": "busy"})])
    hook = webhook_factory(lambda _body: next(answers, (200, {})))
    del unstarted["treasury"].handlers[LODGED]
    create_app(unstarted["treasury"], token=None, webhook_url=hook.url)
    start(unstarted)
    unstarted["customs"].publish(LODGED, example(LODGED))
    got = wait_until(lambda: len(hook.received) >= 2 and hook.received)
    assert [b["attempt"] for b in got] == [1, 2]
    assert got[0]["id"] == got[1]["id"]
    assert hook.keys[:2] == [got[0]["id"]] * 2  # the same key on every attempt


def test_pull_inbox_serves_events_until_acknowledged(unstarted: Federation):
    """Without a webhook, an event waits in GET /inbox and goes away after POST /inbox/ack."""
    del unstarted["treasury"].handlers[LODGED]
    api = client(unstarted, "treasury")
    start(unstarted)
    unstarted["customs"].publish(LODGED, example(LODGED))
    pulled = wait_until(lambda: api.get("/inbox").json()["messages"])
    assert [(m["type"], m["kind"], m["payload"]) for m in pulled] == [
        (LODGED, "event", example(LODGED))
    ]
    assert api.get("/inbox", params={"limit": 1}).json()["waiting"] == 1
    assert api.get("/health").json()["delivery"]["waiting"] == 1
    acked = api.post("/inbox/ack", json={"ids": [pulled[0]["id"], "unknown"]})
    assert acked.json() == {"acknowledged": 1, "waiting": 0}
    assert api.get("/inbox").json() == {"messages": [], "waiting": 0}


def test_request_without_handler_or_webhook_is_refused(unstarted: Federation):
    """A request has nobody to answer it in pull mode: the caller gets not-implemented."""
    del unstarted["civil"].handlers[LOOKUP]
    create_app(unstarted["civil"], token=None)
    start(unstarted)
    answer = client(unstarted, "tax").post(
        "/requests", json={"type": LOOKUP, "to": CIVIL, "payload": example(LOOKUP)}
    )
    assert answer.status_code == 502
    assert answer.json()["code"] == "not-implemented"


def test_pull_endpoints_refuse_in_webhook_mode(fed: Federation):
    """GET /inbox is a 409 problem when deliveries go to a webhook."""
    answer = client(fed, "tax", webhook_url="http://127.0.0.1:9/unused").get("/inbox")
    assert answer.status_code == 409
    assert answer.json()["code"] == "pull-inbox-disabled"


def test_delivery_covers_received_types_and_keeps_python_handlers(unstarted: Federation):
    """install_delivery registers the granted types without a handler and keeps the others."""
    tax = unstarted["tax"]
    mine = dict(tax.handlers)
    inbox = install_delivery(tax)
    assert all(tax.handlers[t] is h for t, h in mine.items())
    assert tax.handlers["customs.declaration-cleared"] == inbox.deliver
    assert LOOKUP_REPLY not in tax.handlers  # responses never go to handlers
