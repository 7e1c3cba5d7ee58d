"""Purpose-bound grants between connectors on the real RabbitMQ: the stated purpose travels
signed in the header, a wrong one is refused at the source and, injected past it, at the
receiver with its own code, and an expired grant is refused as grant-expired."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import orjson
import pytest

from connectors import (
    REJECT_HEADER,
    LocalBus,
    PikaTransport,
    RemoteError,
    RuntimeSettings,
    SendRefused,
    dead_letter_queue,
    queue_name,
)
from exchange import LegalBasis, Recipient, build_envelope, utcnow
from exchange.sandbox import Sandbox
from tests.support import rabbit
from tests.support.federation import LOOKUP, LOOKUP_REPLY, REGISTRY, Recorder, civil_lookup, example

BASIS = LegalBasis("Code général des impôts, article 214", "CGI art. 214")


class Bus:
    """Tax asks civil for person lookups under grants with purposes."""

    def __init__(self, folder, grants):
        self.instance = rabbit.unique_instance()
        counter = itertools.count()
        sandbox = Sandbox(self.instance)
        self.civil = sandbox.add(f"{self.instance}/GOV/MOI/CIVIL-REGISTRY")
        self.tax = sandbox.add(f"{self.instance}/GOV/MEF/TAX")
        for entry in REGISTRY.entries():
            sandbox.classify(entry.type, entry.classification.value, entry.version, entry.digest)
        sandbox.provide(self.civil, LOOKUP, LOOKUP_REPLY)
        for purpose, expires in grants:
            sandbox.grant(
                self.tax, LOOKUP, self.civil, purpose=purpose, legal_basis=BASIS, expires=expires
            )
        self.bus = LocalBus(
            sandbox,
            folder,
            lambda: PikaTransport(name=f"{self.instance}-{next(counter)}"),
            # connectors take a new directory only when a test asks them to
            settings=RuntimeSettings(retry_base=0.05, directory_poll=3600),
        )
        self.seen = Recorder()
        self.bus.connector("civil", self.civil, {LOOKUP: civil_lookup(self.seen)}).start()
        self.bus.connector("tax", self.tax).start()

    def __getitem__(self, name: str):
        return self.bus.connectors[name]

    def close(self) -> None:
        self.bus.stop()
        rabbit.delete_queues(self.instance)

    def lookup_bytes(self, purpose: str | None) -> bytes:
        return build_envelope(
            self["tax"].signer(),
            message_type=LOOKUP,
            schema_version=REGISTRY.latest(LOOKUP).version,
            kind="request",
            payload=orjson.dumps(example(LOOKUP)),
            classification="INTERNAL",
            recipient=Recipient(self.civil.subsystem),
            purpose=purpose,
        )

    def dead_letters(self, count: int, timeout: float = 15.0) -> list[str]:
        found = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            found += rabbit.get_all(dead_letter_queue(self.civil.subsystem.slug))
            time.sleep(0.1)
        return [properties.headers[REJECT_HEADER] for properties, _ in found]


@pytest.fixture
def make(tmp_path):
    made = []

    def build(*grants):
        made.append(Bus(tmp_path / str(len(made)), grants))
        return made[-1]

    yield build
    for bus in made:
        bus.close()


def test_the_stated_purpose_reaches_the_handler(make):
    """With one grant the connector states its purpose by itself; the handler sees it."""
    bus = make(("tax-compliance-check", None))
    answer = bus["tax"].request(LOOKUP, bus.civil.subsystem, example(LOOKUP))
    assert answer["person"]["cin"] == example(LOOKUP)["cin"]
    (delivery,) = bus.seen.wait_for(1)
    assert delivery.purpose == "tax-compliance-check"


def test_a_wrong_purpose_is_refused_at_the_source(make):
    """The sending connector refuses a purpose its grants do not name, before sending."""
    bus = make(("tax-compliance-check", None))
    with pytest.raises(SendRefused) as refused:
        bus["tax"].request(LOOKUP, bus.civil.subsystem, example(LOOKUP), purpose="marketing")
    assert refused.value.reason == "purpose-mismatch"
    assert bus.seen.seen == []


def test_several_purposes_need_one_stated(make):
    """Two grants for two purposes: the sender must say which (purpose-required), and the
    one it states is the one the receiver sees."""
    bus = make(("tax-compliance-check", None), ("fraud-investigation", None))
    with pytest.raises(SendRefused) as refused:
        bus["tax"].request(LOOKUP, bus.civil.subsystem, example(LOOKUP))
    assert refused.value.reason == "purpose-required"
    bus["tax"].request(LOOKUP, bus.civil.subsystem, example(LOOKUP), purpose="fraud-investigation")
    assert [d.purpose for d in bus.seen.wait_for(1)] == ["fraud-investigation"]


def test_a_wrong_purpose_past_the_source_is_refused_by_the_receiver(make):
    """Injected straight into civil's queue, a request stating another purpose is
    dead-lettered purpose-mismatch and answered with a signed error: the sender is
    authenticated and holds a grant, so it can read why."""
    bus = make(("tax-compliance-check", None))
    rabbit.inject(queue_name(bus.civil.subsystem.slug), bus.lookup_bytes("marketing"))
    assert bus.dead_letters(1) == ["purpose-mismatch"]
    assert bus.seen.seen == []
    log = bus["civil"].log.store
    deadline = time.monotonic() + 10
    errors = []
    while not errors and time.monotonic() < deadline:
        errors = [
            s.record
            for chunk in log.scan()
            for s in chunk
            if s.record.message_type == "tabadul.error" and s.record.direction == "sent"
        ]
        time.sleep(0.1)
    assert len(errors) == 1


def test_an_expired_grant_is_refused_as_grant_expired(make):
    """A grant that ended refuses at the source and, injected past it, at the receiver."""
    bus = make(("tax-compliance-check", utcnow() + timedelta(seconds=2)))
    assert bus["tax"].request(LOOKUP, bus.civil.subsystem, example(LOOKUP))
    time.sleep(2.5)
    with pytest.raises(SendRefused) as refused:
        bus["tax"].request(LOOKUP, bus.civil.subsystem, example(LOOKUP))
    assert refused.value.reason == "grant-expired"
    rabbit.inject(queue_name(bus.civil.subsystem.slug), bus.lookup_bytes("tax-compliance-check"))
    assert bus.dead_letters(1) == ["grant-expired"]


def test_the_error_for_a_wrong_purpose_reaches_a_waiting_request(make):
    """A receiver with a narrower grant than the sender's directory (a newer directory not
    yet picked up by the sender) answers purpose-mismatch; the request raises RemoteError."""
    bus = make(("tax-compliance-check", None), ("fraud-investigation", None))
    sandbox = bus.bus.sandbox
    sandbox.draft.send_grants = [
        g for g in sandbox.draft.send_grants if g.purpose != "fraud-investigation"
    ]
    bus.bus.publish_directory()
    bus["civil"].refresh_directory()
    with pytest.raises(RemoteError) as refused:
        bus["tax"].request(
            LOOKUP, bus.civil.subsystem, example(LOOKUP), purpose="fraud-investigation"
        )
    assert refused.value.remote_code == "purpose-mismatch"
