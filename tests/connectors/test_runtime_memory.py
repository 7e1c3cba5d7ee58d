"""The connector runtime on the in-memory transport (fast); the same behaviours are proven
on RabbitMQ in test_runtime_rabbitmq.py."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import orjson
import pytest

from connectors import (
    REJECT_HEADER,
    ConnectorStore,
    Hold,
    MemoryBroker,
    OutboundMessage,
    RemoteError,
    RuntimeSettings,
    SendRefused,
    StoreError,
    TransportError,
    dead_letter_queue,
    direct_key,
)
from connectors._store import Accepted as StoreAccepted
from connectors._store import inbox as inbox_table
from exchange import build_envelope, format_time, parse_envelope, utcnow
from exchange.log import SQLiteLogStore
from tests.support.federation import (
    ALERT,
    LODGED,
    LOOKUP,
    Federation,
    build_federation,
    example,
    strings,
)


def test_request_response_round_trip(fed: Federation):
    """tax asks the civil registry; the handler's answer comes back as the response."""
    asked = example(LOOKUP)
    answer = fed["tax"].request(LOOKUP, fed.parties["civil"].subsystem, asked)
    assert answer["person"]["cin"] == asked["cin"]
    assert fed.recorders["civil"].seen[0].sender == fed.parties["tax"].subsystem


def test_refusal_comes_back_as_remote_error(fed: Federation):
    """A handler's Refuse reaches the caller as RemoteError with its code."""
    asked = dict(example(LOOKUP), cin="ZZ999999")
    with pytest.raises(RemoteError) as info:
        fed["tax"].request(LOOKUP, fed.parties["civil"].subsystem, asked)
    assert info.value.remote_code == "not-found"


def test_event_fans_out_to_subscribers_only(fed: Federation):
    """A declaration reaches tax and treasury, each once; civil is not subscribed."""
    fed["customs"].publish(LODGED, example(LODGED))
    assert len(fed.recorders["tax"].wait_for(1)) == 1
    assert len(fed.recorders["treasury"].wait_for(1)) == 1
    assert fed.recorders["civil"].seen == []


def test_restricted_message_is_encrypted_on_the_wire(fed: Federation, broker):
    """The alert's plaintext is never in what the broker carries; tax reads it."""
    carried: list[bytes] = []
    route = broker.route
    broker.route = lambda m: (carried.append(m.body), route(m))[1]
    alert = example(ALERT)
    fed["treasury"].send(ALERT, fed.parties["tax"].subsystem, alert)
    got = fed.recorders["tax"].wait_for(1)
    assert got[0].payload == alert
    secrets = [text.encode() for text in strings(alert) if len(text) >= 6]
    assert secrets
    assert carried
    assert not [s for s in secrets for body in carried if s in body]


def test_sender_checks_refuse_before_publishing(fed: Federation, broker):
    """An invalid payload or a missing grant is refused at the source, with the reason."""
    with pytest.raises(SendRefused) as invalid:
        fed["tax"].request(LOOKUP, fed.parties["civil"].subsystem, {"cin": 12})
    assert invalid.value.reason == "schema-invalid"
    assert invalid.value.details
    with pytest.raises(SendRefused) as denied:
        fed["customs"].request(LOOKUP, fed.parties["civil"].subsystem, example(LOOKUP))
    assert denied.value.reason == "forbidden"


def _lookup_from_tax(fed: Federation) -> bytes:
    """A lookup built by hand (past the sender's checks), to inject."""
    return build_envelope(
        fed["tax"].signer(),
        message_type=LOOKUP,
        schema_version="1.0.0",
        kind="request",
        payload=orjson.dumps(example(LOOKUP)),
        classification="INTERNAL",
        recipient=fed["tax"].outbox.recipient(fed.parties["civil"].subsystem),
    )


def _inject(broker: MemoryBroker, fed: Federation, name: str, body: bytes) -> None:
    slug = fed.parties[name].subsystem.slug
    broker.route(OutboundMessage(direct_key(slug), body, "x"))


