"""Evidence bundles: one message, provably in a connector's log, checkable offline.

A bundle holds the envelope bytes, its log record, the RFC 6962 audit path to a signed tree
head, the certificate of the log's keeper (whose key signed the head) and, when known, the
certificate of the envelope's signer. :func:`verify_evidence` needs nothing else but the
operator's CA certificate: it proves that the keeper recorded exactly these bytes at that
position, and (for a well-formed message) that the sender signed them.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from exchange._envelope import SIGNING_CONTEXT, Header, parse_envelope
from exchange._errors import CertificateError, EvidenceError, ExchangeError, RejectError
from exchange._pki import cert_from_pem, cert_to_pem, fingerprint, inspect_certificate
from exchange.log._log import InclusionProof, verify_head_signature
from exchange.log._merkle import verify_inclusion
from exchange.log._records import LogRecord, SignedTreeHead

BUNDLE_VERSION = 1


def evidence_bundle(
    proof: InclusionProof,
    log_certificate: x509.Certificate,
    sender_certificate: x509.Certificate | None = None,
) -> bytes:
    """The bundle for ``proof`` as JSON bytes. Raises :class:`EvidenceError` when the proof
    has no signed head (a log without a key cannot give evidence)."""
    if proof.head is None:
        raise EvidenceError("the log has no signed head covering this record")
    record = proof.record
    document = {
        "tabadul-evidence": BUNDLE_VERSION,
        "record": {**record.as_dict(), "seq": record.seq},
        "envelope": base64.b64encode(record.envelope).decode("ascii"),
        "inclusion": {
            "index": proof.index,
            "size": proof.size,
            "root": proof.root.hex(),
            "proof": [node.hex() for node in proof.proof],
        },
        "head": proof.head.as_dict(),
        "log_certificate": cert_to_pem(log_certificate),
        "sender_certificate": cert_to_pem(sender_certificate) if sender_certificate else None,
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


@dataclass(frozen=True, slots=True)
class EvidenceReport:
    """What a verified bundle proves."""

    message_id: str
    direction: str
    recorded_at: str
    position: int
    tree_size: int
    log_id: str
    head_signed_at: str
    sender: str
    sender_signature: str  # "valid", or why it was not checked ("no certificate", ...)
    reject_code: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "message_id": self.message_id,
            "direction": self.direction,
            "recorded_at": self.recorded_at,
            "position": self.position,
            "tree_size": self.tree_size,
            "log_id": self.log_id,
            "head_signed_at": self.head_signed_at,
            "sender": self.sender,
            "sender_signature": self.sender_signature,
            "reject_code": self.reject_code,
        }


def _parse(data: bytes) -> tuple[LogRecord, dict[str, Any], SignedTreeHead, dict[str, Any]]:
    try:
        doc = orjson.loads(data)
        version = doc.get("tabadul-evidence")
    except (orjson.JSONDecodeError, AttributeError) as exc:
        raise EvidenceError(f"the bundle is not a JSON object: {exc}") from exc
    if version != BUNDLE_VERSION:
        raise EvidenceError("not a version 1 Tabadul evidence bundle")
    try:
        rec = doc["record"]
        record = LogRecord(
            seq=rec["seq"],
            direction=rec["direction"],
            at=rec["at"],
            message_id=rec["message_id"],
            message_type=rec["message_type"],
            sender=rec["sender"],
            recipient=rec["recipient"],
            reject_code=rec["reject_code"],
            envelope_sha256=rec["envelope_sha256"],
            envelope=base64.b64decode(doc["envelope"], validate=True),
        )
        raw_head = doc["head"]
        head = SignedTreeHead(
            size=raw_head["size"],
            root_hash=bytes.fromhex(raw_head["root"]),
            timestamp=raw_head["at"],
            log_id=raw_head["log"],
            signature=bytes.fromhex(raw_head["signature"]),
        )
        inclusion = doc["inclusion"]
        _require_ints(rec["seq"], raw_head["size"], inclusion["index"], inclusion["size"])
        if not isinstance(inclusion["proof"], list) or not all(
            isinstance(node, str) for node in inclusion["proof"]
        ):
            raise EvidenceError("the audit path must be a list of hex strings")
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise EvidenceError(f"the bundle is malformed: {exc!r}") from exc
    return record, inclusion, head, doc


def _require_ints(*values: object) -> None:
    if not all(type(v) is int and v >= 0 for v in values):
        raise EvidenceError("positions and sizes must be non-negative integers")


def _check_certificate(pem: object, ca: x509.Certificate, role: str) -> x509.Certificate:
    if not isinstance(pem, str):
        raise EvidenceError(f"the bundle has no {role} certificate")
    try:
        cert = cert_from_pem(pem)
        inspect_certificate(cert, ca)
    except CertificateError as exc:
        raise EvidenceError(f"the {role} certificate: {exc.message}") from exc
    return cert


def verify_evidence(data: bytes, ca_certificate: x509.Certificate) -> EvidenceReport:
    """Check a bundle offline. Raises :class:`EvidenceError` naming the first thing that
    does not hold: certificates not issued by the CA, a head signature that does not verify
    or is not by the log's keeper, an audit path that does not lead to the head's root, a
    record that does not match the envelope bytes or its header, or a sender signature that
    fails."""
    try:
        return _verify(data, ca_certificate)
    except EvidenceError:
        raise
    except ExchangeError as exc:  # e.g. a record value with no canonical form
        raise EvidenceError(f"the bundle does not verify: {exc.message}") from exc


def _verify(data: bytes, ca_certificate: x509.Certificate) -> EvidenceReport:
    record, inclusion, head, doc = _parse(data)
    log_cert = _check_certificate(doc.get("log_certificate"), ca_certificate, "log keeper's")
    log_info = inspect_certificate(log_cert, ca_certificate)
    if str(log_info.subsystem) != head.log_id:
        raise EvidenceError(
            f"the head is for log {head.log_id!r}, the certificate for {log_info.subsystem}"
        )
    log_key = log_info.public_key
    if not isinstance(log_key, ed25519.Ed25519PublicKey) or not verify_head_signature(
        head, log_key
    ):
        raise EvidenceError("the tree head's signature does not verify with the keeper's key")
    if not record.envelope_matches():
        raise EvidenceError("the envelope bytes do not match the record's SHA-256")
    try:
        proof = tuple(bytes.fromhex(node) for node in inclusion["proof"])
        index, size, root = inclusion["index"], inclusion["size"], bytes.fromhex(inclusion["root"])
    except (ValueError, KeyError, TypeError) as exc:
        raise EvidenceError(f"the inclusion proof is malformed: {exc!r}") from exc
    if (size, root) != (head.size, head.root_hash) or index != record.seq:
        raise EvidenceError("the inclusion proof is not for this head or this record")
    if not verify_inclusion(record.leaf_hash(), index, size, proof, root):
        raise EvidenceError(f"record {index} is not in the tree of size {size} (bad audit path)")
    return EvidenceReport(
        message_id=record.message_id,
        direction=record.direction,
        recorded_at=record.at,
        position=index,
        tree_size=size,
        log_id=head.log_id,
        head_signed_at=head.timestamp,
        sender=record.sender,
        sender_signature=_sender_signature(
            record, doc.get("sender_certificate"), ca_certificate, head.log_id
        ),
        reject_code=record.reject_code,
    )


def _record_matches_header(record: LogRecord, header: Header, log_id: str) -> None:
    """The keeper's record must say what the envelope says, and the direction must fit the
    keeper: it sent what it signed, it received what was addressed to it."""
    addressee = str(header.recipient) if header.recipient is not None else header.topic
    claimed = (record.message_id, record.message_type, record.sender, record.recipient)
    if claimed != (header.id, header.type, str(header.sender), addressee):
        raise EvidenceError("the log record does not match the envelope's header")
    if record.direction == "sent" and str(header.sender) != log_id:
        raise EvidenceError(f"log {log_id!r} records as sent a message of {header.sender}")
    addressed_elsewhere = header.recipient is not None and str(header.recipient) != log_id
    if record.direction == "received" and addressed_elsewhere:
        raise EvidenceError(f"log {log_id!r} records as received a message for {addressee}")


def _sender_signature(record: LogRecord, pem: object, ca: x509.Certificate, log_id: str) -> str:
    """Check the record against the envelope's header and, when the bundle carries the
    signer's certificate, the envelope's own signature."""
    try:
        envelope = parse_envelope(record.envelope)
    except RejectError as exc:
        return f"not checked: the logged bytes are not a well-formed envelope ({exc.code})"
    _record_matches_header(record, envelope.header, log_id)
    if pem is None:
        return "not checked: the bundle has no sender certificate"
    cert = _check_certificate(pem, ca, "sender's")
    info = inspect_certificate(cert, ca)
    header = envelope.header
    if fingerprint(cert) != header.signer or info.subsystem != header.sender:
        raise EvidenceError("the sender certificate is not the one that signed the envelope")
    key = info.public_key
    try:
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise EvidenceError("the sender certificate is not a signing certificate")
        key.verify(envelope.signature, SIGNING_CONTEXT + envelope.signed_bytes)
    except InvalidSignature as exc:
        raise EvidenceError("the envelope's signature does not verify") from exc
    if not envelope.digest_matches():
        raise EvidenceError("the envelope's payload does not match its digest")
    return "valid"
