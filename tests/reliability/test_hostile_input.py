"""Hostile input against the exchange core (parse_envelope, Inspector) and a real connector's
receive pipeline on the in-memory transport: arbitrary and mutated bytes, oversized and deeply
nested messages, Unicode tricks, wrong or revoked keys, replays after the seen-store window and
responses that answer another request.

The common property: nothing but a message validly signed by the sender it names, fresh,
granted and valid reaches a handler; everything else is refused with one of the protocol's
reject codes, and nothing crashes the pipeline (a crash would return the delivery to the
queue forever).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from connectors import (
    REJECT_HEADER,
    ConnectorStore,
    Delivery,
    MemoryBroker,
    OutboundMessage,
    dead_letter_queue,
    direct_key,
)
from exchange import (
    DEFAULT_MAX_SIZE,
    ERROR_TYPE,
    REJECT_CODES,
    Accepted,
    CertificateRevoked,
    Directory,
    Expired,
    Inspector,
    Malformed,
    MemorySeenStore,
    PayloadIssue,
    RejectError,
    SchemaInvalid,
    Signer,
    Stale,
    build_envelope,
    canonical,
    format_time,
    load_directory,
    new_message_id,
    parse_envelope,
    utcnow,
)
from exchange._envelope import SIGNING_CONTEXT
from exchange.log import SQLiteLogStore
from exchange.sandbox import Party, Sandbox
from schemas import SchemaError
from tests.support.federation import (
    ALERT,
    LODGED,
    LOOKUP,
    LOOKUP_REPLY,
    REGISTRY,
    Federation,
    build_federation,
    civil_lookup,
)
from tests.support.federation import (
    example as type_example,
)

NAMES = {
    "civil": "MA/GOV/MOI/CIVIL-REGISTRY",
    "tax": "MA/GOV/MEF/TAX",
    "customs": "MA/GOV/MEF/CUSTOMS",
    "treasury": "MA/GOV/MEF/TREASURY",
}
HEADER_FIELDS = (
    "v", "id", "type", "schema", "kind", "sender", "recipient", "topic", "created", "expires",
    "correlation_id", "in_reply_to", "classification", "payload_digest", "encryption", "signer",
)  # fmt: skip
ALGORITHM = "X25519-HKDF-SHA256-A256GCM"
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def registry_validator(message_type: str, version: str, payload: Any) -> list[PayloadIssue]:
    """The connector's validator (Connector._validate_incoming) over the shipped schemas."""
    if message_type == ERROR_TYPE:
        ok = (
            isinstance(payload, dict)
            and isinstance(payload.get("code"), str)
            and isinstance(payload.get("message", ""), str)
            and isinstance(payload.get("errors", []), list)
        )
        return [] if ok else [PayloadIssue("$", "not an error payload", "type")]
    try:
        report = REGISTRY.validate(message_type, version, payload)
    except SchemaError as exc:
        return [PayloadIssue("$", exc.message, exc.code)]
    return [PayloadIssue(e.path, e.message, e.keyword) for e in report.errors]


def bus_sandbox() -> tuple[Sandbox, dict[str, Party]]:
    """The four agencies of tests/support/federation.py, with the same grants."""
    sandbox = Sandbox()
    parties = {name: sandbox.add(ident) for name, ident in NAMES.items()}
    for entry in REGISTRY.entries():
        sandbox.classify(entry.type, entry.classification.value, entry.version, entry.digest)
    sandbox.provide(parties["civil"], LOOKUP, LOOKUP_REPLY)
    sandbox.grant(parties["tax"], LOOKUP, parties["civil"])
    sandbox.publish(parties["customs"], LODGED)
    sandbox.subscribe(parties["tax"], LODGED)
    sandbox.subscribe(parties["treasury"], LODGED)
    sandbox.grant(parties["treasury"], ALERT, parties["tax"])
    return sandbox, parties


def build(
    sandbox: Sandbox,
    signer: Signer,
    message_type: str,
    kind: str,
    payload: bytes,
    *,
    to: Party | None = None,
    **kwargs: Any,
) -> bytes:
    """A message signed by ``signer``, with the registry's version and classification."""
    entry = REGISTRY.latest(message_type)
    return build_envelope(
        signer,
        message_type=message_type,
        schema_version=entry.version,
        kind=kind,  # type: ignore[arg-type]
        payload=payload,
        classification=entry.classification.value,
        recipient=None if to is None else sandbox.recipient(to),
        **kwargs,
    )


def resign(header: dict[str, Any], body: bytes, signer: Signer, **dumps: Any) -> bytes:
    """An envelope around ``header`` (its payload digest set for ``body``) signed with
    ``signer``'s key, serialised by ``json.dumps`` (``ensure_ascii`` off unless asked): a
    sender that bypasses ``build_envelope``. A header with no canonical form gets a signature
    of zeros."""
    header = dict(header, payload_digest="sha256:" + hashlib.sha256(body).hexdigest())
    try:
        signature = signer.key.sign(SIGNING_CONTEXT + canonical(header))
    except Malformed:
        signature = bytes(64)
    document = {
        "header": header,
        "payload": base64.b64encode(body).decode(),
        "signature": base64.b64encode(signature).decode(),
    }
    options = {"ensure_ascii": False, "separators": (",", ":"), **dumps}
    return json.dumps(document, **options).encode("utf-8", "surrogatepass")


def judge(inspector: Inspector, data: bytes) -> Accepted | RejectError:
    """The inspector's verdict; any exception other than a reject propagates (a crash)."""
    try:
        return inspector.inspect(data)
    except RejectError as exc:
        return exc


@dataclass
class World:
    """A bus in memory for the core's tests, and one valid message of each kind."""

    sandbox: Sandbox
    parties: dict[str, Party]
    directory: Directory
    messages: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # -> (bytes, receiver)
    inspectors: dict[str, Inspector] = field(default_factory=dict)

    def inspector(self, receiver: str, **kwargs: Any) -> Inspector:
        party = self.parties[receiver]
        return Inspector(
            receiver=party.subsystem,
            directory=self.directory,
            decryption_keys=party.keys.decryption_keys(),
            validator=registry_validator,
            seen=MemorySeenStore(),
            **kwargs,
        )

    def signer(self, name: str) -> Signer:
        return self.parties[name].signer

    def lookup(self, payload: bytes | None = None, **kwargs: Any) -> bytes:
        body = orjson.dumps(type_example(LOOKUP)) if payload is None else payload
        return build(
            self.sandbox,
            self.signer("tax"),
            LOOKUP,
            "request",
            body,
            to=self.parties["civil"],
            **kwargs,
        )


