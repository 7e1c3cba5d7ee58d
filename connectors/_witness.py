"""Witnessing over the bus: connectors countersign each other's log heads.

Every connector plays both parts (protocol.md, "Witnessed heads"):

* **keeper** of its message log (and of any other log it is given, such as the governance
  audit log on the registry's connector): it publishes each new signed head as a
  ``bus.log-head`` event, answers ``bus.log-consistency.request`` with the RFC 6962 proof
  between two sizes, and keeps the ``bus.log-cosignature`` messages witnesses send back;
* **witness** of the others' logs: for a head received, it checks the head is signed by the
  keeper (the sender, per the directory) and extends the last head it cosigned for that log
  (asking the keeper for the consistency proof), then cosigns it, keeps its cosignature and
  sends it to the keeper. A head that is smaller (``log-rollback``) or does not extend
  (``log-split-view``) is refused, logged as an alarm and counted in the metrics; it is never
  cosigned.

Cosignatures are what :func:`exchange.log.check_witnessed` needs: ``tabadul log verify`` and
``tabadul audit verify`` read them from the witnesses' databases (or an exported file) and
catch a history rewritten even by the keeper's own key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from connectors._errors import ConnectorError, SendRefused
from connectors._handlers import Context, Delivery, Refuse
from connectors.runtime import Connector
from exchange import CertEntry, ExchangeError, LogError, SubsystemId, cert_to_pem
from exchange.log import (
    CONSISTENCY_REPLY_TYPE,
    CONSISTENCY_TYPE,
    COSIGNATURE_TYPE,
    LOG_HEAD_TYPE,
    WITNESS_BASIS,
    WITNESS_PURPOSE,
    ConsistencyProof,
    Cosignature,
    SignedTreeHead,
    check_extends,
    cosign,
    log_keeper,
    utc_timestamp,
)
from exchange.sandbox import Party, Sandbox

logger = logging.getLogger("connectors.witness")


class WitnessedLog(Protocol):
    """A log this connector keeps and has witnessed."""

    @property
    def log_id(self) -> str: ...

    def signed_head(self) -> SignedTreeHead | None:
        """The latest signed head (None while nothing is signed)."""

    def consistency_proof(self, old_size: int, new_size: int) -> ConsistencyProof:
        """The proof between two sizes; raises the log's error for sizes outside it."""

    def keep(self, cosignature: Cosignature) -> bool:
        """Keep a witness's cosignature (False when already kept); raises :class:`Refuse`
        for one that does not cosign a head this log had."""


class MessageLogKept:
    """The connector's own message log, as a witnessed log."""

    def __init__(self, connector: Connector) -> None:
        self._connector = connector

    @property
    def log_id(self) -> str:
        return self._connector.log.log_id

    def signed_head(self) -> SignedTreeHead | None:
        return self._connector.log_head() if self._connector.log.size else None

    def consistency_proof(self, old_size: int, new_size: int) -> ConsistencyProof:
        return self._connector.log_consistency(old_size, new_size)

    def keep(self, cosignature: Cosignature) -> bool:
        size = cosignature.head.size
        try:
            proof = self._connector.log_consistency(size, self._connector.log.size)
        except LogError as exc:
            raise Refuse(f"no head of size {size} in {self.log_id}", "unknown-head") from exc
        if proof.old_root != cosignature.head.root_hash:
            raise Refuse(f"{self.log_id} never had that root at size {size}", "unknown-head")
        return self._connector.store.keep_cosignature(cosignature)


def _head(payload: dict[str, Any]) -> SignedTreeHead:
    return SignedTreeHead(
        size=payload["size"],
        root_hash=bytes.fromhex(payload["root"]),
        timestamp=payload["at"],
        log_id=payload["log"],
        signature=bytes.fromhex(payload["signature"]),
    )


def head_payload(head: SignedTreeHead) -> dict[str, Any]:
    """A signed head as the ``bus.log-head`` payload."""
    return {
        "log": head.log_id,
        "size": head.size,
        "root": head.root_hash.hex(),
        "at": head.timestamp,
        "signature": head.signature.hex(),
    }


