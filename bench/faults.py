"""Faults during traffic: five connectors on the real RabbitMQ carry mixed traffic while one
fault is injected, and every message is accounted for.

    python -m bench.faults [--messages 10000] [--fault NAME ...]    # or: tabadul bench faults

The bus: customs publishes declarations (events) that tax and treasury receive; the tax desk
asks the civil registry for person lookups (request/response). Customs and the desk run in
this process; civil, tax and treasury each run in their own process, built from their
configuration file as deployed, so that a fault can kill one. Four messages in five are
events, one in five a request.

Every handler writes its call into an effects database: one row per receiver, business key
(the declaration number, the case reference) and message id, with a call count and the time
of the first call. Civil and treasury write into a SQLite file shared by the processes, after
their handler ran and before the connector records the message done: they are at least once.
Tax's handler is :class:`~connectors.Transactional`: it writes its row into tax's own
connector database, in the transaction that records the message done, so a kill of tax
leaves no handler call behind that its done mark does not cover (exactly once).

After the traffic the run waits until every message confirmed by the broker is either
handled or dead-lettered, then reports per fault:

- ``sent``: messages the broker confirmed (events, and requests);
- ``delivered``: business keys handled, per receiver, of those expected;
- ``rejected``: dead letters by reject code (a refusal is an outcome, not a loss);
- ``lost``: confirmed but neither handled nor dead-lettered within the settle time (goal 0);
- ``copies_absorbed``: second copies refused as ``duplicate`` (a resend after a lost confirm,
  a redelivery): the receivers' replay check at work, not a loss;
- ``duplicated``: business keys handled as two different messages, which a handler keying
  its effect on the message id would apply twice (goal 0);
- ``handler_reruns``: keys whose handler's effect was made twice for the same message (a
  plain handler whose connector was killed after the effect and before the done mark: such
  handlers are at least once, and the message id they are given is what keeps their effect
  single; a transactional handler's effect commits with its done mark, so it has none);
- ``recovery_s``: from the end of the fault (or the moment it took effect, for a node lost)
  to the first handler call after it at the receivers it touched; ``longest_pause_s``: the
  longest gap between handler calls there.

A fault that stops or changes a shared service restores it in a ``finally`` (the broker is
started again even if the run fails). The queues of the run are deleted at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pika  # type: ignore[import-untyped]  # pika ships no type information
import sqlalchemy as sa

from bench._children import connector_from, delete_queues, signal_file, wait_for, write_configs
from bench._timing import machine
from connectors import (
    REJECT_HEADER,
    Connector,
    ConnectorError,
    Delivery,
    NotConfirmed,
    RemoteError,
    RequestTimeout,
    SendRefused,
    Transactional,
    TransportError,
    dead_letter_queue,
    queue_name,
    retry_queue,
)
from exchange import ExchangeError, SubsystemId, parse_envelope, utcnow
from exchange.sandbox import Party, Sandbox
from schemas import default_registry

LODGED = "customs.declaration-lodged"
LOOKUP = "civil.person-lookup.request"
LOOKUP_REPLY = "civil.person-lookup.response"
LOCAL = "amqp://guest:guest@127.0.0.1:5672"  # the machine's broker
AGENCIES = {
    "civil": "GOV/MOI/CIVIL-REGISTRY",
    "tax": "GOV/MEF/TAX",
    "treasury": "GOV/MEF/TREASURY",
    "customs": "GOV/MEF/CUSTOMS",
    "desk": "GOV/MEF/TAX-DESK",
}
RECEIVERS = ("civil", "tax", "treasury")
SUBSCRIBERS = ("tax", "treasury")
POLL = 0.5  # the connectors look for a new directory this often (seconds)
RUNTIME = (
    f"prefetch = 200\nbatch = 100\nhandler_workers = 2\nrequest_timeout = 30\n"
    f"directory_poll = {POLL}\ntakeover_after = 3\n"
)
Progress = Callable[[str], None]


# --------------------------------------------------------------------------- effects


DeadLetters = dict[str, dict[str, list[str]]]  # receiver -> business key -> reject codes


@dataclass(frozen=True, slots=True)
class Calls:
    """The handler calls for one business key at one receiver."""

    n: int  # handler calls in all
    messages: int  # distinct message ids among them
    first: float  # time of the first call

    @property
    def reruns(self) -> int:
        """Calls beyond one per message: a handler run again after a crash."""
        return self.n - self.messages


_CALLS_COLUMNS = (
    "(receiver TEXT, key TEXT, message_id TEXT, n INTEGER, first REAL,"
    " PRIMARY KEY (receiver, key, message_id))"
)
_RECORD_CALL = (
    "INSERT INTO calls VALUES ({}) ON CONFLICT (receiver, key, message_id) DO UPDATE SET n = n + 1"
)
_CALLS_QUERY = (
    "SELECT receiver, key, sum(n), count(*), min(first) FROM calls GROUP BY receiver, key"
)
# tax's handler calls, in tax's connector database (written by its transactional handler)
TRANSACTIONAL_CALLS = sa.MetaData()
sa.Table(
    "calls",
    TRANSACTIONAL_CALLS,
    sa.Column("receiver", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("message_id", sa.Text, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("first", sa.Float, nullable=False),
)


class Effects:
    """The handlers' calls, shared by every process of a run (SQLite in WAL mode: a call
    is on disk before the handler returns, so it survives the process being killed), and
    those transactional handlers wrote into the connector databases ``transactional``."""

    def __init__(self, path: Path, transactional: Iterable[Path] = ()) -> None:
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(f"CREATE TABLE IF NOT EXISTS calls {_CALLS_COLUMNS}")
        self._transactional = list(transactional)
        self._lock = threading.Lock()

    def record(self, receiver: str, key: str, message_id: str) -> None:
        with self._lock:
            self._db.execute(
                _RECORD_CALL.format("?, ?, ?, 1, ?"), (receiver, key, message_id, time.time())
            )

    def calls(self) -> dict[str, dict[str, Calls]]:
        """receiver -> business key -> its handler calls."""
        found: dict[str, dict[str, Calls]] = {r: {} for r in RECEIVERS}
        with self._lock:
            rows = list(self._db.execute(_CALLS_QUERY))
        for database in self._transactional:
            rows += _transactional_calls(database)
        for receiver, key, n, messages, first in rows:
            found[receiver][key] = Calls(n, messages, first)
        return found

    def close(self) -> None:
        self._db.close()


def _transactional_calls(database: Path) -> list[tuple[Any, ...]]:
    """The calls a transactional handler recorded in a connector's database (none before
    the connector created its table)."""
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=60)) as db:
            return list(db.execute(_CALLS_QUERY))
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise


def record_in(tx: sa.Connection, receiver: str, key: str, message_id: str) -> None:
    """A transactional handler's record of its call, in its connector's transaction."""
    tx.execute(
        sa.text(_RECORD_CALL.format(":receiver, :key, :message_id, 1, :first")),
        {"receiver": receiver, "key": key, "message_id": message_id, "first": time.time()},
    )


def _child(role: str, config: Path, effects_path: Path) -> None:
    """A receiving connector until SIGTERM: civil answers lookups, tax and treasury take
    declarations; each handler records its call. A file ``NAME.skew`` beside the config,
    while it exists, sets this connector's clock off by that many seconds."""
    connector = connector_from(config)
    effects = Effects(effects_path)
    if role == "civil":
        answer = default_registry().latest(LOOKUP_REPLY).examples[0]

        def lookup(delivery: Delivery, _ctx: Any) -> Any:
            effects.record(role, delivery.payload["case_reference"], delivery.message_id)
            return answer

        connector.handlers[LOOKUP] = lookup
    elif role == "tax":  # exactly once: its call commits with the message's done mark
        connector.handlers[LODGED] = Transactional(
            lambda delivery, _ctx, tx: record_in(
                tx, role, delivery.payload["declaration_number"], delivery.message_id
            ),
            TRANSACTIONAL_CALLS,
        )
    else:
        connector.handlers[LODGED] = lambda delivery, _ctx: effects.record(
            role, delivery.payload["declaration_number"], delivery.message_id
        )
    finished = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: finished.set())
    threading.Thread(target=_orphaned, args=(finished,), daemon=True).start()
    threading.Thread(
        target=_follow_clock, args=(connector, config.with_suffix(".skew"), finished), daemon=True
    ).start()
    connector.start()
    signal_file(config.with_suffix(".ready"), "ready")
    finished.wait()
    connector.stop()
    effects.close()