@pytest.fixture(scope="module")
def world() -> World:
    sandbox, parties = bus_sandbox()
    # long enough for the replay property, which moves the receiver's clock days ahead
    directory = load_directory(sandbox.sign(expires_in=timedelta(days=30)), sandbox.ca.certificate)
    w = World(sandbox, parties, directory)
    request = w.lookup()
    response = build(
        sandbox,
        w.signer("civil"),
        LOOKUP_REPLY,
        "response",
        orjson.dumps(type_example(LOOKUP_REPLY)),
        to=parties["tax"],
        correlation_id=parse_envelope(request).header.id,
        in_reply_to=parse_envelope(request).digest,
    )
    event = build(sandbox, w.signer("customs"), LODGED, "event", orjson.dumps(type_example(LODGED)))
    alert = build(
        sandbox,
        w.signer("treasury"),
        ALERT,
        "message",
        orjson.dumps(type_example(ALERT)),
        to=parties["tax"],
    )
    w.messages = {
        "request": (request, "civil"),
        "response": (response, "tax"),
        "event": (event, "tax"),
        "encrypted": (alert, "tax"),
    }
    w.inspectors = {name: w.inspector(name) for name in ("civil", "tax")}
    for data, receiver in w.messages.values():  # the properties below start from these
        assert isinstance(judge(w.inspectors[receiver], data), Accepted)
    return w


# --------------------------------------------------------------------------- strategies

IDENTITIES = [*NAMES.values(), "MA/GOV/MEF/TAX\u202e", "MA/GOV/MEF/TA\u0301X", "MA/GOV/MEF"]
PLAUSIBLE = st.sampled_from(
    [
        *IDENTITIES,
        "request", "response", "event", "message", "error", "Request",
        "PUBLIC", "INTERNAL", "RESTRICTED", "SECRET", "PUBL\u0130C",
        LOOKUP, LOOKUP_REPLY, LODGED, ALERT, ERROR_TYPE,
        "1.0.0", "1.1.0", "01.0.0", "0" * 32, "f" * 32, "F" * 32,
        "sha256:" + "0" * 64, "sha256:" + "A" * 64,
        "2026-11-22T14:00:00.123Z", "9999-12-31T23:59:59.999Z", "0001-01-01T00:00:00.000Z",
        "2026-02-30T00:00:00.000Z", "2026-11-22T14:00:00.123+00:00",
        ALGORITHM, "X25519-H\u212aDF-SHA256-A256GCM", "", " ",
    ]
)  # fmt: skip
JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 2, 1.0, 2**53, 2**64, -(2**63)]),
    st.integers(),
    st.floats(),
    st.text(max_size=24),
    PLAUSIBLE,
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
TOKENS = st.sampled_from(
    [
        b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b" ", b"\n", b"\x00", b"null",
        b"\xef\xbb\xbf",  # BOM
        b"\xc0\xaf",  # overlong '/'
        b"\xed\xa0\x80",  # a UTF-16 surrogate encoded as UTF-8
        b"\xe2\x80\xae",  # U+202E right-to-left override
        b'"v":1,', b'"header":{},',
    ]
)  # fmt: skip
PATHS = st.sampled_from(
    [
        *[("header", name) for name in HEADER_FIELDS],
        ("header", "encryption", "alg"),
        ("header", "encryption", "kid"),
        ("header", "encryption", "epk"),
        ("header", "extra"),
        ("header",),
        ("payload",),
        ("signature",),
        ("extra",),
    ]
)
FRACTION = st.floats(min_value=0.0, max_value=1.0)


def _at(fraction: float, size: int) -> int:
    return min(size - 1, int(fraction * size)) if size else 0


