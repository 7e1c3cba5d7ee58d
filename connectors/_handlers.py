"""What an agency's code sees: a delivery, a context to call others, and handlers.

A handler is a plain function registered per message type::

    def answer_lookup(delivery: Delivery, ctx: Context) -> dict:
        person = registry.find(delivery.payload["cin"])
        if person is None:
            return {"found": False}
        return {"found": True, "person": person}

For a request, the handler's return value is the response payload (validated against the
response type's schema, then signed and sent back). For events and one-way messages the
return value is ignored. A handler raises :class:`Refuse` to answer a request with an error
response at once; any other exception is treated as transient: the delivery is tried again
with backoff, and after the last attempt it is dead-lettered with the code ``handler-failed``.
A handler raises :class:`Hold` to keep an event or one-way message in the connector's
durable inbox until the information system pulls and acknowledges it.

A plain handler is *at least once*: killed after its effect and before its message is
recorded done, it runs again after restart. A handler whose effect is a write to the
connector's own database can be *exactly once*: wrapped in :class:`Transactional`, it is
given the transaction in which the runtime also records its message done (and stores a
request's response), so its writes and the done mark commit together or not at all::

    def record_declaration(delivery: Delivery, ctx: Context, tx: sa.Connection) -> None:
        tx.execute(declarations.insert(), {"number": delivery.payload["declaration_number"]})

    handlers = {"customs.declaration-lodged": Transactional(record_declaration, metadata)}

``metadata`` (optional) holds the handler's own tables; the connector creates them in its
database when it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from exchange import SubsystemId


@dataclass(frozen=True, slots=True)
class Delivery:
    """An accepted message: verified, authorised, decrypted and valid."""

    message_id: str
    message_type: str
    kind: str
    sender: SubsystemId
    payload: Any
    correlation_id: str | None = None
    attempt: int = 1
    purpose: str | None = None  # what a request or one-way message states its purpose is


class Context(Protocol):
    """What a handler may do on the bus, as its own subsystem."""

    @property
    def me(self) -> SubsystemId: ...

    def request(
        self,
        message_type: str,
        to: str | SubsystemId,
        payload: Any,
        *,
        timeout: float = 10.0,
        purpose: str | None = None,
    ) -> Any:
        """Send a request for ``purpose`` (default: the only one its grant allows) and wait
        for the response payload. Raises :class:`~connectors.RemoteError` when the provider
        answers with an error and :class:`~connectors.RequestTimeout` when it does not
        answer in time."""

    def send(
        self, message_type: str, to: str | SubsystemId, payload: Any, *, purpose: str | None = None
    ) -> str:
        """Send a one-way message; returns its message id once the broker confirmed it."""

    def publish(self, message_type: str, payload: Any) -> str:
        """Publish an event to every subscriber; returns its message id once confirmed."""


class Refuse(Exception):
    """Raised by a handler to answer a request with an error response (not retried)."""

    def __init__(self, message: str, code: str = "refused") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Hold(Exception):
    """Raised by a handler to leave the message in the connector's durable inbox, where the
    information system pulls it (``GET /inbox``) and acknowledges it (``POST /inbox/ack``)."""


TransactionalHandler = Callable[[Delivery, Context, sa.Connection], Any]


@dataclass(frozen=True, slots=True)
class Transactional:
    """A handler run inside the transaction that records its message done: its writes on
    ``tx`` commit with the done mark (and a request's stored response), or are rolled back
    with it. Refuse, Hold and failures roll its writes back; a retry starts afresh. Keep the
    transaction short: on SQLite its first write holds the database's write lock until it
    commits."""

    handler: TransactionalHandler
    tables: sa.MetaData | None = None


Handler = Callable[[Delivery, Context], Any] | Transactional