def _orphaned(finished: threading.Event) -> None:
    """Stop when the parent is gone, however it ended (this process is handed to another
    parent then)."""
    parent = os.getppid()
    while not finished.wait(0.5):
        if os.getppid() != parent:
            finished.set()


def _follow_clock(connector: Connector, skew_file: Path, finished: threading.Event) -> None:
    """Fault injection: the receiving side's clock follows the skew file (written whole by
    :func:`signal_file`; no file means no skew)."""
    skew = 0.0
    while not finished.wait(0.1):
        try:
            wanted = float(skew_file.read_text() or 0)
        except FileNotFoundError:
            wanted = 0.0
        if wanted != skew:
            skew = wanted
            inspector = connector.core.inspector  # the clock is what the fault changes
            inspector.clock = _clock(timedelta(seconds=skew))


def _clock(skew: timedelta) -> Callable[[], datetime]:
    return lambda: utcnow() + skew


# --------------------------------------------------------------------------- the bus


@dataclass
class Bus:
    """The five connectors of one run: the sandbox that signs their directory, the
    receiving processes, and the sending connectors of this process."""

    folder: Path
    instance: str
    broker_urls: tuple[str, ...]
    vhost: str | None = None
    sandbox: Sandbox = field(init=False)
    parties: dict[str, Party] = field(init=False)
    configs: dict[str, Path] = field(init=False)
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    senders: dict[str, Connector] = field(default_factory=dict)

    def __post_init__(self) -> None:
        registry = default_registry()
        self.sandbox = Sandbox(self.instance)
        self.parties = {
            name: self.sandbox.add(f"{self.instance}/{path}") for name, path in AGENCIES.items()
        }
        for entry in registry.entries():
            self.sandbox.classify(
                entry.type, entry.classification.value, entry.version, entry.digest
            )
        parties = self.parties
        self.sandbox.publish(parties["customs"], LODGED)
        for name in SUBSCRIBERS:
            self.sandbox.subscribe(parties[name], LODGED)
        self.sandbox.provide(parties["civil"], LOOKUP, LOOKUP_REPLY)
        self.sandbox.grant(parties["desk"], LOOKUP, parties["civil"])
        self.configs = write_configs(
            self.folder, self.sandbox, parties, runtime=RUNTIME, broker_urls=self.broker_urls
        )
        replica = self.folder / "tax-2.toml"
        replica.write_text(
            self.configs["tax"].read_text("utf-8").replace("tax.log.sqlite", "tax-2.log.sqlite"),
            encoding="utf-8",
        )
        self.configs["tax-2"] = replica

    @property
    def effects_path(self) -> Path:
        return self.folder / "effects.sqlite"

    def effects(self) -> Effects:
        """The handler calls of the run: the shared file, and tax's connector database."""
        return Effects(self.effects_path, [self.folder / "tax.db"])

    def write_directory(self, expires_in: timedelta = timedelta(hours=1)) -> None:
        """Sign the sandbox's directory (the next serial) where every connector reads it."""
        signal_file(
            self.folder / "directory.json", self.sandbox.sign(expires_in=expires_in).decode()
        )

    def spawn(self, *names: str) -> None:
        """Start the receiving connectors ``names`` (``tax-2``: a second replica of tax),
        each in its own process, and wait until every one consumes."""
        for name in names:
            config = self.configs[name]
            config.with_suffix(".ready").unlink(missing_ok=True)
            self.children[name] = subprocess.Popen(  # noqa: S603 - our own module and arguments
                [
                    sys.executable,
                    "-m",
                    "bench.faults",
                    "--child",
                    name.partition("-")[0],
                    "--config",
                    str(config),
                    "--effects",
                    str(self.effects_path),
                ],
            )
        for name in names:
            wait_for(self.configs[name].with_suffix(".ready"), 60)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a receiving connector and wait for it to end (SIGKILL after 60 s)."""
        child = self.children[name]
        child.send_signal(sig)
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=60)
        del self.children[name]

    def start(self) -> None:
        self.spawn(*RECEIVERS)
        for name in ("customs", "desk"):
            self.senders[name] = connector_from(self.configs[name])
            self.senders[name].start()

    def stop(self) -> None:
        for connector in self.senders.values():
            with contextlib.suppress(ConnectorError, ExchangeError):
                connector.stop()
        for name in list(self.children):
            self.kill(name, signal.SIGTERM)
        _delete_queues(self)

    def subsystem(self, name: str) -> SubsystemId:
        return self.parties[name].subsystem


def admin(urls: tuple[str, ...]) -> pika.BlockingConnection:
    """A plain pika connection to the first broker of ``urls`` that answers."""
    failure: Exception | None = None
    for url in urls:
        try:
            return pika.BlockingConnection(pika.URLParameters(url))
        except pika.exceptions.AMQPError as exc:
            failure = exc
    raise TransportError(f"no broker of {len(urls)} answers: {failure}")


def _delete_queues(bus: Bus) -> None:
    with contextlib.suppress(pika.exceptions.AMQPError, TransportError):
        connection = admin(bus.broker_urls)
        delete_queues(connection.channel(), bus.instance, AGENCIES.values())
        connection.close()


def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(  # noqa: S603 - fixed arguments
        ["rabbitmqctl", *args],  # noqa: S607 - the broker's own tool, from PATH
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


# --------------------------------------------------------------------------- faults


@dataclass
class Window:
    """When a fault began and ended (time.time()), and which receivers it touched."""

    began: float = 0.0
    ended: float = 0.0
    touched: tuple[str, ...] = RECEIVERS
    description: str = ""
    notes: dict[str, Any] = field(default_factory=dict)


def _none(_bus: Bus, _window: Window) -> None:
    """No fault: the baseline."""


def _connections_dropped(bus: Bus, window: Window) -> None:
    """The broker closes every connection of the run, three times, half a second apart."""
    if bus.vhost is None:
        raise ValueError("connections-dropped needs a bus on a virtual host of its own")
    listed = _rabbitmqctl("list_connections", "-p", bus.vhost, "pid", "-q", "--no-table-headers")
    window.notes["connections_open"] = len(listed.splitlines())
    for drop in range(3):
        if drop:
            time.sleep(0.5)
        _rabbitmqctl("close_all_connections", "--vhost", bus.vhost, "fault injection")


def _broker_restarted(_bus: Bus, window: Window) -> None:
    """The RabbitMQ application is stopped for three seconds, then started again. (This
    stops the whole local broker, for everyone using it, for those seconds.)"""
    # One detached shell stops and starts it: the broker comes back even if this process
    # is killed meanwhile.
    restart = subprocess.Popen(
        ["sh", "-c", "rabbitmqctl stop_app; sleep 3; rabbitmqctl start_app"],  # noqa: S607
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        restart.wait(timeout=180)
        window.ended = time.time()  # the broker is back; recovery counts from here
    finally:
        _rabbitmqctl("start_app")  # does nothing on a running broker
        _rabbitmqctl("await_startup")


def _connector_killed(bus: Bus, window: Window) -> None:
    """Tax's connector is killed with SIGKILL mid-batch and started again a second later."""
    window.touched = ("tax",)
    bus.kill("tax")
    time.sleep(1.0)
    bus.spawn("tax")