def _load(data: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are both
        return None
    return document if isinstance(document, dict) else None


def _dump(document: Any, *, ensure_ascii: bool = False, **options: Any) -> bytes:
    options.setdefault("separators", (",", ":"))
    text = json.dumps(document, ensure_ascii=ensure_ascii, **options)
    return text.encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class Flip:
    at: float
    mask: int

    def apply(self, data: bytes) -> bytes:
        if not data:
            return data
        out = bytearray(data)
        out[_at(self.at, len(out))] ^= self.mask
        return bytes(out)


@dataclass(frozen=True)
class Truncate:
    at: float

    def apply(self, data: bytes) -> bytes:
        return data[: _at(self.at, len(data))]


@dataclass(frozen=True)
class Insert:
    at: float
    chunk: bytes

    def apply(self, data: bytes) -> bytes:
        index = _at(self.at, len(data) + 1)
        return data[:index] + self.chunk + data[index:]


@dataclass(frozen=True)
class Delete:
    at: float
    length: int

    def apply(self, data: bytes) -> bytes:
        index = _at(self.at, len(data))
        return data[:index] + data[index + self.length :]


@dataclass(frozen=True)
class SetMember:
    """Set a member (header field, payload, signature, or an unknown one) to another value."""

    path: tuple[str, ...]
    value: Any
    ensure_ascii: bool

    def apply(self, data: bytes) -> bytes:
        document = _load(data)
        if document is None:
            return data
        target: Any = document
        for key in self.path[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            return data
        target[self.path[-1]] = self.value
        return _dump(document, ensure_ascii=self.ensure_ascii)


@dataclass(frozen=True)
class SwapHeader:
    """Exchange two header values (id and correlation id, sender and recipient...)."""

    first: str
    second: str

    def apply(self, data: bytes) -> bytes:
        document = _load(data)
        header = None if document is None else document.get("header")
        if not isinstance(header, dict) or not {self.first, self.second} <= header.keys():
            return data
        header[self.first], header[self.second] = header[self.second], header[self.first]
        return _dump(document)


@dataclass(frozen=True)
class ReplacePayload:
    body: bytes

    def apply(self, data: bytes) -> bytes:
        return SetMember(("payload",), base64.b64encode(self.body).decode(), False).apply(data)


@dataclass(frozen=True)
class Rebase64:
    """Change the padding bits of a base64 member: other bytes on the wire, same decoded
    bytes (Python's decoder ignores them), so the message is unchanged."""

    member: str
    bits: int

    def apply(self, data: bytes) -> bytes:
        document = _load(data)
        text = None if document is None else document.get(self.member)
        if not isinstance(text, str) or not text.endswith("=") or len(text) < 4:
            return data
        pad = 0xF if text.endswith("==") else 0x3
        last = len(text) - (3 if pad == 0xF else 2)
        if text[last] not in B64:
            return data
        value = (B64.index(text[last]) & ~pad) | (self.bits & pad)
        document[self.member] = text[:last] + B64[value] + text[last + 1 :]
        return _dump(document)


@dataclass(frozen=True)
class Reserialise:
    """The same JSON written another way: member order, indentation, spaces."""

    top_order: tuple[int, ...]
    header_order: tuple[int, ...]
    indent: int | None
    ensure_ascii: bool

    def apply(self, data: bytes) -> bytes:
        document = _load(data)
        if document is None:
            return data
        if isinstance(document.get("header"), dict):
            document["header"] = _reorder(document["header"], self.header_order)
        separators = (", ", ": ") if self.indent is None else None
        return _dump(
            _reorder(document, self.top_order),
            ensure_ascii=self.ensure_ascii,
            indent=self.indent,
            separators=separators,
        )


def _reorder(mapping: dict[str, Any], order: tuple[int, ...]) -> dict[str, Any]:
    keys = list(mapping)
    chosen = [keys[i] for i in order if i < len(keys)]
    return {key: mapping[key] for key in [*chosen, *(k for k in keys if k not in chosen)]}


@dataclass(frozen=True)
class DuplicateMember:
    """Write a member a second time, before the real one (a parser keeps the last)."""

    scope: str
    name: str
    value: Any

    def apply(self, data: bytes) -> bytes:
        extra = _dump({self.name: self.value})[1:-1] + b","
        if self.scope == "top" and data.startswith(b"{"):
            return b"{" + extra + data[1:]
        anchor = b'"header":{' if self.scope == "header" else b'"encryption":{'
        return data.replace(anchor, anchor + extra, 1)


@dataclass(frozen=True)
class Escape:
    """Write one ASCII letter as a ``\\u`` escape: the same JSON text, other bytes."""

    at: float

    def apply(self, data: bytes) -> bytes:
        letters = [i for i, byte in enumerate(data) if chr(byte).isalpha() and byte < 128]
        if not letters:
            return data
        index = letters[_at(self.at, len(letters))]
        return data[:index] + f"\\u{data[index]:04x}".encode() + data[index + 1 :]


HEX32 = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)
DIGEST = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map("sha256:".__add__)
NEAR_NOW = st.timedeltas(-timedelta(minutes=5), timedelta(minutes=5)).map(
    lambda delta: format_time(utcnow() + delta)
)
# Values each header field could well have: the result parses, so the signature decides.
WELL_FORMED = {
    "id": HEX32,
    "type": st.sampled_from([LOOKUP, LOOKUP_REPLY, LODGED, ALERT]),
    "schema": st.sampled_from(["1.0.0", "1.0.1", "1.1.0", "2.0.0"]),
    "kind": st.sampled_from(["request", "response", "event", "message", "error"]),
    "sender": st.sampled_from(list(NAMES.values())),
    "recipient": st.sampled_from(list(NAMES.values())),
    "created": NEAR_NOW,
    "expires": NEAR_NOW,
    "correlation_id": st.none() | HEX32,
    "in_reply_to": DIGEST,
    "classification": st.sampled_from(["PUBLIC", "INTERNAL", "RESTRICTED", "SECRET"]),
    "payload_digest": DIGEST,
    "signer": DIGEST,
}
RESIGN_BAIT = st.one_of(
    *(
        st.builds(SetMember, st.just(("header", name)), values, st.just(False))
        for name, values in WELL_FORMED.items()
    )
)

MUTATIONS = st.one_of(
    RESIGN_BAIT,
    RESIGN_BAIT,
    st.builds(Flip, FRACTION, st.integers(1, 255)),
    st.builds(Truncate, FRACTION),
    st.builds(Insert, FRACTION, TOKENS | st.binary(min_size=1, max_size=8)),
    st.builds(Delete, FRACTION, st.integers(1, 64)),
    st.builds(SetMember, PATHS, JSON_VALUE, st.booleans()),
    st.builds(SwapHeader, st.sampled_from(HEADER_FIELDS), st.sampled_from(HEADER_FIELDS)),
    st.builds(ReplacePayload, st.binary(max_size=64) | st.just(b'{"cin": "AB123456"}')),
    st.builds(Rebase64, st.sampled_from(["payload", "signature"]), st.integers(0, 15)),
    st.builds(
        Reserialise,
        st.permutations(range(3)).map(tuple),
        st.permutations(range(len(HEADER_FIELDS))).map(tuple),
        st.sampled_from([None, 0, 1, 2]),
        st.booleans(),
    ),
    st.builds(
        DuplicateMember,
        st.sampled_from(["top", "header", "encryption"]),
        st.sampled_from([*HEADER_FIELDS, "header", "payload", "signature", "alg", "kid"]),
        JSON_VALUE,
    ),
    st.builds(Escape, FRACTION),
)
Mutation = (
    Flip | Truncate | Insert | Delete | SetMember | SwapHeader | ReplacePayload | Rebase64
    | Reserialise | DuplicateMember | Escape
)  # fmt: skip


def mutate(data: bytes, mutations: list[Mutation]) -> bytes:
    for mutation in mutations:
        data = mutation.apply(data)
    return data


# --------------------------------------------------------------------------- 1. arbitrary bytes


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=2048),
        st.text(max_size=512).map(lambda text: text.encode("utf-8")),
        st.text(max_size=256).map(lambda text: text.encode("utf-16")),
        JSON_VALUE.map(lambda value: json.dumps(value).encode()),
        st.dictionaries(st.sampled_from(["header", "payload", "signature"]), JSON_VALUE).map(
            lambda value: json.dumps(value).encode()
        ),
    )
)
def test_arbitrary_bytes_are_malformed_for_parser_and_inspector(world, data):
    """Random bytes, text in any encoding and random JSON are refused as malformed by
    parse_envelope and by the whole inspector, never with another exception."""
    with pytest.raises(Malformed):
        parse_envelope(data)
    outcome = judge(world.inspectors["civil"], data)
    assert isinstance(outcome, Malformed), outcome


