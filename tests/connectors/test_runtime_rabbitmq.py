"""The connector runtime on the real RabbitMQ: every reject code, request/response, events,
encryption as the broker holds it, redelivery, and a connection dropped mid-stream."""

from __future__ import annotations

import base64
import itertools
import json
import time
from datetime import timedelta

import orjson
import pytest
from typer.testing import CliRunner

from connectors import (
    REJECT_HEADER,
    PikaTransport,
    dead_letter_queue,
    queue_name,
)
from exchange import Recipient, build_envelope, utcnow
from exchange.log import SQLiteLogStore
from exchange.sandbox import Sandbox
from tabadul.cli import build_app
from tests.support import rabbit
from tests.support.dead_letters import DeadLetterBus, dead_letter_bus
from tests.support.federation import (
    ALERT,
    LODGED,
    LOOKUP,
    Federation,
    build_federation,
    connector_config,
    example,
    strings,
)


@pytest.fixture
def fed(tmp_path):
    instance = rabbit.unique_instance()
    counter = itertools.count()
    federation = build_federation(
        tmp_path,
        lambda: PikaTransport(name=f"{instance}-{next(counter)}"),
        instance=instance,
    )
    federation.instance = instance  # type: ignore[attr-defined]
    yield federation
    federation.bus.stop()
    rabbit.delete_queues(instance)


def _slug(fed: Federation, name: str) -> str:
    return fed.parties[name].subsystem.slug


def _request_bytes(fed: Federation, *, sender="tax", payload=None, **kwargs) -> bytes:
    return build_envelope(
        fed[sender].signer(),
        message_type=LOOKUP,
        schema_version="1.0.0",
        kind="request",
        payload=orjson.dumps(payload if payload is not None else example(LOOKUP)),
        classification="INTERNAL",
        recipient=Recipient(fed.parties["civil"].subsystem),
        **kwargs,
    )


def _dead_letters(fed: Federation, name: str, count: int, timeout: float = 15.0):
    found = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        found += rabbit.get_all(dead_letter_queue(_slug(fed, name)))
        time.sleep(0.1)
    return found


def _log_records(fed: Federation, name: str):
    fed[name].log.flush()
    store = SQLiteLogStore(fed.bus.folder / f"{_slug(fed, name)}.log.sqlite")
    records = [s.record for chunk in store.scan() for s in chunk]
    store.close()
    return records


def _crafted(fed: Federation) -> dict[str, bytes]:
    """One message per reject code, each wrong in exactly one way."""
    sandbox = fed.bus.sandbox
    good = _request_bytes(fed)
    tampered = json.loads(good)
    tampered["payload"] = base64.b64encode(b'{"cin": "AA000000"}').decode()
    stranger = Sandbox(sandbox.instance, ca=sandbox.ca).add(f"{sandbox.instance}/GOV/MEF/STRANGER")
    unknown = build_envelope(
        stranger.signer,
        message_type=LOOKUP,
        schema_version="1.0.0",
        kind="request",
        payload=orjson.dumps(example(LOOKUP)),
        classification="INTERNAL",
        recipient=Recipient(fed.parties["civil"].subsystem),
    )
    forbidden = _request_bytes(fed, sender="customs")
    invalid = _request_bytes(fed, payload={"cin": "not a card number"})
    stale = _request_bytes(fed, now=utcnow() - timedelta(minutes=20), ttl=timedelta(hours=1))
    expired = _request_bytes(fed, now=utcnow() - timedelta(minutes=2), ttl=timedelta(seconds=5))
    treasury_key = sandbox.recipient(fed.parties["treasury"])
    undecryptable = build_envelope(
        fed["treasury"].signer(),
        message_type=ALERT,
        schema_version="1.0.0",
        kind="message",
        payload=orjson.dumps(example(ALERT)),
        classification="RESTRICTED",
        recipient=Recipient(
            fed.parties["tax"].subsystem, treasury_key.encryption_key, treasury_key.key_id
        ),
    )
    return {
        "malformed": b"{not json",
        "unknown-sender": unknown,
        "bad-signature": json.dumps(tampered).encode(),
        "stale": stale,
        "expired": expired,
        "forbidden": forbidden,
        "schema-invalid": invalid,
        "undecryptable": undecryptable,
    }