def _replica_killed(bus: Bus, window: Window) -> None:
    """Tax runs two replicas (one queue, one database, a log each); one is killed with
    SIGKILL and not started again: the other carries on."""
    window.touched = ("tax",)
    bus.kill("tax")


def _database_locked(bus: Bus, window: Window) -> None:
    """Tax's connector database is locked by another process for eight seconds (beyond
    the store's five-second busy timeout): its writes fail until the lock goes."""
    window.touched = ("tax",)
    db = sqlite3.connect(bus.folder / "tax.db", timeout=30, isolation_level=None)
    try:
        db.execute("BEGIN EXCLUSIVE")
        time.sleep(8.0)
    finally:
        db.execute("ROLLBACK")
        db.close()


def _clock_skewed(bus: Bus, window: Window) -> None:
    """Treasury's clock runs two minutes slow for four seconds (beyond the 30 s skew):
    what arrives meanwhile looks as if sent from the future and is refused by code."""
    window.touched = ("treasury",)
    skew = bus.configs["treasury"].with_suffix(".skew")
    try:
        signal_file(skew, "-120")
        time.sleep(4.0)
    finally:
        skew.unlink(missing_ok=True)


def _directory_renewed(bus: Bus, _window: Window) -> None:
    """The directory is replaced by one that expires three seconds later; it is renewed
    two seconds after it expired. Meanwhile nobody judges or sends."""
    bus.write_directory(expires_in=timedelta(seconds=3))
    time.sleep(5.0)
    bus.write_directory()


