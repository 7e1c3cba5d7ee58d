"""What the parts of one connector share: its identity, collaborators, the inspector that
holds the current directory, and the message log with its lock."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from connectors._access_log import AccessLog
from connectors._metrics import Metrics
from connectors._store import ConnectorStore
from connectors._transport import Transport
from connectors.runtime._settings import RuntimeSettings
from exchange import Directory, Envelope, Inspector, KeyRing, SubsystemId
from exchange.log import Direction, LogEntry, MessageLog
from schemas import SchemaRegistry


@dataclass
class Core:
    """One connector's shared state. The directory lives in the inspector, so receiving and
    sending always judge by the same one."""

    me: SubsystemId
    keys: KeyRing
    transport: Transport
    store: ConnectorStore
    log: MessageLog
    registry: SchemaRegistry
    settings: RuntimeSettings
    inspector: Inspector
    access_log: AccessLog | None
    metrics: Metrics = field(default_factory=Metrics)
    # the receive path logs replies while holding it
    log_lock: threading.RLock = field(default_factory=threading.RLock)
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def directory(self) -> Directory:
        return self.inspector.directory

    def record(self, entries: Iterable[LogEntry], *, flush: bool = True) -> None:
        """Append to the message log (and make it durable unless ``flush`` is False: a
        later flush in the same batch will)."""
        with self.log_lock:
            for entry in entries:
                self.log.append(entry)
            if flush:
                self.flush()

    def flush(self) -> None:
        """Make what the message log holds durable."""
        with self.log_lock:
            self.log.flush()
            self.metrics.log_size.set(self.log.size)


def log_entry(
    direction: Direction, envelope: Envelope | None, data: bytes, code: str | None = None
) -> LogEntry:
    """The log entry of a message; bytes that did not parse are logged as they came."""
    if envelope is None:
        return LogEntry(direction, "0" * 32, "unknown", "unknown", "unknown", data, code)
    header = envelope.header
    recipient = str(header.recipient) if header.recipient is not None else header.topic or ""
    return LogEntry(direction, header.id, header.type, str(header.sender), recipient, data, code)