def test_every_reject_code_is_dead_lettered_logged_and_never_handled(fed: Federation):
    """Crafted messages injected straight into the queues (bypassing the sender's checks):
    each lands in the dead-letter queue with its code and in the log as rejected."""
    crafted = _crafted(fed)
    for code, body in crafted.items():
        target = "tax" if code == "undecryptable" else "civil"
        rabbit.inject(queue_name(_slug(fed, target)), body, message_id=code)
    # duplicate: the same valid request twice
    duplicate = _request_bytes(fed)
    rabbit.inject(queue_name(_slug(fed, "civil")), duplicate)
    assert len(fed.recorders["civil"].wait_for(1)) == 1
    rabbit.inject(queue_name(_slug(fed, "civil")), duplicate)
    # the replay must be judged before the keys rotate (or it would be certificate-expired)
    deadline = time.monotonic() + 10
    while "duplicate" not in fed["civil"].metrics.totals("rejected"):
        assert time.monotonic() < deadline, "the replay was never judged"
        time.sleep(0.05)
    # revoked and expired certificates need a new directory first
    sandbox = fed.bus.sandbox
    old_key_request = _request_bytes(fed)
    sandbox.rotate(fed.parties["tax"], overlap=timedelta(seconds=-1))
    sandbox.revoke(fed.parties["customs"])
    revoked = build_envelope(
        fed["customs"].signer(),
        message_type=LODGED,
        schema_version="1.1.0",
        kind="event",
        payload=orjson.dumps(example(LODGED)),
        classification="INTERNAL",
    )
    fed.bus.publish_directory()
    for connector in fed.bus.connectors.values():
        connector.refresh_directory()
    rabbit.inject(queue_name(_slug(fed, "civil")), old_key_request, message_id="cert-expired")
    rabbit.inject(queue_name(_slug(fed, "tax")), revoked, message_id="revoked")

    civil_letters = [p.headers[REJECT_HEADER] for p, _ in _dead_letters(fed, "civil", 9)]
    civil = set(civil_letters)
    assert len(civil_letters) == 9, civil_letters
    tax = {p.headers[REJECT_HEADER] for p, _ in _dead_letters(fed, "tax", 2)}
    assert civil == {
        "malformed",
        "unknown-sender",
        "bad-signature",
        "stale",
        "expired",
        "forbidden",
        "schema-invalid",
        "duplicate",
        "certificate-expired",
    }
    assert tax == {"undecryptable", "certificate-revoked"}
    assert len(fed.recorders["civil"].seen) == 1  # only the first, valid request
    assert fed.recorders["tax"].seen == []
    logged = {r.reject_code for r in _log_records(fed, "civil") if r.direction == "rejected"}
    assert logged == civil


def test_rejected_request_gets_a_signed_error_response(fed: Federation):
    """A schema-invalid request injected into civil's queue is answered with an error
    response that tax accepts and logs."""
    invalid = _request_bytes(fed, payload={"cin": "not a card number"})
    rabbit.inject(queue_name(_slug(fed, "civil")), invalid)
    deadline = time.monotonic() + 10
    errors = []
    while not errors and time.monotonic() < deadline:
        errors = [r for r in _log_records(fed, "tax") if r.message_type == "tabadul.error"]
        time.sleep(0.1)
    assert [(r.direction, r.sender) for r in errors] == [
        ("received", str(fed.parties["civil"].subsystem))
    ]


def test_request_response_round_trip_and_latency(fed: Federation):
    """Requests over RabbitMQ come back with the handler's answers (latency printed)."""
    latencies = []
    for i in range(20):
        asked = dict(example(LOOKUP), cin=f"AB{100000 + i}")
        start = time.perf_counter()
        answer = fed["tax"].request(LOOKUP, fed.parties["civil"].subsystem, asked)
        latencies.append((time.perf_counter() - start) * 1000)
        assert answer["person"]["cin"] == asked["cin"]
    latencies.sort()
    print(f"rpc over RabbitMQ: p50 {latencies[10]:.1f} ms, max {latencies[-1]:.1f} ms")  # noqa: T201


def test_event_fan_out_and_a_denied_subscriber(fed: Federation):
    """Subscribers get the event once; a queue bound without a grant gets it refused."""
    connection, ch = rabbit.channel()
    ch.queue_bind(queue_name(_slug(fed, "civil")), "tabadul.bus", f"event.{LODGED}")
    connection.close()
    fed["customs"].publish(LODGED, example(LODGED))
    assert len(fed.recorders["tax"].wait_for(1)) == 1
    assert len(fed.recorders["treasury"].wait_for(1)) == 1
    denied = _dead_letters(fed, "civil", 1)
    assert [p.headers[REJECT_HEADER] for p, _ in denied] == ["forbidden"]
    assert fed.recorders["civil"].seen == []