def test_a_stopped_replicas_inbox_is_taken_over(tmp_path, broker):
    """An entry another replica accepted and never handled (it died) is taken over once its
    lease runs out, and handled once; entries in hand are not taken twice."""
    settings = RuntimeSettings(
        retry_base=0.05, directory_poll=0.2, takeover_after=timedelta(seconds=0.4)
    )
    fed = build_federation(tmp_path, broker.transport, settings=settings)
    try:
        body = _lookup_from_tax(fed)
        message_id = parse_envelope(body).header.id
        keep = utcnow() + timedelta(minutes=10)
        fed["civil"].store.accept([StoreAccepted(message_id, keep, body)])  # the dead replica's
        seen = fed.recorders["civil"].wait_for(1, timeout=10)
        assert [d.message_id for d in seen] == [message_id]
        asked = example(LOOKUP)
        answer = fed["tax"].request(LOOKUP, fed.parties["civil"].subsystem, asked)
        assert answer["person"]["cin"] == asked["cin"]
        time.sleep(1.0)  # several sweeps: nothing is taken over twice
        assert len(fed.recorders["civil"].seen) == 2
        assert fed["civil"].store.pending() == []
    finally:
        fed.bus.stop()


def test_an_event_whose_done_mark_fails_is_neither_rerun_nor_lost(tmp_path, broker):
    """While the database refuses to mark handled events done, they stay in hand (leases
    renewed): no sweep takes them over and runs their handler again; the mark is retried
    and lands once the database is back."""
    settings = RuntimeSettings(
        retry_base=0.05, directory_poll=0.2, takeover_after=timedelta(seconds=0.4)
    )
    fed = build_federation(tmp_path, broker.transport, settings=settings)
    try:
        tax = fed["tax"]
        real = tax.store.finish_many
        refusing = {"until": time.monotonic() + 2.0}

        def flaky(message_ids):
            if time.monotonic() < refusing["until"]:
                raise StoreError("connector database failed to record handled messages: locked")
            real(message_ids)

        tax.store.finish_many = flaky
        fed["customs"].publish_many(LODGED, [example(LODGED) for _ in range(3)])
        assert len(fed.recorders["tax"].wait_for(3)) == 3
        deadline = time.monotonic() + 10
        while tax.store.pending() and time.monotonic() < deadline:
            time.sleep(0.1)  # many sweeps of 0.2 s against leases of 0.4 s meanwhile
        assert tax.store.pending() == []
        assert len(fed.recorders["tax"].seen) == 3
    finally:
        fed.bus.stop()


def test_a_slow_accept_is_not_taken_over_by_a_sweep_meanwhile(tmp_path, broker):
    """While the database is slow to accept a batch (locked by another process), lease
    sweeps go on; entries whose commit landed with an old lease are this replica's own and
    are handled once, not taken over as a stopped replica's and handled again."""
    settings = RuntimeSettings(
        retry_base=0.05, directory_poll=0.1, takeover_after=timedelta(seconds=0.2)
    )
    fed = build_federation(tmp_path, broker.transport, settings=settings)
    try:
        tax = fed["tax"]
        real = tax.store.accept

        def slow(batch, **kwargs):
            real(batch, **kwargs)
            old = format_time(utcnow() - timedelta(seconds=5))  # as if stamped before a wait
            with tax.store._engine.begin() as conn:
                conn.execute(inbox_table.update().values(received_at=old))
            time.sleep(0.6)  # several sweeps while the batch is still being accepted

        tax.store.accept = slow
        fed["customs"].publish_many(LODGED, [example(LODGED) for _ in range(3)])
        assert len(fed.recorders["tax"].wait_for(3)) == 3
        time.sleep(1.0)
        assert len(fed.recorders["tax"].seen) == 3
        assert tax.store.pending() == []
    finally:
        fed.bus.stop()


def test_an_expired_directory_stops_sending_until_a_renewed_one(fed: Federation):
    """On an expired directory a connector sends nothing (directory-expired): its grants and
    revocations may be out of date. Once a renewed directory is picked up it sends again."""
    fed.bus.publish_directory(expires_in=timedelta(seconds=1))
    customs = fed["customs"]
    assert customs.refresh_directory()
    time.sleep(1.1)
    for send in (
        lambda: customs.publish(LODGED, example(LODGED)),
        lambda: customs.publish_many(LODGED, [example(LODGED)]),
        lambda: fed["tax"].request(LOOKUP, fed.parties["civil"].subsystem, example(LOOKUP)),
    ):
        with pytest.raises(SendRefused) as refused:
            send()
        assert refused.value.reason == "directory-expired"
    assert fed.recorders["tax"].seen == []
    fed.bus.publish_directory()
    assert customs.refresh_directory()
    customs.publish(LODGED, example(LODGED))
    assert len(fed.recorders["tax"].wait_for(1)) == 1


