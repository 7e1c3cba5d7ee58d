"""The non-repudiation message log: every message a connector sent, received or rejected,
in an append-only RFC 6962 Merkle tree with Ed25519-signed tree heads, inclusion proofs for
one message and consistency proofs between two sizes (see DESIGN.md, "Message log").

Typical use::

    log = MessageLog(SQLiteLogStore("var/log.sqlite"), log_id="customs", signing_key=key)
    log.append(LogEntry("received", msg_id, "customs.declaration", sender, me, envelope))
    log.flush()                       # one durable transaction for everything queued
    evidence = log.inclusion_proof(msg_id)
    assert evidence.verify(key.public_key())
    log.verify()                      # raises LogIntegrityError(position) if tampered
"""

from exchange.log._evidence import EvidenceReport, evidence_bundle, verify_evidence
from exchange.log._log import (
    ConsistencyProof,
    InclusionProof,
    MessageLog,
    VerifyReport,
    utc_timestamp,
    verify_head_signature,
    verify_log,
)
from exchange.log._merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from exchange.log._open import open_store
from exchange.log._postgres import PostgresLogStore
from exchange.log._receipt import (
    RECEIPT_SCHEMA_VERSION,
    Handled,
    Receipt,
    ReceiptError,
    parse_receipt,
    receipt_of,
    receipt_shape,
)
from exchange.log._records import (
    DIRECTIONS,
    Direction,
    LogEntry,
    LogRecord,
    SignedTreeHead,
)
from exchange.log._sqlite import SQLiteLogStore
from exchange.log._store import LogStore, StoredRecord
from exchange.log._witness import (
    CONSISTENCY_REPLY_TYPE,
    CONSISTENCY_TYPE,
    COSIGNATURE_TYPE,
    LOG_HEAD_TYPE,
    WITNESS_BASIS,
    WITNESS_PURPOSE,
    Cosignature,
    WitnessReport,
    check_extends,
    check_witnessed,
    cosign,
    log_keeper,
)

__all__ = [
    "CONSISTENCY_REPLY_TYPE",
    "CONSISTENCY_TYPE",
    "COSIGNATURE_TYPE",
    "DIRECTIONS",
    "EMPTY_ROOT",
    "LOG_HEAD_TYPE",
    "RECEIPT_SCHEMA_VERSION",
    "WITNESS_BASIS",
    "WITNESS_PURPOSE",
    "CompactRange",
    "ConsistencyProof",
    "Cosignature",
    "Direction",
    "EvidenceReport",
    "Handled",
    "InclusionProof",
    "LogEntry",
    "LogRecord",
    "LogStore",
    "MessageLog",
    "PostgresLogStore",
    "Receipt",
    "ReceiptError",
    "SQLiteLogStore",
    "SignedTreeHead",
    "StoredRecord",
    "VerifyReport",
    "WitnessReport",
    "check_extends",
    "check_witnessed",
    "consistency_proof",
    "cosign",
    "evidence_bundle",
    "inclusion_proof",
    "leaf_hash",
    "log_keeper",
    "node_hash",
    "open_store",
    "parse_receipt",
    "receipt_of",
    "receipt_shape",
    "root",
    "utc_timestamp",
    "verify_consistency",
    "verify_evidence",
    "verify_head_signature",
    "verify_inclusion",
    "verify_log",
]