@st.composite
def forged_envelopes(draw: st.DrawFn, fingerprints: list[str], signing: dict[str, str]) -> bytes:
    """Envelopes with well-shaped headers (so most get past parsing into authentication),
    random content and a signature nobody made. ``signing`` maps each identity to its signing
    certificate's fingerprint, so that the signer often is the claimed sender's."""
    created = draw(st.datetimes(timezones=st.just(UTC)))
    delta = draw(
        st.timedeltas(timedelta(milliseconds=1), timedelta(days=1))
        | st.timedeltas(timedelta(0), timedelta(days=2))
    )
    try:
        expires = created + delta
    except OverflowError:
        expires = created
    body = draw(st.binary(max_size=64))
    kind = draw(st.sampled_from(["request", "response", "event", "message", "error"]))
    message_type = draw(st.sampled_from([LOOKUP, LOOKUP_REPLY, LODGED, ALERT, ERROR_TYPE]))
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    sender = draw(st.sampled_from(sorted(signing)))
    recipient = st.sampled_from(sorted(signing))
    header = {
        "v": 1,
        "id": draw(HEX32),
        "type": message_type,
        "schema": draw(st.sampled_from(["1.0.0", "1.1.0"])),
        "kind": kind,
        "sender": sender,
        "recipient": draw(st.none() | recipient if kind == "event" else recipient),
        "topic": message_type if kind == "event" else None,
        "created": format_time(created),
        "expires": format_time(expires),
        "correlation_id": draw(st.none() | HEX32),
        "in_reply_to": ("sha256:" + "0" * 64) if kind in ("response", "error") else None,
        "classification": draw(st.sampled_from(["PUBLIC", "INTERNAL", "RESTRICTED", "SECRET"])),
        "payload_digest": draw(st.just(digest) | st.sampled_from(fingerprints)),
        "encryption": draw(
            st.none()
            | st.builds(
                lambda kid, epk: {"alg": ALGORITHM, "kid": kid, "epk": epk},
                st.sampled_from(fingerprints),
                st.binary(min_size=32, max_size=32).map(lambda b: base64.b64encode(b).decode()),
            )
        ),
        "signer": draw(st.just(signing[sender]) | st.sampled_from(fingerprints)),
    }
    signature = draw(st.binary(min_size=64, max_size=64) | st.binary(max_size=70))
    return _dump(
        {
            "header": header,
            "payload": base64.b64encode(body).decode(),
            "signature": base64.b64encode(signature).decode(),
        }
    )


# The timestamps of the last millisecond of year 9999: 'created' plus one day overflows.
YEAR_9999 = _dump(
    {
        "header": {
            "v": 1, "id": "0" * 32, "type": LOOKUP, "schema": "1.0.0", "kind": "request",
            "sender": NAMES["tax"], "recipient": NAMES["civil"], "topic": None,
            "created": "9999-12-31T23:59:59.998Z", "expires": "9999-12-31T23:59:59.999Z",
            "correlation_id": None, "in_reply_to": None, "classification": "INTERNAL",
            "payload_digest": "sha256:" + "0" * 64, "encryption": None,
            "signer": "sha256:" + "0" * 64,
        },
        "payload": "",
        "signature": base64.b64encode(bytes(64)).decode(),
    }
)  # fmt: skip


def test_envelopes_with_forged_signatures_are_never_accepted(world):
    """Well-shaped envelopes with random timestamps (years 1 to 9999), parties, digests,
    encryption and a made-up signature are refused with a reject code, never accepted and
    never with another exception (a timestamp in year 9999 used to raise OverflowError)."""
    fingerprints = [*sorted(world.directory.certificates), "sha256:" + "0" * 64]
    signing = {NAMES[name]: world.signer(name).fingerprint for name in NAMES}
    codes: Counter[str] = Counter()

    def refused(envelope: bytes) -> None:
        for receiver in ("civil", "tax"):
            outcome = judge(world.inspectors[receiver], envelope)
            assert isinstance(outcome, RejectError), outcome
            assert outcome.code in REJECT_CODES
            codes[outcome.code] += 1

    @settings(max_examples=300, deadline=None)
    @given(data=st.data())
    def check(data):
        refused(data.draw(forged_envelopes(fingerprints, signing)))

    refused(YEAR_9999)
    assert codes == {"unknown-sender": 2}  # well-formed: it gets to authentication
    check()
    assert codes["malformed"] > 0
    assert codes["bad-signature"] > 0  # envelopes that reached signature verification


# --------------------------------------------------------------------------- 2. mutations


NO_OP = Reserialise((2, 0, 1), tuple(reversed(range(len(HEADER_FIELDS)))), 2, False)


def test_mutated_valid_messages_are_refused_unless_unchanged(world):
    """Flipped, cut, inserted and deleted bytes, changed or swapped members, other payloads,
    re-encoded base64, reordered and re-indented JSON, duplicate members and escapes, up to
    three at a time, on a valid request, response, event and encrypted message: each result is
    refused with a reject code, or accepted only when its signed header, payload and
    signature are exactly the original's."""
    outcomes: Counter[str] = Counter()

    @settings(max_examples=500, deadline=None)
    @given(
        base=st.sampled_from(["request", "response", "event", "encrypted"]),
        mutations=st.lists(MUTATIONS, min_size=1, max_size=3),
    )
    @example(base="request", mutations=[NO_OP])
    @example(base="encrypted", mutations=[Rebase64("signature", 5)])
    @example(base="request", mutations=[SetMember(("header", "id"), "f" * 32, False)])
    @example(base="event", mutations=[DuplicateMember("header", "kind", "event")])
    def check(base, mutations):
        original, receiver = world.messages[base]
        outcome = judge(world.inspectors[receiver], mutate(original, mutations))
        if isinstance(outcome, RejectError):
            assert outcome.code in REJECT_CODES
            outcomes[outcome.code] += 1
            return
        before = parse_envelope(original)
        assert outcome.envelope.signed_bytes == before.signed_bytes
        assert outcome.envelope.payload == before.payload
        assert outcome.envelope.signature == before.signature
        outcomes["accepted"] += 1

    check()
    assert outcomes["accepted"] > 0
    assert outcomes["malformed"] > 0
    assert outcomes["bad-signature"] > 0


# ------------------------------------------------------------------- 3. size, depth, Unicode


def test_size_limit_is_exact(world):
    """A valid message padded to exactly the 1 MiB limit is accepted; one byte more, or a
    validly signed payload beyond it, is refused as malformed before anything is parsed."""
    inspector = world.inspectors["civil"]
    data, _ = world.messages["request"]
    at_limit = data + b" " * (DEFAULT_MAX_SIZE - len(data))
    assert len(at_limit) == DEFAULT_MAX_SIZE == 1024 * 1024
    accepted = inspector.inspect(at_limit)
    assert accepted.envelope.signed_bytes == parse_envelope(data).signed_bytes
    with pytest.raises(Malformed, match="exceeds the limit of 1048576"):
        inspector.inspect(at_limit + b" ")
    padded = dict(type_example(LOOKUP), case_reference="A" * DEFAULT_MAX_SIZE)
    with pytest.raises(Malformed, match="exceeds the limit"):
        inspector.inspect(world.lookup(orjson.dumps(padded)))