def test_restricted_body_as_the_broker_holds_it(fed: Federation):
    """A spy queue bound to tax's routing key sees only ciphertext of the alert."""
    connection, ch = rabbit.channel()
    spy = f"spy.{fed.instance}"  # type: ignore[attr-defined]
    ch.queue_declare(spy, exclusive=False, auto_delete=False)
    ch.queue_bind(spy, "tabadul.bus", f"to.{_slug(fed, 'tax')}")
    connection.close()
    alert = example(ALERT)
    fed["treasury"].send(ALERT, fed.parties["tax"].subsystem, alert)
    assert fed.recorders["tax"].wait_for(1)[0].payload == alert
    held = rabbit.get_all(spy)
    connection, ch = rabbit.channel()
    ch.queue_delete(spy)
    connection.close()
    assert len(held) == 1
    secrets = [s.encode() for s in strings(alert) if len(s) >= 6]
    assert secrets
    assert not [s for s in secrets if s in held[0][1]]


def test_redelivery_after_the_consumer_dies_before_acking(fed: Federation, tmp_path):
    """civil takes a request, makes its handler's effect, but dies before acking; the
    broker redelivers to a new civil connector, which treats it as a duplicate: the effect
    happened exactly once."""
    civil = fed["civil"]
    civil.transport.ack = lambda _tags: None  # dies before acking
    rabbit.inject(queue_name(_slug(fed, "civil")), _request_bytes(fed))
    assert len(fed.recorders["civil"].wait_for(1)) == 1
    civil.stop()  # the connection closes with the delivery unacknowledged
    revived = fed.bus.connector("civil", fed.parties["civil"], civil.handlers)
    revived.start()
    dead = _dead_letters(fed, "civil", 1)
    assert [p.headers[REJECT_HEADER] for p, _ in dead] == ["duplicate"]
    assert len(fed.recorders["civil"].seen) == 1


def test_connection_dropped_mid_stream_loses_nothing(fed: Federation):
    """While treasury sends 300 alerts, the broker closes every connection twice; tax ends
    with each alert handled exactly once."""
    sent: list[str] = []
    for burst in range(6):
        payloads = [
            dict(example(ALERT), alert_id=f"STA-2026-{burst:04d}{i:04d}") for i in range(50)
        ]
        sent.extend(fed["treasury"].send(ALERT, fed.parties["tax"].subsystem, p) for p in payloads)
        if burst in (1, 3):
            assert rabbit.close_connections(fed.instance) >= 1  # type: ignore[attr-defined]
    got = fed.recorders["tax"].wait_for(len(sent), timeout=60)
    ids = [d.message_id for d in got]
    assert sorted(ids) == sorted(sent)


def test_directory_picked_up_while_running(fed: Federation):
    """A newer directory granting customs the lookup is used without restart."""
    sandbox = fed.bus.sandbox
    sandbox.grant(fed.parties["customs"], LOOKUP, fed.parties["civil"])
    before = fed["civil"].directory.serial
    fed.bus.publish_directory()
    deadline = time.monotonic() + 5
    while fed["civil"].directory.serial == before and time.monotonic() < deadline:
        time.sleep(0.05)
    fed["customs"].refresh_directory()
    answer = fed["customs"].request(LOOKUP, fed.parties["civil"].subsystem, example(LOOKUP))
    assert answer["found"] is True


def test_replicas_of_a_requester_each_get_their_responses(fed: Federation):
    """Two replicas of tax share its queue and database: a response that reaches the replica
    not waiting for it is kept in the database and taken by the one that is, so every request
    of either replica is answered."""
    second = fed.bus.connector("tax-2", fed.parties["tax"], replica=1)
    second.start()
    civil = fed.parties["civil"].subsystem
    answered = []
    for i in range(8):  # all from the first replica: the queue hands responses to both
        ask = example(LOOKUP) | {"cin": f"AB{100000 + i}"}
        answered.append(fed["tax"].request(LOOKUP, civil, ask, timeout=5)["person"]["cin"])
    answered.append(second.request(LOOKUP, civil, example(LOOKUP), timeout=5)["person"]["cin"])
    assert answered == [f"AB{100000 + i}" for i in range(8)] + [example(LOOKUP)["cin"]]
    assert len(fed.recorders["civil"].wait_for(9)) == 9
    crossed = [c.metrics.totals("received").get("civil.person-lookup.response", 0)
               for c in (fed["tax"], second)]  # fmt: skip
    assert sum(crossed) == 9
    assert crossed[1] >= 2  # the second replica took some of the first one's responses