def _key_rotated(bus: Bus, window: Window) -> None:
    """Customs gets a new generation of keys: the directory with its certificates goes
    out first, and once the connectors have it, customs signs with the new key."""
    party = bus.parties["customs"]
    generation = bus.sandbox.rotate(party, overlap=timedelta(minutes=10))
    bus.write_directory()
    time.sleep(4 * POLL)
    bus.senders["customs"].keys.generations.append(generation)
    window.notes["generation"] = generation.n


FAULTS: dict[str, Callable[[Bus, Window], None]] = {
    "none": _none,
    "connections-dropped": _connections_dropped,
    "broker-restarted": _broker_restarted,
    "connector-killed": _connector_killed,
    "replica-killed": _replica_killed,
    "database-locked": _database_locked,
    "clock-skewed": _clock_skewed,
    "directory-renewed": _directory_renewed,
    "key-rotated": _key_rotated,
}


# --------------------------------------------------------------------------- traffic


@dataclass
class Tally:
    """What the senders saw."""

    events: list[str] = field(default_factory=list)  # confirmed declaration numbers
    requests: list[str] = field(default_factory=list)  # confirmed case references
    answered: int = 0
    timed_out: int = 0
    unconfirmed: list[str] = field(default_factory=list)
    send_refused: Counter[str] = field(default_factory=Counter)
    send_errors: Counter[str] = field(default_factory=Counter)
    remote_refused: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