class Witnessing:
    """Both parts of witnessing for ``connector``: keeper of its message log and of
    ``logs``, witness of every head it is sent. :meth:`install` before ``start()``."""

    def __init__(self, connector: Connector, logs: Sequence[WitnessedLog] = ()) -> None:
        self.connector = connector
        kept: list[WitnessedLog] = [MessageLogKept(connector), *logs]
        self.logs = {log.log_id: log for log in kept}
        for log_id in self.logs:
            if log_keeper(log_id) != str(connector.me):
                raise ConnectorError(f"{connector.me} cannot keep log {log_id}")
        self._published: dict[str, int] = {}
        self._lock = threading.Lock()
        self.alarms: list[str] = []

    def install(self, *, publish_every: float = 0.0) -> Witnessing:
        """Register the three handlers; with ``publish_every`` seconds, publish new heads at
        that pace while the connector runs."""
        handlers = self.connector.handlers
        handlers[LOG_HEAD_TYPE] = self.witness
        handlers[CONSISTENCY_TYPE] = self.prove
        handlers[COSIGNATURE_TYPE] = self.collect
        if publish_every > 0:
            self.connector.every(publish_every, self.publish_heads)
        return self

    # ---- keeper ------------------------------------------------------------------------

    def publish_heads(self) -> int:
        """Publish the head of each kept log that grew since it was last published; returns
        how many were published. Not granted to publish heads: nothing, and said once."""
        published = 0
        for log_id, log in self.logs.items():
            head = log.signed_head()
            if head is None or self._published.get(log_id) == head.size:
                continue
            try:
                self.connector.publish(LOG_HEAD_TYPE, head_payload(head))
            except SendRefused as refused:
                if refused.reason != "forbidden":
                    raise
                logger.info("%s publishes no log heads: %s", self.connector.me, refused.message)
                return published
            self._published[log_id] = head.size
            published += 1
        return published

    def prove(self, delivery: Delivery, _ctx: Context) -> dict[str, Any]:
        """Answer a witness's consistency request for one of the kept logs."""
        asked = delivery.payload
        log = self.logs.get(asked["log"])
        if log is None:
            raise Refuse(f"{self.connector.me} keeps no log {asked['log']}", "unknown-log")
        try:
            proof = log.consistency_proof(asked["from_size"], asked["to_size"])
        except (ExchangeError, ValueError) as exc:
            raise Refuse(str(exc), "bad-range") from exc
        return {
            "log": asked["log"],
            "from_size": proof.old_size,
            "to_size": proof.new_size,
            "proof": [node.hex() for node in proof.proof],
        }

    def collect(self, delivery: Delivery, _ctx: Context) -> None:
        """Keep a cosignature a witness sent back, checked against the witness's signing
        certificate in the directory and against the log."""
        data = delivery.payload
        log = self.logs.get(data["log"])
        if log is None or data["witness"] != str(delivery.sender):
            raise Refuse("a cosignature of another log, or for another witness", "not-mine")
        for pem in self._signing_certificates(delivery.sender):
            cosignature = Cosignature.from_dict({**data, "head_signature": "", "certificate": pem})
            try:
                cosignature.verify()
            except LogError:
                continue
            head = log.signed_head()
            signed = head.signature if head and head.size == cosignature.head.size else b""
            log.keep(_with_head_signature(cosignature, signed))
            return
        raise Refuse(f"the cosignature of {delivery.sender} does not verify", "bad-signature")

    # ---- witness ---------------------------------------------------------------------

    def witness(self, delivery: Delivery, ctx: Context) -> None:
        """Check a keeper's new head, then cosign it and send the cosignature back."""
        head = _head(delivery.payload)
        keeper = delivery.sender
        if keeper == self.connector.me:
            return  # one's own head, back through a subscription to every keeper's
        if log_keeper(head.log_id) != str(keeper):
            raise Refuse(f"{keeper} does not keep {head.log_id}", "not-the-keeper")
        me = str(self.connector.me)
        with self._lock:  # one head of a log at a time, in order
            kept = self.connector.store.cosignatures(head.log_id, witness=me)
            previous = kept[-1].head if kept else None
            proof = None
            if previous is not None and head.size > previous.size:
                answer = ctx.request(
                    CONSISTENCY_TYPE,
                    keeper,
                    {"log": head.log_id, "from_size": previous.size, "to_size": head.size},
                )
                proof = ConsistencyProof(
                    previous.size,
                    head.size,
                    previous.root_hash,
                    head.root_hash,
                    tuple(bytes.fromhex(node) for node in answer["proof"]),
                )
            keys = [
                key
                for entry in self._signing_entries(keeper)
                if isinstance(key := entry.info.public_key, Ed25519PublicKey)
            ]
            try:
                check_extends(previous, head, keys, proof)
            except LogError as exc:
                self._alarm(exc)
                raise Refuse(exc.message, exc.code) from exc
            if previous is not None and previous.size == head.size:
                return  # cosigned already
            signer = self.connector.signer()
            cosignature = cosign(
                head,
                me,
                signer.key,
                witnessed_at=utc_timestamp(),
                certificate=cert_to_pem(signer.certificate),
            )
            self.connector.store.keep_cosignature(cosignature)
        payload = cosignature.as_dict()
        for extra in ("head_signature", "certificate"):
            del payload[extra]
        ctx.send(COSIGNATURE_TYPE, keeper, payload)

    def _alarm(self, exc: LogError) -> None:
        logger.error("witness alarm: %s", exc.message)
        self.alarms.append(exc.message)
        self.connector.metrics.count("rejected", exc.code)

    def _signing_entries(self, subsystem: SubsystemId) -> list[CertEntry]:
        return [
            entry
            for entry in self.connector.directory.certificates.values()
            if entry.info.subsystem == subsystem
            and entry.info.usage == "signing"
            and not entry.revoked
        ]

    def _signing_certificates(self, subsystem: SubsystemId) -> list[str]:
        return [entry.pem for entry in self._signing_entries(subsystem)]


def witness_each_other(sandbox: Sandbox, parties: Sequence[Party]) -> None:
    """Declare in ``sandbox``'s directory that ``parties`` witness each other's logs: each
    publishes its heads, answers consistency requests, accepts cosignatures, subscribes to
    the heads and may ask and answer every other (the grants for ``log-witnessing``)."""
    for party in parties:
        sandbox.publish(party, LOG_HEAD_TYPE)
        sandbox.provide(party, CONSISTENCY_TYPE, CONSISTENCY_REPLY_TYPE)
        sandbox.accept(party, COSIGNATURE_TYPE)
        sandbox.subscribe(party, LOG_HEAD_TYPE, purpose=WITNESS_PURPOSE, legal_basis=WITNESS_BASIS)
        for keeper in parties:
            if keeper is not party:
                for message_type in (CONSISTENCY_TYPE, COSIGNATURE_TYPE):
                    sandbox.grant(
                        party,
                        message_type,
                        keeper,
                        purpose=WITNESS_PURPOSE,
                        legal_basis=WITNESS_BASIS,
                    )


def _with_head_signature(cosignature: Cosignature, signature: bytes) -> Cosignature:
    head = cosignature.head
    return Cosignature(
        SignedTreeHead(head.size, head.root_hash, head.timestamp, head.log_id, signature),
        cosignature.witness,
        cosignature.witnessed_at,
        cosignature.signature,
        cosignature.certificate,
    )