def _nest(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth", [1_000, 1_025, 100_000])
def test_deeply_nested_envelope_is_malformed(world, depth):
    """A message of nested arrays, or with such nesting in the header or a member, is
    refused as malformed without a RecursionError."""
    data, _ = world.messages["request"]
    inspector = world.inspectors["civil"]
    header = data.index(b'"header":') + len(b'"header":')
    variants = [
        _nest(depth),
        b'{"header":' + _nest(depth) + b',"payload":"","signature":""}',
        data.replace(b'"encryption":null', b'"encryption":' + _nest(depth)),
        data[:header] + b'{"deep":' + _nest(depth) + b"," + data[header + 1 :],
    ]
    for variant in variants:
        assert variant != data
        with pytest.raises(Malformed):
            inspector.inspect(variant)


@pytest.mark.parametrize("depth", [100, 990, 1_000, 1_024, 1_025, 100_000])
def test_deeply_nested_payload_from_a_granted_sender_is_schema_invalid(world, depth):
    """A validly signed, granted request whose payload nests arrays 100 to 100,000 deep is
    refused as schema-invalid (orjson stops at 1,024 levels; the schema validator's
    RecursionError near Python's limit used to escape the pipeline)."""
    body = b'{"cin":' + _nest(depth) + b',"purpose":"passport-issuance"}'
    with pytest.raises(SchemaInvalid) as info:
        world.inspectors["civil"].inspect(world.lookup(body))
    assert info.value.issues
    assert {issue.path for issue in info.value.issues} <= {"$", "$.cin"}


def _header_with(world: World, name: str, value: Any) -> bytes:
    """The valid request with one header field changed, validly signed by tax."""
    data, _ = world.messages["request"]
    envelope = parse_envelope(data)
    return resign(dict(envelope.header.raw, **{name: value}), envelope.payload, world.signer("tax"))


HEADER_TEXT_CASES: dict[str, Callable[[World, bytes], bytes]] = {
    "right-to-left override in sender": lambda w, _: _header_with(
        w, "sender", "MA/GOV/MEF/\u202eXAT"
    ),
    "non-NFC sender (A + combining ring)": lambda w, _: _header_with(
        w, "sender", "MA/GOV/MEF/TA\u030aX"
    ),
    "NFC form of that sender": lambda w, _: _header_with(w, "sender", "MA/GOV/MEF/T\u00c5X"),
    "fullwidth letters in recipient": lambda w, _: _header_with(
        w, "recipient", "MA/GOV/MOI/\uff23IVIL-REGISTRY"
    ),
    "Arabic-Indic digits in id": lambda w, _: _header_with(w, "id", "\u0660" * 32),
    "dotted capital I in classification": lambda w, _: _header_with(
        w, "classification", "INTERNAL\u0130"
    ),
    "Kelvin sign in type": lambda w, _: _header_with(w, "type", "civil.person-loo\u212aup.request"),
    "line separator in schema": lambda w, _: _header_with(w, "schema", "1.0.0\u2028"),
    "BOM inside kind": lambda w, _: _header_with(w, "kind", "\ufeffrequest"),
    "NUL escaped in kind": lambda w, _: _header_with(w, "kind", "request\x00"),
    "lone surrogate in id": lambda w, _: _header_with(w, "id", "\ud800" + "0" * 31),
    "raw NUL byte in kind": lambda _, data: data.replace(b'"request"', b'"request\x00"'),
    "BOM before the message": lambda _, data: b"\xef\xbb\xbf" + data,
    "overlong UTF-8 slash in sender": lambda _, data: data.replace(
        b"MA/GOV/MEF/TAX", b"MA\xc0\xafGOV/MEF/TAX"
    ),
    "UTF-8-encoded surrogate in type": lambda _, data: data.replace(
        b"civil.person", b"civil.\xed\xa0\x80person"
    ),
    "escaped letter in kind": lambda _, data: data.replace(b'"request"', b'"r\\u0065quest"'),
}


@pytest.mark.parametrize("case", sorted(HEADER_TEXT_CASES))
def test_unicode_tricks_in_headers_are_malformed(world, case):
    """Header strings are ASCII from fixed patterns: bidi overrides, non-NFC and NFC
    look-alikes, fullwidth and Arabic-Indic digits, BOMs, NUL, surrogates, overlong UTF-8
    and escapes are refused as malformed, even when the sender signed them."""
    data, _ = world.messages["request"]
    hostile = HEADER_TEXT_CASES[case](world, data)
    assert hostile != data
    with pytest.raises(Malformed):
        parse_envelope(hostile)
    assert isinstance(judge(world.inspectors["civil"], hostile), Malformed)


def _declaration(description: str, *, ensure_ascii: bool) -> bytes:
    payload = type_example(LODGED)
    payload["items"][0]["description"] = description
    return json.dumps(payload, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


@settings(max_examples=200, deadline=None)
@given(description=st.text(max_size=520), ensure_ascii=st.booleans())
@example(description="Green tea \u202egnp.exe", ensure_ascii=False)
@example(description="A\u030a and \u00c5 (NFD and NFC)", ensure_ascii=False)
@example(
    description="\ufeffBOM, NUL \x00, \uffff, \U0001f600, \u0634\u0627\u064a", ensure_ascii=True
)
@example(description="e\u0301" * 250, ensure_ascii=False)  # 500 code points (250 in NFC)
@example(description="e\u0301" * 251, ensure_ascii=False)  # 502 code points: too long
@example(description="", ensure_ascii=False)
def test_unicode_in_payloads_arrives_exactly_or_is_refused_at_its_path(
    world, description, ensure_ascii
):
    """Any text in a free-text payload field of a validly signed event is either delivered
    exactly as signed (no normalisation: NFD stays NFD, bidi and NUL stay) when its length
    in code points is within the schema's 1-500, or refused as schema-invalid at that field."""
    data = build(
        world.sandbox,
        world.signer("customs"),
        LODGED,
        "event",
        _declaration(description, ensure_ascii=ensure_ascii),
    )
    outcome = judge(world.inspectors["tax"], data)
    if 1 <= len(description) <= 500:
        assert isinstance(outcome, Accepted), outcome
        assert outcome.payload["items"][0]["description"] == description
    else:
        assert isinstance(outcome, SchemaInvalid), outcome
        assert {i.path for i in outcome.issues} == {"$.items[0].description"}


@pytest.mark.parametrize(
    "payload",
    [
        b'{"cin": "AB\\ud800", "purpose": "passport-issuance"}',  # lone surrogate escape
        b'{"cin": "AB\xc0\xaf", "purpose": "passport-issuance"}',  # overlong UTF-8
        b'{"cin": "AB\xed\xa0\x80", "purpose": "passport-issuance"}',  # encoded surrogate
        b'\xef\xbb\xbf{"cin": "AB123456", "purpose": "passport-issuance"}',  # BOM
        b'{"cin": "AB\x00", "purpose": "passport-issuance"}',  # raw NUL in a string
        b'{"cin": "AB123456", "cin": "CD654321", "purpose": "passport-issuance"}',
    ],
    ids=["lone-surrogate", "overlong", "utf8-surrogate", "bom", "raw-nul", "duplicate-key"],
)
def test_invalid_text_in_a_signed_payload_is_schema_invalid(world, payload):
    """Payload bytes that are not strict UTF-8 JSON (lone surrogates, overlong forms, BOM,
    raw NUL) are refused as schema-invalid; a repeated key, which JSON allows, is read as
    the last value and validated like any payload."""
    outcome = judge(world.inspectors["civil"], world.lookup(payload))
    if b'"cin": "CD654321"' in payload:
        assert isinstance(outcome, Accepted), outcome
        assert outcome.payload["cin"] == "CD654321"
        return
    assert isinstance(outcome, SchemaInvalid), outcome
    assert [(i.path, i.keyword) for i in outcome.issues] == [("$", "json")]


# --------------------------------------------------------------------------- 4. keys


def test_every_mix_of_claimed_sender_signer_and_key_is_judged_by_its_owner(world):
    """For each claimed sender (granted tax, ungranted customs), signer certificate (tax's,
    customs', or one from another CA for the same name) and signing key, only tax's own
    key under tax's certificate claiming tax is accepted; every other mix is refused with
    the code of the first broken link."""
    other_bus = Sandbox()
    impostor = other_bus.add(NAMES["tax"]).signer  # same name, another CA
    signers = {"tax": world.signer("tax"), "customs": world.signer("customs"), "other": impostor}
    data, _ = world.messages["request"]
    envelope = parse_envelope(data)
    verdicts = {}
    for claimed in ("tax", "customs"):
        for certificate, key in [(c, k) for c in signers for k in signers]:
            header = dict(
                envelope.header.raw,
                id=new_message_id(),
                sender=NAMES[claimed],
                signer=signers[certificate].fingerprint,
            )
            outcome = judge(
                world.inspectors["civil"], resign(header, envelope.payload, signers[key])
            )
            verdicts[claimed, certificate, key] = getattr(outcome, "code", "accepted")
    expected = {}
    for claimed, certificate, key in verdicts:
        if certificate != claimed:  # another CA's or another agency's certificate
            expected[claimed, certificate, key] = "unknown-sender"
        elif key != certificate:
            expected[claimed, certificate, key] = "bad-signature"
        else:
            expected[claimed, certificate, key] = "accepted" if claimed == "tax" else "forbidden"
    assert verdicts == expected
    assert list(verdicts.values()).count("accepted") == 1


def test_revoked_generation_is_refused_while_its_successor_is_accepted():
    """After tax's signing certificate is revoked and tax rotates, messages signed with the
    revoked key, made before or after the revocation, are refused as certificate-revoked;
    the new generation is accepted."""
    sandbox, parties = bus_sandbox()
    tax = parties["tax"]
    old = tax.signer

    def lookup_by(signer: Signer) -> bytes:
        body = orjson.dumps(type_example(LOOKUP))
        return build(sandbox, signer, LOOKUP, "request", body, to=parties["civil"])

    before = lookup_by(old)
    sandbox.revoke(tax)
    sandbox.rotate(tax)
    directory = sandbox.directory()
    inspector = Inspector(
        receiver=parties["civil"].subsystem,
        directory=directory,
        decryption_keys=parties["civil"].keys.decryption_keys(),
        validator=registry_validator,
        seen=MemorySeenStore(),
    )
    after = lookup_by(old)
    for data in (before, after):
        with pytest.raises(CertificateRevoked, match="is revoked"):
            inspector.inspect(data)
    fresh = lookup_by(tax.signer)
    assert tax.signer.fingerprint != old.fingerprint
    assert inspector.inspect(fresh).certificate.info.serial != old.certificate.serial_number


# --------------------------------------------------------------------------- 5. replay window


Replay = tuple[int, timedelta, timedelta, float, tuple[str, timedelta]]


def _replay_property(
    world: World,
    seen: Any,
    held: Callable[[str], bool],
    prune: Callable[[datetime], object],
    params: Replay,
) -> str:
    """Accept a message once, at a moment it is fresh, and remember its id as the connector
    does; then prune the seen-store and present the message again, either ``later`` after
    the first receipt or at keep_until plus an offset (the edge of the window). Asserts the
    replay is refused, and refused by the age window whenever the store forgot the id.
    Returns whether the store still held the id."""
    ttl_ms, skew, max_age, first, (mode, later) = params
    clock = [utcnow()]
    inspector = world.inspector("civil", clock=lambda: clock[0], skew=skew, max_age=max_age)
    inspector.seen = seen
    data = world.lookup(ttl=timedelta(milliseconds=ttl_ms))
    header = parse_envelope(data).header
    earliest = header.created - skew
    latest = min(header.expires + skew, header.created + max_age)
    received = earliest + (latest - earliest) * first
    clock[0] = received
    accepted = inspector.inspect(data)
    keep_until = inspector.keep_until(accepted.envelope)
    seen.add(header.id, keep_until)
    replay = received + later if mode == "after" else keep_until + later
    clock[0] = max(replay, received + MICRO)
    prune(clock[0])
    outcome = judge(inspector, data)
    assert isinstance(outcome, RejectError), "a replay was accepted"
    if held(header.id):
        assert clock[0] < keep_until + timedelta(milliseconds=1)
        assert outcome.code in {"duplicate", "stale", "expired"}
        return "held"
    # the seen-store forgot the id: only the age window stands between it and a replay
    assert clock[0] > keep_until
    assert isinstance(outcome, Stale | Expired), outcome
    return "forgotten"


MICRO = timedelta(microseconds=1)
REPLAY_PARAMS = st.tuples(
    st.integers(1, 86_400_000),  # ttl in ms, up to the protocol's one day
    st.timedeltas(timedelta(0), timedelta(minutes=2)),  # clock skew
    st.timedeltas(MICRO, timedelta(days=1)),  # freshness window (max_age)
    FRACTION,  # where in its acceptance window the message first arrives
    st.tuples(st.just("after"), st.timedeltas(MICRO, timedelta(days=3)))
    | st.tuples(
        st.just("edge"), st.timedeltas(-timedelta(milliseconds=3), timedelta(milliseconds=3))
    ),
)
DEFAULTS = (300_000, timedelta(seconds=30), timedelta(minutes=10))


def test_replay_after_the_seen_store_window_is_refused_as_stale_or_expired(world):
    """With any TTL (up to one day), skew and freshness window, a replay at any later moment
    is refused: while the in-memory seen-store holds the id, as a duplicate (or stale or
    expired); once pruned (just after keep_until), as stale or expired. No gap."""
    where: Counter[str] = Counter()

    @settings(max_examples=300, deadline=None)
    @given(params=REPLAY_PARAMS)
    @example(params=(*DEFAULTS, 1.0, ("edge", timedelta(0))))
    @example(params=(*DEFAULTS, 1.0, ("edge", MICRO)))
    @example(params=(*DEFAULTS, 0.0, ("edge", MICRO)))
    @example(params=(86_400_000, timedelta(0), MICRO, 0.0, ("edge", MICRO)))
    def check(params):
        seen = MemorySeenStore()
        where[_replay_property(world, seen, seen.contains, seen.prune, params)] += 1

    check()
    assert where["held"] > 0
    assert where["forgotten"] > 0


@dataclass
class DurableSeen:
    """The connector's replay decision on its database: the inspector's in-memory check plus
    the per-batch re-check in the database (Connector._recheck_seen), as one seen-store."""

    store: ConnectorStore

    def contains(self, message_id: str) -> bool:
        return self.store.contains(message_id) or bool(self.store.already_seen([message_id]))

    def add(self, message_id: str, keep_until: datetime) -> None:
        self.store.add(message_id, keep_until)


def test_connector_seen_store_leaves_no_replay_gap(world, tmp_path):
    """The same property on the connector's database seen-store, which keeps keep_until at
    millisecond precision, with sub-millisecond skews and windows: once prune() has dropped
    an id, the age window refuses the message."""
    store = ConnectorStore(str(tmp_path / "seen.db"))
    seen = DurableSeen(store)
    where: Counter[str] = Counter()

    @settings(max_examples=60, deadline=None)
    @given(params=REPLAY_PARAMS)
    @example(params=(*DEFAULTS, 1.0, ("edge", timedelta(0))))
    @example(params=(*DEFAULTS, 1.0, ("edge", timedelta(milliseconds=1))))
    @example(
        params=(1, timedelta(microseconds=600), timedelta(microseconds=1100), 1.0, ("edge", MICRO))
    )
    def check(params):
        held = lambda message_id: bool(store.already_seen([message_id]))  # noqa: E731
        where[_replay_property(world, seen, held, store.prune, params)] += 1

    try:
        check()
    finally:
        store.close()
    assert where["held"] > 0
    assert where["forgotten"] > 0


# --------------------------------------------------------------------------- connectors


@dataclass
class Net:
    """A federation of four real connectors on a memory broker, with what the broker routed."""

    fed: Federation
    broker: MemoryBroker
    routed: list[OutboundMessage] = field(default_factory=list)
    dead: dict[str, list[OutboundMessage]] = field(default_factory=dict)

    def slug(self, name: str) -> str:
        return self.fed.parties[name].subsystem.slug

    def inject(self, name: str, body: bytes) -> None:
        self.broker.route(OutboundMessage(direct_key(self.slug(name)), body, "hostile"))

    def dead_letters(self, name: str) -> list[OutboundMessage]:
        got = self.dead.setdefault(name, [])
        got += self.broker.drain(dead_letter_queue(self.slug(name)))
        return got

    def wait_dead(self, name: str, body: bytes, count: int = 1) -> OutboundMessage:
        """The ``count``-th dead letter of ``body`` at ``name``; fails after 10 s (a message
        the connector neither handled nor dead-lettered is stuck or lost)."""
        assert wait_for(lambda: sum(m.body == body for m in self.dead_letters(name)) >= count), (
            f"{name} did not dead-letter the message"
        )
        return [m for m in self.dead_letters(name) if m.body == body][count - 1]

    def request_to_civil(self, payload: bytes | None = None) -> bytes:
        """A lookup by tax for civil, built by hand (past the sender's checks)."""
        tax = self.fed["tax"]
        return build_envelope(
            tax.signer(),
            message_type=LOOKUP,
            schema_version="1.0.0",
            kind="request",
            payload=payload or orjson.dumps(type_example(LOOKUP)),
            classification="INTERNAL",
            recipient=tax.outbox.recipient(self.fed.parties["civil"].subsystem),
        )


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


@pytest.fixture
def net(tmp_path) -> Iterator[Net]:
    broker = MemoryBroker()
    federation = build_federation(tmp_path, broker.transport)
    result = Net(federation, broker)
    route = broker.route

    def spy(message: OutboundMessage) -> None:
        result.routed.append(message)
        route(message)

    broker.route = spy  # type: ignore[method-assign]
    yield result
    federation.bus.stop()


def _civil_rejections(net: Net) -> list[tuple[str, str | None]]:
    """(direction, reject code) of every record in civil's message log (after stop)."""
    store = SQLiteLogStore(net.fed.bus.folder / f"{net.slug('civil')}.log.sqlite")
    try:
        return [(s.record.direction, s.record.reject_code) for chunk in store.scan() for s in chunk]
    finally:
        store.close()


def test_connector_receive_loop_survives_hostile_deliveries(net):
    """Known poison (a year-9999 timestamp, 100,000 levels of nesting, an oversized body, a
    BOM, a granted request with a 1,000-deep payload) and 60 hypothesis-made mutations of a
    request already handled: each is dead-lettered with a reject code and logged as rejected,
    no handler sees any of them, and the connector still answers a valid request afterwards."""
    civil = net.fed.recorders["civil"]
    base = net.request_to_civil()
    net.inject("civil", base)
    assert len(civil.wait_for(1)) == 1
    injected: list[bytes] = []

    def refused(body: bytes, expected: str | None = None) -> None:
        before = sum(m.body == body for m in net.dead_letters("civil"))
        injected.append(body)
        net.inject("civil", body)
        code = net.wait_dead("civil", body, before + 1).headers[REJECT_HEADER]
        assert code in REJECT_CODES
        if expected is not None:
            assert code == expected
        assert len(civil.seen) == 1  # the handler saw only the original

    poison = {
        YEAR_9999: "unknown-sender",  # parsed (no OverflowError), then authenticated
        _nest(100_000): "malformed",
        base + b" " * DEFAULT_MAX_SIZE: "malformed",
        b"\xef\xbb\xbf" + base: "malformed",
        net.request_to_civil(b'{"cin":' + _nest(1_000) + b',"purpose":"court-proceeding"}'): (
            "schema-invalid"
        ),
        base: "duplicate",
    }
    for body, code in poison.items():
        refused(body, code)

    @settings(max_examples=60, deadline=None)
    @given(mutations=st.lists(MUTATIONS, min_size=1, max_size=3))
    def fuzz(mutations):
        refused(mutate(base, mutations))

    fuzz()
    answer = net.fed["tax"].request(
        LOOKUP, net.fed.parties["civil"].subsystem, type_example(LOOKUP)
    )
    assert answer["person"]["cin"] == type_example(LOOKUP)["cin"]
    assert len(civil.seen) == 2
    net.fed.bus.stop()
    records = _civil_rejections(net)
    rejected = [code for direction, code in records if direction == "rejected"]
    assert len(rejected) == len(injected)
    assert set(rejected) <= set(REJECT_CODES)


def test_connector_refuses_revoked_and_borrowed_keys(net):
    """A request signed by tax's key, delivered after the directory revoked it, and one
    signed by customs' key while claiming to come from tax, are dead-lettered as
    certificate-revoked and unknown-sender; the civil handler sees neither."""
    fed = net.fed
    signed_before = net.request_to_civil()
    envelope = parse_envelope(signed_before)
    customs = fed.parties["customs"].signer
    borrowed = resign(
        dict(envelope.header.raw, id=new_message_id(), signer=customs.fingerprint),
        envelope.payload,
        customs,
    )
    net.inject("civil", borrowed)
    assert net.wait_dead("civil", borrowed).headers[REJECT_HEADER] == "unknown-sender"
    fed.bus.sandbox.revoke(fed.parties["tax"])
    fed.bus.publish_directory()
    assert wait_for(lambda: fed["civil"].directory.revoked_serials != frozenset())
    net.inject("civil", signed_before)
    assert net.wait_dead("civil", signed_before).headers[REJECT_HEADER] == "certificate-revoked"
    assert fed.recorders["civil"].seen == []


# --------------------------------------------------------------------------- 6. responses


@dataclass
class HeldRequest:
    """tax's lookup of civil, waiting while civil's handler is held back."""

    net: Net
    answer: Future[Any]
    request: bytes
    release: threading.Event

    @property
    def id(self) -> str:
        return parse_envelope(self.request).header.id

    @property
    def digest(self) -> str:
        return parse_envelope(self.request).digest


@pytest.fixture
def held(net) -> Iterator[HeldRequest]:
    fed = net.fed
    release, entered = threading.Event(), threading.Event()
    real = civil_lookup(fed.recorders["civil"])

    def slow(delivery: Delivery, ctx: Any) -> Any:
        entered.set()
        assert release.wait(20)
        return real(delivery, ctx)

    fed["civil"].handlers[LOOKUP] = slow
    pool = ThreadPoolExecutor(1)
    answer = pool.submit(
        fed["tax"].request, LOOKUP, fed.parties["civil"].subsystem, type_example(LOOKUP)
    )
    assert entered.wait(10)
    [request] = [m.body for m in net.routed if m.routing_key == direct_key(net.slug("civil"))]
    yield HeldRequest(net, answer, request, release)
    release.set()
    pool.shutdown(wait=True)


def _answer_from(
    net: Net, sender: str, *, correlation_id: str, in_reply_to: str, cin: str
) -> bytes:
    payload = type_example(LOOKUP_REPLY)
    payload["person"]["cin"] = cin
    party = net.fed.parties[sender]
    return build(
        net.fed.bus.sandbox,
        party.signer,
        LOOKUP_REPLY,
        "response",
        orjson.dumps(payload),
        to=net.fed.parties["tax"],
        correlation_id=correlation_id,
        in_reply_to=in_reply_to,
    )


def _processed_by_tax(net: Net, body: bytes) -> None:
    """Wait until tax's connector has logged ``body`` (it was judged and settled)."""
    message_id = parse_envelope(body).header.id
    tax = net.fed["tax"]

    def logged() -> bool:
        with tax.core.log_lock:  # the receive loop writes through the same connection
            return bool(tax.log.records(message_id))

    assert wait_for(logged)


def _finishes_with_the_real_answer(held: HeldRequest, forged_cin: str) -> None:
    time.sleep(0.3)  # more than the 0.1 s the waiting request takes to look for kept answers
    assert not held.answer.done(), "the waiting request was resolved by the wrong answer"
    held.release.set()
    answer = held.answer.result(timeout=10)
    assert answer["person"]["cin"] == type_example(LOOKUP)["cin"] != forged_cin


def test_response_bound_to_another_request_does_not_resolve_the_waiting_one(held):
    """A response from civil with the waiting request's correlation id but the digest of
    another request (validly signed and granted) leaves the request waiting; civil's real
    answer then resolves it."""
    net = held.net
    other = parse_envelope(net.request_to_civil())
    forged = _answer_from(
        net, "civil", correlation_id=held.id, in_reply_to=other.digest, cin="XX000001"
    )
    net.inject("tax", forged)
    _processed_by_tax(net, forged)
    _finishes_with_the_real_answer(held, "XX000001")


def test_answer_from_a_provider_that_was_not_asked_does_not_resolve_the_request(held):
    """Customs, also a granted provider of the lookup, answers the request tax sent to civil
    with its exact correlation id and digest (read off the broker): the request keeps
    waiting for civil (before the fix it returned customs' answer)."""
    net = held.net
    fed = net.fed
    fed.bus.sandbox.provide(fed.parties["customs"], LOOKUP, LOOKUP_REPLY)
    fed.bus.sandbox.grant(fed.parties["tax"], LOOKUP, fed.parties["customs"])
    fed.bus.publish_directory()
    assert wait_for(lambda: fed["tax"].directory.serial == fed.bus.sandbox.draft.serial - 1)
    forged = _answer_from(
        net, "customs", correlation_id=held.id, in_reply_to=held.digest, cin="XX000002"
    )
    net.inject("tax", forged)
    _processed_by_tax(net, forged)
    assert net.dead_letters("tax") == []  # a well-formed, granted answer: only ignored
    _finishes_with_the_real_answer(held, "XX000002")


def test_error_with_a_malformed_body_is_refused_and_the_request_keeps_waiting(held):
    """An error reply from civil to the waiting request whose ``errors`` is not a list is
    dead-lettered at tax as schema-invalid (it used to crash the settling of the batch and
    be dropped), and the request is then answered normally."""
    net = held.net
    civil = net.fed.parties["civil"]
    bad_error = build_envelope(
        civil.signer,
        message_type=ERROR_TYPE,
        schema_version="1.0.0",
        kind="error",
        payload=b'{"code": "not-found", "message": "no", "errors": null}',
        classification="INTERNAL",
        recipient=net.fed.bus.sandbox.recipient(net.fed.parties["tax"]),
        correlation_id=held.id,
        in_reply_to=held.digest,
    )
    net.inject("tax", bad_error)
    assert net.wait_dead("tax", bad_error).headers[REJECT_HEADER] == "schema-invalid"
    _finishes_with_the_real_answer(held, "no such answer")


def test_response_to_a_request_never_sent_reaches_nobody(net):
    """A validly signed response to a request tax never sent resolves nothing and reaches no
    handler; tax's next real request gets civil's real answer."""
    fed = net.fed
    forged = _answer_from(
        net,
        "civil",
        correlation_id=new_message_id(),
        in_reply_to="sha256:" + "ab" * 32,
        cin="XX000003",
    )
    net.inject("tax", forged)
    _processed_by_tax(net, forged)
    answer = fed["tax"].request(LOOKUP, fed.parties["civil"].subsystem, type_example(LOOKUP))
    assert answer["person"]["cin"] == type_example(LOOKUP)["cin"]
    assert fed.recorders["tax"].seen == []
