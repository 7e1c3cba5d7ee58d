"""Exchange-core benchmark: sign, verify, seal/open, validate, log append and log verify per
second, each beside the raw library doing the same work in the same run.

    python -m bench.core [--scale 1.0] [--json]      # or: tabadul bench core --json

Goals on a 2-core machine: full envelope verification at least 80 % of raw Ed25519
verification; schema validation at least 100,000 small records/s on one core; durable log
appends at least 20,000 records/s with group commit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jsonschema import Draft202012Validator

from bench._timing import Figure, machine, rate
from exchange import (
    Header,
    Inspector,
    MemorySeenStore,
    PayloadIssue,
    build_envelope,
    open_payload,
    parse_envelope,
)
from exchange._envelope import SIGNING_CONTEXT
from exchange.log import (
    LogEntry,
    LogRecord,
    MessageLog,
    PostgresLogStore,
    SQLiteLogStore,
    verify_log,
)
from exchange.sandbox import Party, Sandbox
from schemas import default_registry

LOOKUP = "civil.person-lookup.request"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
ALERT = "treasury.suspicious-transaction-alert"
Progress = Callable[[str], None]


def _bus() -> tuple[Sandbox, Party, Party]:
    sandbox = Sandbox()
    civil = sandbox.add("MA/GOV/MOI/CIVIL")
    tax = sandbox.add("MA/GOV/MEF/TAX")
    sandbox.classify(LOOKUP, "INTERNAL")
    sandbox.classify(ALERT, "RESTRICTED")
    sandbox.provide(civil, LOOKUP, "civil.person-lookup.response")
    sandbox.grant(tax, LOOKUP, civil)
    sandbox.grant(tax, ALERT, civil)
    return sandbox, civil, tax


def _no_issues(_type: str, _version: str, _payload: object) -> list[PayloadIssue]:
    return []


def bench_envelopes(n: int) -> list[Figure]:
    """Sign (build) and verify envelopes; seal and open RESTRICTED payloads."""
    sandbox, civil, tax = _bus()
    registry = default_registry()
    example = registry.latest(LOOKUP).examples[0]
    payload = json.dumps(example).encode()
    signer = tax.signer
    recipient = sandbox.recipient(civil)

    def build(classification: str = "INTERNAL", message_type: str = LOOKUP) -> bytes:
        return build_envelope(
            signer,
            message_type=message_type,
            schema_version="1.0.0",
            kind="request",
            payload=payload,
            classification=classification,
            recipient=recipient,
        )

    data = build()
    envelope = parse_envelope(data)
    signed = SIGNING_CONTEXT + envelope.signed_bytes
    key = signer.key
    public = key.public_key()

    def raw_sign() -> int:
        for _ in range(n):
            key.sign(signed)
        return n

    def product_sign() -> int:
        for _ in range(n):
            build()
        return n

    def raw_verify() -> int:
        for _ in range(n):
            public.verify(envelope.signature, signed)
        return n

    inspector = Inspector(
        receiver=civil.subsystem,
        directory=sandbox.directory(),
        decryption_keys=civil.keys.decryption_keys(),
        validator=_no_issues,
        seen=MemorySeenStore(),
    )

    def product_verify() -> int:
        for _ in range(n):
            inspector.verify(data)
        return n

    keys = civil.keys.decryption_keys()
    recipient_key = recipient.encryption_key
    assert recipient_key is not None

    def raw_seal_open() -> int:
        # the same primitives, without the envelope: X25519 both ways, HKDF, AES-256-GCM
        private = next(iter(keys.values()))
        for _ in range(n):
            eph = x25519.X25519PrivateKey.generate()
            okm = HKDF(hashes.SHA256(), 44, b"salt", b"info").derive(eph.exchange(recipient_key))
            box = AESGCM(okm[:32]).encrypt(okm[32:], payload, b"aad")
            okm2 = HKDF(hashes.SHA256(), 44, b"salt", b"info").derive(
                private.exchange(eph.public_key())
            )
            AESGCM(okm2[:32]).decrypt(okm2[32:], box, b"aad")
        return n

    def product_seal_open() -> int:
        for _ in range(n):
            open_payload(parse_envelope(build("RESTRICTED", ALERT)), keys)
        return n

    figures = [
        Figure(
            "sign (build + sign an envelope)",
            "messages",
            rate(product_sign),
            rate(raw_sign),
            "Ed25519 sign of the same header bytes",
        ),
    ]
    raw, product = rate(raw_verify), rate(product_verify)
    figures.append(
        Figure(
            "verify (parse + signature + digest + certificate + freshness)",
            "messages",
            product,
            raw,
            "Ed25519 verify of the same signed bytes",
            goal="ratio >= 0.8",
            met=product / raw >= 0.8,
        )
    )
    figures.append(
        Figure(
            "seal + open (RESTRICTED envelope built, signed, parsed, decrypted)",
            "messages",
            rate(product_seal_open),
            rate(raw_seal_open),
            "X25519 + HKDF + AES-256-GCM both ways, no envelope",
        )
    )
    return figures


def bench_validation(n: int) -> Figure:
    """Validate a small record through the registry (fast path) against plain jsonschema."""
    registry = default_registry()
    entry = registry.latest(LOOKUP)
    record = entry.examples[0]
    compiled = registry.compiled(LOOKUP, entry.version)
    reference = Draft202012Validator(entry.schema)

    def product() -> int:
        for _ in range(n):
            compiled.validate(record)
        return n

    def raw() -> int:
        for _ in range(n):
            reference.is_valid(record)
        return n

    ops = rate(product)
    return Figure(
        "schema validation (small record, one core)",
        "records",
        ops,
        rate(raw),
        "jsonschema Draft202012Validator.is_valid",
        goal=">= 100,000/s",
        met=ops >= 100_000,
    )


@dataclass(frozen=True, slots=True)
class _LogInput:
    """A signing key and one realistic envelope, appended ``n`` times in batches."""

    key: Ed25519PrivateKey
    envelope: bytes
    header: Header

    @classmethod
    def make(cls) -> _LogInput:
        sandbox, civil, tax = _bus()
        key, _ = civil.keys.signer()
        envelope = build_envelope(
            tax.signer,
            message_type=LOOKUP,
            schema_version="1.0.0",
            kind="request",
            payload=json.dumps(default_registry().latest(LOOKUP).examples[0]).encode(),
            classification="INTERNAL",
            recipient=sandbox.recipient(civil),
        )
        return cls(key, envelope, parse_envelope(envelope).header)

    def fill(self, log: MessageLog, n: int, batch: int) -> None:
        """Append ``n`` records, one durable flush per ``batch``."""
        h = self.header
        for start in range(0, n, batch):
            for i in range(start, min(n, start + batch)):
                log.append(
                    LogEntry(
                        "received",
                        f"{i:032x}",
                        h.type,
                        str(h.sender),
                        str(h.recipient),
                        self.envelope,
                    )
                )
            log.flush()

    def rows(self, start: int, stop: int) -> list[tuple[int, str, bytes]]:
        return [(i, f"{i:032x}", self.envelope) for i in range(start, stop)]


def bench_log(n: int, batch: int, folder: Path) -> list[Figure]:
    """Durable appends with group commit, and full verification, on SQLite."""
    data = _LogInput.make()
    counter = iter(range(10**9))

    def product_append() -> int:
        log = MessageLog(
            SQLiteLogStore(folder / f"log-{next(counter)}.sqlite"),
            log_id="bench",
            signing_key=data.key,
        )
        data.fill(log, n, batch)
        log.close()
        return n

    def raw_append() -> int:
        conn = sqlite3.connect(folder / f"raw-{next(counter)}.sqlite")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, id TEXT, envelope BLOB)")
        for start in range(0, n, batch):
            with conn:
                conn.executemany(
                    "INSERT INTO t VALUES (?, ?, ?)", data.rows(start, min(n, start + batch))
                )
        conn.close()
        return n

    appended = rate(product_append, repeats=2)
    append = Figure(
        f"log append, durable, group commit of {batch} (SQLite)",
        "records",
        appended,
        rate(raw_append, repeats=2),
        f"sqlite3 executemany of the same rows, one commit per {batch}, WAL, synchronous=FULL",
        goal=">= 20,000/s",
        met=appended >= 20_000,
    )

    path = folder / "verify.sqlite"
    log = MessageLog(SQLiteLogStore(path), log_id="bench", signing_key=data.key)
    data.fill(log, n, batch)
    log.close()
    leaves = [record.leaf_data() for record in _records(path)]

    def product_verify() -> int:
        store = SQLiteLogStore(path)
        verify_log(store, public_key=data.key.public_key())
        store.close()
        return n

    def raw_verify() -> int:
        for leaf in leaves:
            hashlib.sha256(b"\x00" + leaf).digest()
            hashlib.sha256(data.envelope).digest()
        return n

    verify = Figure(
        "log verify (re-hash records, envelopes, tree, heads)",
        "records",
        rate(product_verify, repeats=2),
        rate(raw_verify, repeats=2),
        "SHA-256 of each leaf and envelope, in memory",
    )
    return [append, verify]


def bench_log_postgres(n: int, batch: int, url: str) -> Figure:
    """Durable appends with group commit on PostgreSQL, beside psycopg inserting the same
    rows with one commit per batch."""
    data = _LogInput.make()
    schemas: list[str] = []

    def product() -> int:
        name = f"bench_log_{uuid.uuid4().hex[:10]}"
        schemas.append(name)
        log = MessageLog(PostgresLogStore(url, name=name), log_id="bench", signing_key=data.key)
        data.fill(log, n, batch)
        log.close()
        return n

    def raw() -> int:
        name = f"bench_raw_{uuid.uuid4().hex[:10]}"
        schemas.append(name)
        with psycopg.connect(url) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
            conn.execute(f"CREATE TABLE {name}.t (seq bigint PRIMARY KEY, id text, env bytea)")
            conn.commit()
            for start in range(0, n, batch):
                with conn.cursor() as cur:
                    cur.executemany(
                        f"INSERT INTO {name}.t VALUES (%s, %s, %s)",  # noqa: S608 - generated name
                        data.rows(start, min(n, start + batch)),
                    )
                conn.commit()
        return n

    try:
        ops = rate(product, repeats=2)
        return Figure(
            f"log append, durable, group commit of {batch} (PostgreSQL)",
            "records",
            ops,
            rate(raw, repeats=2),
            f"psycopg executemany of the same rows, one commit per {batch}",
            goal=">= 20,000/s",
            met=ops >= 20_000,
        )
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            for name in schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def _records(path: Path) -> list[LogRecord]:
    store = SQLiteLogStore(path)
    records = [stored.record for chunk in store.scan() for stored in chunk]
    store.close()
    return records


def run(
    scale: float = 1.0, progress: Progress | None = None, postgres_url: str | None = PG_URL
) -> dict[str, Any]:
    """Run every core benchmark; ``scale`` shrinks or grows the iteration counts;
    ``postgres_url`` None skips the PostgreSQL log figure."""
    say = progress or (lambda _step: None)
    count = max(1, int(20_000 * scale))
    figures: list[Figure] = []
    say("envelopes")
    figures += bench_envelopes(max(1, count // 4))
    say("schema validation")
    figures.append(bench_validation(count * 5))
    say("message log")
    with tempfile.TemporaryDirectory() as tmp:
        figures += bench_log(max(1, count), 500, Path(tmp))
    if postgres_url:
        say("message log on PostgreSQL")
        figures.append(bench_log_postgres(max(1, count), 1000, postgres_url))
    return {"benchmark": "core", "machine": machine(), "results": [f.as_dict() for f in figures]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="iteration count multiplier")
    parser.add_argument("--postgres", default=PG_URL, help="PostgreSQL URL ('' to skip)")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.scale, postgres_url=args.postgres or None), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