def test_receipts_tell_the_publisher_per_subscriber_and_the_cli_shows_it(fed: Federation):
    """On RabbitMQ: each subscriber's receipts reach customs, whose status of the event shows
    it handled at tax and treasury; `tabadul message status` reads the same from customs'
    database and log while it runs. A message nobody sent is exit 1, unknown-message."""
    message_id = fed["customs"].publish(LODGED, example(LODGED))
    tax, treasury = (str(fed.parties[n].subsystem) for n in ("tax", "treasury"))
    deadline = time.monotonic() + 20
    states: dict[str, str] = {}
    while states != {tax: "handled", treasury: "handled"} and time.monotonic() < deadline:
        time.sleep(0.1)
        states = {s.party: s.state for s in fed["customs"].store.delivery_states(message_id)}
    assert states == {tax: "handled", treasury: "handled"}
    config = connector_config(fed, "customs")
    runner = CliRunner()
    shown = runner.invoke(
        build_app(), ["message", "status", message_id, "-c", str(config), "--json"]
    )
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.output)
    assert (doc["type"], doc["kind"], doc["to"]) == (LODGED, "event", LODGED)
    assert {d["party"]: d["state"] for d in doc["deliveries"]} == states
    table = runner.invoke(build_app(), ["message", "status", message_id, "-c", str(config)])
    assert table.exit_code == 0
    assert "handled" in table.output
    unknown = runner.invoke(
        build_app(), ["message", "status", "0" * 32, "-c", str(config), "--json"]
    )
    assert unknown.exit_code == 1
    assert json.loads(unknown.output)["error"]["code"] == "unknown-message"


def test_dead_letters_on_rabbitmq_through_the_cli(tmp_path):
    """On RabbitMQ: an event whose handler failed every attempt is kept at once, a forged
    request reaches the dead-letter queue; `tabadul dead-letter` (another process's view: the
    database and the queue, while the connectors run) lists and shows them, resends the first
    after the fix (the running connector handles it once) and discards the second with a
    reason; the queue is empty afterwards and nothing was published again."""
    with dead_letter_bus(tmp_path, wait=False) as bus:
        fed = bus.fed
        runner = CliRunner()

        def cli(name: str, *args: str) -> dict:
            config = bus.configs[name]
            done = runner.invoke(build_app(), ["dead-letter", *args, "-c", str(config), "--json"])
            assert done.exit_code == 0, done.output
            return json.loads(done.output)

        deadline = time.monotonic() + 20
        rows: list = []
        while len(rows) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
            rows = cli("treasury", "list")["dead_letters"]
        [row] = rows
        assert (row["message_id"], row["code"], row["resendable"]) == (
            bus.failed_id,
            "handler-failed",
            True,
        )
        shown = cli("treasury", "show", str(row["seq"]), "--payload")
        assert shown["header"]["type"] == LODGED
        assert shown["payload"] == example(LODGED)
        bus.fix()
        resent = cli("treasury", "resend", str(row["seq"]), "--actor", "ops-3")
        assert resent["state"] == "resent"
        assert [d.message_id for d in fed.recorders["treasury"].wait_for(1)] == [bus.failed_id]

        _discard_the_forged_request(bus, cli, deadline)
        assert rabbit.get_all(dead_letter_queue(bus.slug("civil"))) == []
        time.sleep(0.5)
        assert len(fed.recorders["treasury"].seen) == 1


def _discard_the_forged_request(bus: DeadLetterBus, cli, deadline: float) -> None:
    """The forged request is bad-signature at civil: resend is refused (exit 2,
    not-resendable), discard records its reason, an unknown number is exit 1."""
    runner = CliRunner()
    while time.monotonic() < deadline and not cli("civil", "list")["dead_letters"]:
        time.sleep(0.2)
    [refused] = cli("civil", "list")["dead_letters"]
    assert refused["code"] == "bad-signature"
    not_resendable = runner.invoke(
        build_app(),
        ["dead-letter", "resend", str(refused["seq"]), "-c", str(bus.configs["civil"]),
         "--actor", "ops-3", "--json"],
    )  # fmt: skip
    assert not_resendable.exit_code == 2
    assert json.loads(not_resendable.output)["error"]["code"] == "not-resendable"
    discarded = cli(
        "civil", "discard", str(refused["seq"]), "--actor", "ops-3", "--reason", "forged"
    )
    assert discarded["actions"][0]["reason"] == "forged"
    unknown = runner.invoke(
        build_app(),
        ["dead-letter", "show", "999", "-c", str(bus.configs["civil"]), "--json"],
    )
    assert unknown.exit_code == 1
