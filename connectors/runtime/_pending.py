"""Requests of ours waiting for their response, and how a response settles one."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import orjson

from connectors._errors import RemoteError
from connectors._store import ConnectorStore
from exchange import Accepted, Header, KeyRing, SubsystemId, open_payload, parse_envelope

logger = logging.getLogger("connectors.runtime")

# How often a waiting request also looks for its response in the shared database (where
# another replica of this subsystem keeps a response that reached it).
_ANSWER_POLL = 0.1


def result_of(header: Header, payload: Any) -> Any:
    """A response's payload, or the provider's refusal raised as :class:`RemoteError`."""
    if header.kind == "error":
        raise RemoteError(
            f"{header.sender} refused the request: {payload.get('message', '')}",
            str(payload.get("code")),
            list(payload.get("errors", [])),
        )
    return payload


@dataclass
class Pending:
    """A request of ours waiting for its response: only ``provider`` (the subsystem the
    request went to) may answer it, and only with the request's ``digest``."""

    request_id: str
    digest: str
    provider: SubsystemId
    future: Future[Any] = field(default_factory=Future)

    def answered_by(self, header: Header) -> bool:
        """Whether ``header`` is an answer to this request: from the subsystem that was
        asked and naming the request's digest (another provider of the same service, which
        can read the digest off the broker, is no answer)."""
        return header.sender == self.provider and header.in_reply_to == self.digest

    def settle(self, outcome: Accepted) -> None:
        try:
            self.future.set_result(result_of(outcome.envelope.header, outcome.payload))
        except RemoteError as refusal:
            self.future.set_exception(refusal)


class PendingRequests:
    """The table of our waiting requests. A response no request of this replica waits for
    may be another replica's (replicas share the queue): it is kept in the shared database,
    where that replica looks for it while it waits."""

    def __init__(self, store: ConnectorStore, keys: KeyRing) -> None:
        self._store = store
        self._keys = keys
        self._table: dict[str, Pending] = {}
        self._lock = threading.Lock()

    def open(self, request_id: str, digest: str, provider: SubsystemId) -> Pending:
        pending = Pending(request_id, digest, provider)
        with self._lock:
            self._table[request_id] = pending
        return pending

    def close(self, pending: Pending) -> None:
        with self._lock:
            self._table.pop(pending.request_id, None)

    def match(self, header: Header) -> Pending | None:
        """The waiting request ``header`` answers, if it is ours and a true answer."""
        with self._lock:
            pending = self._table.get(header.correlation_id or "")
        if pending is not None and not pending.answered_by(header):
            logger.warning("response %s answers a different request; ignored", header.id)
            return None
        return pending

    def settle(self, answers: list[tuple[bytes, Accepted]]) -> None:
        """Responses, once in the log, settle our waiting requests or are kept for another
        replica's."""
        for body, outcome in answers:
            header = outcome.envelope.header
            self._store.remember(header.id)
            pending = self.match(header)
            if pending is not None:
                pending.settle(outcome)
            elif header.correlation_id and not self._waiting(header.correlation_id):
                self._store.keep_answer(header.correlation_id, body)

    def _waiting(self, correlation_id: str) -> bool:
        with self._lock:
            return correlation_id in self._table

    def wait(self, pending: Pending, deadline: float) -> Any:
        """The answer's payload; raises :class:`RemoteError` for a refusal and
        ``concurrent.futures.TimeoutError`` at ``deadline`` (monotonic)."""
        while True:
            try:
                return pending.future.result(
                    max(0.0, min(_ANSWER_POLL, deadline - time.monotonic()))
                )
            except FutureTimeout:
                found, payload = self._kept_answer(pending)
                if found:
                    return payload
                if time.monotonic() >= deadline:
                    raise

    def _kept_answer(self, pending: Pending) -> tuple[bool, Any]:
        """The response another replica received and kept for us: (found, payload). It was
        verified by that replica's pipeline and logged there; a response to other bytes than
        ours is dropped. Raises :class:`RemoteError` for a refusal."""
        body = self._store.take_answer(pending.request_id)
        if body is None:
            return False, None
        envelope = parse_envelope(body)
        if not pending.answered_by(envelope.header):
            logger.warning("kept response %s answers a different request", envelope.header.id)
            return False, None
        payload = orjson.loads(open_payload(envelope, self._keys.decryption_keys()))
        return True, result_of(envelope.header, payload)