REFUSED_FOR = 120.0  # a sender refused this long (a directory never renewed) gives up


def _retrying(tally: Tally, send: Callable[[], object]) -> bool:
    """Send until the bus lets us: a refusal means nothing left (an expired directory, say),
    so the same payloads go again. False when the broker did not confirm, or the send failed
    after leaving (such keys are not expected, but reported if handled)."""
    deadline = time.monotonic() + REFUSED_FOR
    while True:
        try:
            send()
        except SendRefused as exc:
            with tally.lock:
                tally.send_refused[exc.reason] += 1
            if time.monotonic() > deadline:
                raise TimeoutError(f"sending refused for {REFUSED_FOR:g} s: {exc}") from exc
            time.sleep(0.2)
            continue
        except (NotConfirmed, TransportError):
            return False
        except (ConnectorError, ExchangeError) as exc:
            with tally.lock:
                tally.send_errors[exc.code] += 1
            return False
        return True


class _Sender(threading.Thread):
    """A sending thread whose exception is raised again by :meth:`finish`."""

    def __init__(self, target: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        super().__init__(daemon=True)
        self._work = functools.partial(target, *args, **kwargs)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by finish()
            self.error = exc

    def finish(self) -> None:
        self.join()
        if self.error is not None:
            raise self.error


def send_events(
    bus: Bus,
    tally: Tally,
    rate: float,
    *,
    count: int | None = None,
    midway: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Customs publishes declarations 10 at a time at ``rate`` per second: ``count`` of
    them (``midway`` is set once 30 % are out), or until ``stop`` is set."""
    declaration = default_registry().latest(LODGED).examples[0]
    customs = bus.senders["customs"]
    began = time.monotonic()
    try:
        for first in itertools.count(0, 10):
            if (count is not None and first >= count) or (stop is not None and stop.is_set()):
                break
            last = first + 10 if count is None else min(count, first + 10)
            numbers = [f"301-2026-{i:07d}" for i in range(first, last)]
            payloads = [{**declaration, "declaration_number": n} for n in numbers]
            ok = _retrying(tally, functools.partial(customs.publish_many, LODGED, payloads))
            with tally.lock:
                (tally.events if ok else tally.unconfirmed).extend(numbers)
            if midway is not None and count is not None and first >= count * 0.3:
                midway.set()
            ahead = began + last / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    finally:
        if midway is not None:
            midway.set()  # never leave the fault waiting, even when sending failed


def send_requests(bus: Bus, keys: Iterable[str], tally: Tally) -> None:
    """The tax desk asks civil about each case reference, one at a time."""
    asked = default_registry().latest(LOOKUP).examples[0]
    desk, civil = bus.senders["desk"], bus.subsystem("civil")
    for key in keys:
        payload = {**asked, "case_reference": key}
        outcome: list[str] = []

        def ask(p: dict[str, Any] = payload, out: list[str] = outcome) -> None:
            try:
                desk.request(LOOKUP, civil, p)
                out.append("answered")
            except RequestTimeout:
                out.append("timed-out")
            except RemoteError as exc:
                out.append(f"refused:{exc.remote_code}")

        confirmed = _retrying(tally, ask)
        with tally.lock:
            if not confirmed:
                tally.unconfirmed.append(key)
                continue
            tally.requests.append(key)
            if outcome == ["answered"]:
                tally.answered += 1
            elif outcome == ["timed-out"]:
                tally.timed_out += 1
            else:
                tally.remote_refused[outcome[0].partition(":")[2]] += 1


# --------------------------------------------------------------------------- accounting


def _dead_letters(bus: Bus, found: DeadLetters) -> None:
    """Take the run's dead letters: receiver -> business key -> reject codes."""
    connection = admin(bus.broker_urls)
    channel = connection.channel()
    for name in RECEIVERS:
        queue = dead_letter_queue(bus.subsystem(name).slug)
        while True:
            _method, properties, body = channel.basic_get(queue, auto_ack=True)
            if body is None:
                break
            code = str((properties.headers or {}).get(REJECT_HEADER, "?"))
            payload = orjson.loads(parse_envelope(body).payload)
            key = payload.get("declaration_number") or payload.get("case_reference")
            found[name].setdefault(str(key), []).append(code)
    connection.close()


def refused(dead: DeadLetters) -> dict[str, set[str]]:
    """Per receiver, the keys refused with a code. A ``duplicate`` dead letter is a second
    copy of something already accepted (a resend after a lost confirm, a redelivery): it
    settles nothing, since the accepted copy must still be handled."""
    return {
        r: {k for k, codes in keys.items() if set(codes) - {"duplicate"}}
        for r, keys in dead.items()
    }


def _expected(tally: Tally) -> dict[str, set[str]]:
    return {
        "civil": set(tally.requests),
        "tax": set(tally.events),
        "treasury": set(tally.events),
    }


def queue_depths(bus: Bus) -> dict[str, int]:
    """Messages waiting per receiver, in its queue and its retry queue."""
    connection = admin(bus.broker_urls)
    channel = connection.channel()
    try:
        return {
            name: sum(
                channel.queue_declare(queue, passive=True).method.message_count
                for queue in (queue_name(slug), retry_queue(slug))
            )
            for name in RECEIVERS
            for slug in [bus.subsystem(name).slug]
        }
    finally:
        connection.close()


CallsByReceiver = dict[str, dict[str, Calls]]


def settle_all(
    bus: Bus, tally: Tally, effects: Effects, timeout: float
) -> tuple[CallsByReceiver, DeadLetters]:
    """Wait until every confirmed message is handled or dead-lettered, the queues are empty
    and the handler calls have stopped changing (so late copies and re-runs are counted
    too), or ``timeout`` seconds."""
    expected = _expected(tally)
    rejected: DeadLetters = {name: {} for name in RECEIVERS}
    deadline = time.monotonic() + timeout
    seen = -1
    while True:
        _dead_letters(bus, rejected)
        calls = effects.calls()
        settled = refused(rejected)
        missing = sum(len(expected[r] - calls[r].keys() - settled[r]) for r in RECEIVERS)
        made = sum(c.n for keys in calls.values() for c in keys.values())
        quiet = missing == 0 and made == seen and not any(queue_depths(bus).values())
        if quiet or time.monotonic() > deadline:
            return calls, rejected
        seen = made
        time.sleep(0.5)


def account(tally: Tally, calls: CallsByReceiver, rejected: DeadLetters) -> dict[str, Any]:
    """What became of every message the senders saw confirmed (see the module docstring)."""
    expected = _expected(tally)
    settled = refused(rejected)
    lost = {r: sorted(expected[r] - calls[r].keys() - settled[r]) for r in RECEIVERS}
    codes = [c for r in RECEIVERS for cs in rejected[r].values() for c in cs]
    duplicated = {r: sorted(k for k, c in calls[r].items() if c.messages > 1) for r in RECEIVERS}
    reruns = {r: sorted(k for k, c in calls[r].items() if c.reruns) for r in RECEIVERS}
    unconfirmed = set(tally.unconfirmed)
    return {
        "sent": {"events": len(tally.events), "requests": len(tally.requests)},
        "handler_calls_expected": sum(len(keys) for keys in expected.values()),
        "delivered": {r: len(expected[r] & calls[r].keys()) for r in RECEIVERS},
        "delivered_exactly_once": sum(
            1 for r in RECEIVERS for k in expected[r] if k in calls[r] and calls[r][k].n == 1
        ),
        "rejected": dict(Counter(c for c in codes if c != "duplicate")),
        "copies_absorbed": codes.count("duplicate"),
        "lost": sum(len(keys) for keys in lost.values()),
        "lost_keys": {r: keys[:10] for r, keys in lost.items() if keys},
        "duplicated": sum(len(keys) for keys in duplicated.values()),
        "duplicated_keys": {r: keys[:10] for r, keys in duplicated.items() if keys},
        "handler_reruns": sum(len(keys) for keys in reruns.values()),
        "handler_rerun_keys": {r: keys[:10] for r, keys in reruns.items() if keys},
        "unconfirmed": len(unconfirmed),
        "unconfirmed_but_handled": sum(len(unconfirmed & calls[r].keys()) for r in RECEIVERS),
        "requests_answered": tally.answered,
        "requests_timed_out": tally.timed_out,
        "requests_refused": dict(tally.remote_refused),
        "sends_refused_then_retried": dict(tally.send_refused),
        "send_errors": dict(tally.send_errors),
    }


def _report(
    fault: str, tally: Tally, *, calls: CallsByReceiver, rejected: DeadLetters, window: Window,
    elapsed: float,
) -> dict[str, Any]:  # fmt: skip
    times = sorted(c.first for r in window.touched for c in calls[r].values())
    after = [t for t in times if t >= window.ended]
    pauses = [b - a for a, b in itertools.pairwise(times)]
    return {
        "fault": fault,
        "description": " ".join(window.description.split()),
        **account(tally, calls, rejected),
        "fault_seconds": round(window.ended - window.began, 2),
        "recovery_s": round(after[0] - window.ended, 3) if after else None,
        "longest_pause_s": round(max(pauses), 3) if pauses else None,
        "elapsed_s": round(elapsed, 2),
        "notes": window.notes,
    }


# --------------------------------------------------------------------------- runs


@contextlib.contextmanager
def running_bus(
    folder: Path, broker_urls: tuple[str, ...] | None = None, *, replicas: bool = False
) -> Iterator[Bus]:
    """A started bus (tax with a second replica when ``replicas``); stopped and its queues
    deleted on leaving, whatever happened. Without ``broker_urls`` the bus gets a virtual
    host of its own on the local broker (removed at the end), so that a fault can aim at its
    connections alone."""
    instance = "F" + uuid.uuid4().hex[:8].upper()
    vhost = None if broker_urls else f"tabadul-{instance}"
    if vhost:
        _rabbitmqctl("add_vhost", vhost)
    try:
        if vhost:
            _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        bus = Bus(Path(folder), instance, broker_urls or (f"{LOCAL}/{vhost}",), vhost)
        try:
            bus.start()
            if replicas:
                bus.spawn("tax-2")
            yield bus
        finally:
            bus.stop()
    finally:
        if vhost:
            _rabbitmqctl("delete_vhost", vhost)


def run_fault(
    fault: str,
    messages: int = 10_000,
    *,
    rate: float = 600.0,
    settle: float = 120.0,
    broker_urls: tuple[str, ...] | None = None,
    inject: Callable[[Bus, Window], None] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Carry ``messages`` (4 in 5 events at ``rate`` per second, 1 in 5 requests from two
    desks) while ``fault`` (or ``inject``) happens once 30 % of the events are out."""
    say = progress or (lambda _step: None)
    act = inject or FAULTS[fault]
    requests = messages // 5
    events = messages - requests
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_bus(Path(tmp), broker_urls, replicas=fault == "replica-killed") as bus,
    ):
        say(f"{fault}: {events} events and {requests} requests")
        tally, started, window = Tally(), threading.Event(), Window(description=act.__doc__ or "")
        effects = bus.effects()
        keys = [f"RQ/{i:06d}" for i in range(requests)]
        began = time.monotonic()
        senders = [
            _Sender(send_events, bus, tally, rate, count=events, midway=started),
            *(_Sender(send_requests, bus, keys[half::2], tally) for half in range(2)),
        ]
        for thread in senders:
            thread.start()
        try:
            started.wait()  # set at 30 %, or when the events thread ends however it ends
            say(f"{fault}: injecting")
            window.began = time.time()
            act(bus, window)
            window.ended = window.ended or time.time()  # a fault may say when it took effect
        finally:
            for thread in senders:
                thread.finish()
        say(f"{fault}: settling")
        calls, rejected = settle_all(bus, tally, effects, settle)
        elapsed = time.monotonic() - began
        effects.close()
    return _report(fault, tally, calls=calls, rejected=rejected, window=window, elapsed=elapsed)


def run(
    messages: int = 10_000,
    faults: list[str] | None = None,
    *,
    rate: float = 600.0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every fault (or those named), one run each; the report of each."""
    chosen = faults or list(FAULTS)
    results = [run_fault(f, messages, rate=rate, progress=progress) for f in chosen]
    return {
        "benchmark": "faults",
        "machine": machine(),
        "messages_per_fault": messages,
        "results": results,
        "goals": {"lost": 0, "duplicated": 0},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=600.0)
    parser.add_argument("--fault", action="append", choices=sorted(FAULTS))
    parser.add_argument("--child", choices=RECEIVERS, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--effects", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.config, args.effects)
        return 0
    report = run(args.messages, args.fault, rate=args.rate, progress=print)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
