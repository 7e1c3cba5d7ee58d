"""Several connectors on one machine: the sandbox's keys and directory, a transport per
connector (RabbitMQ or in memory), and a database and message log per connector in a folder.

Used by the demo, the benchmarks and the tests. A deployment runs one connector per host with
``tabadul connector run --config FILE`` instead; the objects are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from connectors._access_log import AccessLog
from connectors._handlers import Handler
from connectors._store import ConnectorStore
from connectors._transport import Transport
from connectors.runtime import Connector, RuntimeSettings
from exchange.log import MessageLog, SQLiteLogStore
from exchange.sandbox import Party, Sandbox
from schemas import SchemaRegistry, default_registry


@dataclass
class LocalBus:
    """Connectors for the parties of ``sandbox``; ``directory()`` republishes on change."""

    sandbox: Sandbox
    folder: Path
    transport_factory: Callable[[], Transport]
    registry: SchemaRegistry = field(default_factory=default_registry)
    settings: RuntimeSettings = field(default_factory=RuntimeSettings)
    connectors: dict[str, Connector] = field(default_factory=dict)
    _directory: bytes = b""

    def publish_directory(self, expires_in: timedelta = timedelta(days=1)) -> bytes:
        """Sign the sandbox's current directory; running connectors pick it up."""
        self._directory = self.sandbox.sign(expires_in=expires_in)
        return self._directory

    def connector(
        self,
        name: str,
        party: Party,
        handlers: Mapping[str, Handler] | None = None,
        *,
        replica: int = 0,
        access_log: AccessLog | None = None,
    ) -> Connector:
        """Create (not start) the connector of ``party``, registered under ``name``. A
        ``replica`` above 0 is another instance of the same subsystem: it shares the
        subsystem's queue and database and keeps its own message log."""
        if not self._directory:
            self.publish_directory()
        self.folder.mkdir(parents=True, exist_ok=True)
        key, _ = party.keys.signer()
        suffix = f".{replica}" if replica else ""
        connector = Connector(
            subsystem=party.subsystem,
            keys=party.keys,
            ca_certificate=self.sandbox.ca.certificate,
            directory_source=lambda: self._directory,
            transport=self.transport_factory(),
            store=ConnectorStore(str(self.folder / f"{party.subsystem.slug}.db")),
            log=MessageLog(
                SQLiteLogStore(self.folder / f"{party.subsystem.slug}{suffix}.log.sqlite"),
                log_id=str(party.subsystem),
                signing_key=key,
            ),
            registry=self.registry,
            handlers=handlers,
            settings=self.settings,
            access_log=access_log,
        )
        self.connectors[name] = connector
        return connector

    def stop(self) -> None:
        for connector in self.connectors.values():
            connector.stop()