def test_tampered_message_is_dead_lettered_logged_and_never_handled(fed: Federation, broker):
    """A forged payload lands in the dead-letter queue with its code, in the log as
    rejected, and the handler never sees it."""
    data = _lookup_from_tax(fed)
    doc = json.loads(data)
    doc["payload"] = base64.b64encode(b'{"cin": "AA000000"}').decode()
    _inject(broker, fed, "civil", json.dumps(doc).encode())
    dead = []
    for _ in range(100):
        dead += broker.drain(dead_letter_queue(fed.parties["civil"].subsystem.slug))
        if dead:
            break
        fed.recorders["civil"].arrived.wait(0.05)
    assert [m.headers[REJECT_HEADER] for m in dead] == ["bad-signature"]
    assert fed.recorders["civil"].seen == []
    fed["civil"].log.flush()
    store = SQLiteLogStore(fed.bus.folder / f"{fed.parties['civil'].subsystem.slug}.log.sqlite")
    records = [s.record for chunk in store.scan() for s in chunk]
    store.close()
    assert [(r.direction, r.reject_code) for r in records] == [("rejected", "bad-signature")]


def test_duplicate_request_is_handled_once(fed: Federation, broker):
    """The same request delivered twice reaches the handler once."""
    data = _lookup_from_tax(fed)
    _inject(broker, fed, "civil", data)
    assert len(fed.recorders["civil"].wait_for(1)) == 1
    _inject(broker, fed, "civil", data)
    assert len(fed.recorders["civil"].wait_for(2, timeout=1.0)) == 1


def test_held_messages_wait_durably_until_released(fed: Federation):
    """A handler that holds an event leaves it in the connector's database: a connector
    opened anew on that database still offers it, until the information system releases it."""
    tax = fed["tax"]
    tax.handlers[LODGED] = lambda _d, _c: (_ for _ in ()).throw(Hold())
    fed["customs"].publish(LODGED, example(LODGED))
    fed.recorders["treasury"].wait_for(1)
    for _ in range(100):
        if tax.held():
            break
        fed.recorders["tax"].arrived.wait(0.05)
    [held] = tax.held()
    assert held.payload == example(LODGED)
    reopened = ConnectorStore(str(fed.bus.folder / f"{fed.parties['tax'].subsystem.slug}.db"))
    assert [e.message_id for e in reopened.held()] == [held.message_id]
    assert tax.release([held.message_id, "f" * 32]) == 1
    assert reopened.held() == []
    reopened.close()


def test_database_outage_parks_deliveries_and_loses_nothing(fed: Federation, monkeypatch):
    """While the connector's database refuses writes, deliveries wait in the retry queue;
    once it answers again each is handled exactly once."""
    tax = fed["tax"]
    real_accept = tax.store.accept
    failures = {"left": 2}

    def flaky_accept(*args, **kwargs):
        if failures["left"] > 0:
            failures["left"] -= 1
            raise StoreError("database is locked")
        return real_accept(*args, **kwargs)

    monkeypatch.setattr(tax.store, "accept", flaky_accept)
    for _ in range(3):
        fed["customs"].publish(LODGED, example(LODGED))
    got = fed.recorders["tax"].wait_for(3)
    assert failures["left"] == 0
    assert len({d.message_id for d in got}) == len(got) == 3


def test_answer_that_cannot_leave_is_sent_again_without_rerunning_the_handler(
    fed: Federation, monkeypatch
):
    """When the broker refuses the response once, the stored answer goes out later; the
    handler ran once and the asker gets its answer."""
    civil = fed["civil"]
    real_publish = civil.transport.publish
    refusals = {"left": 1}

    def flaky_publish(messages, **kwargs):
        if refusals["left"] and any(m.routing_key.startswith("to.") for m in messages):
            refusals["left"] -= 1
            raise TransportError("connection lost")
        return real_publish(messages, **kwargs)

    monkeypatch.setattr(civil.transport, "publish", flaky_publish)
    asked = example(LOOKUP)
    answer = fed["tax"].request(LOOKUP, fed.parties["civil"].subsystem, asked)
    assert answer["person"]["cin"] == asked["cin"]
    assert refusals["left"] == 0
    assert len(fed.recorders["civil"].seen) == 1
