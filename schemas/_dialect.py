"""What a registrable schema document looks like, checked before anything is compiled.

A schema must be JSON Schema 2020-12 *and* stay inside a small subset of keywords whose meaning
is settled, because the fast path (jsonschema-rs) gives the verdict alone and jsonschema is
asked only when the fast path says "invalid". Where two implementations can read a schema
differently (``prefixItems``, ``unevaluatedProperties``, a sibling of ``$ref``, ``\\d`` in a
pattern, which is ASCII in ECMA-262 and Unicode in Python), an invalid payload could get
through, so such schemas are refused here rather than validated wrongly.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from schemas._errors import InvalidSchemaFile
from schemas._formats import FORMATS

DIALECT = "https://json-schema.org/draft/2020-12/schema"
TYPE_NAME = re.compile(r"[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+\Z")
# \d \w \s \b and their negations mean other sets of characters in ECMA-262 (jsonschema-rs:
# \d and \w ASCII, \s with U+FEFF) than in Python's re (Unicode digits and letters): a
# pattern writes its classes out ([0-9], [A-Za-z0-9_], [ ]...).
_SHORTHAND_CLASS = re.compile(r"(?<!\\)(?:\\\\)*\\[dDwWsSbB]")
# [[:alpha:]] is a POSIX class to jsonschema-rs and a set of the characters "[:alph" to Python.
_POSIX_CLASS = re.compile(r"\[:\^?[a-z]+:\]")
SEMVER = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\Z")

ASSERTIONS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minItems",
        "maxItems",
        "uniqueItems",
        "$ref",
        "format",
        "oneOf",
        "anyOf",
        "allOf",
    }
)
ANNOTATIONS = frozenset({"title", "description", "$comment", "examples", "default", "deprecated"})
ROOT_ONLY = frozenset({"$schema", "$id", "$defs", "x-tabadul"})
_SUBSCHEMA_LISTS = ("oneOf", "anyOf", "allOf")


class Classification(StrEnum):
    """How sensitive a message type's payload is; RESTRICTED and above travel encrypted."""

    PUBLIC = "PUBLIC"
    INTERNAL = "INTERNAL"
    RESTRICTED = "RESTRICTED"
    SECRET = "SECRET"  # noqa: S105 - a classification level, not a password


class Kind(StrEnum):
    """The exchange pattern a message type belongs to."""

    REQUEST = "request"
    RESPONSE = "response"
    EVENT = "event"
    MESSAGE = "message"


@dataclass(frozen=True, slots=True)
class Metadata:
    """The ``x-tabadul`` block of a schema."""

    type: str
    version: str
    classification: Classification
    kind: Kind


def parse_version(version: str) -> tuple[int, int, int]:
    """``"1.2.3"`` -> ``(1, 2, 3)``; raises ``ValueError`` for anything else."""
    match = SEMVER.match(version)
    if match is None:
        raise ValueError(f"{version!r} is not a MAJOR.MINOR.PATCH version")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch)


def check_document(schema: object, *, origin: str) -> Metadata:
    """Check a whole schema document and return its metadata.

    Raises :class:`InvalidSchemaFile` (naming ``origin``) when the document is not an object,
    not a valid 2020-12 schema, lacks ``$id``/``title``/``description``/``x-tabadul``, or uses
    a keyword or pattern outside the subset both validators read alike.
    """
    if not isinstance(schema, dict):
        raise InvalidSchemaFile(f"{origin}: a schema document must be a JSON object")
    if schema.get("$schema") != DIALECT:
        raise InvalidSchemaFile(f"{origin}: '$schema' must be {DIALECT!r}")
    try:
        with warnings.catch_warnings():
            # re's "possible nested set" of [[:alpha:]]: the subset rules below refuse it
            warnings.simplefilter("ignore", FutureWarning)
            Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidSchemaFile(
            f"{origin}: not a valid JSON Schema 2020-12 document: {exc.message}"
        ) from exc
    for key in ("$id", "title", "description"):
        if not isinstance(schema.get(key), str) or not schema[key]:
            raise InvalidSchemaFile(f"{origin}: {key!r} must be a non-empty string")
    problems = list(_subset_problems(schema, "#", root=True))
    if problems:
        raise InvalidSchemaFile(f"{origin}: " + "; ".join(problems))
    return _metadata(schema.get("x-tabadul"), origin=origin)


def _metadata(block: object, *, origin: str) -> Metadata:
    if not isinstance(block, dict):
        raise InvalidSchemaFile(f"{origin}: missing the 'x-tabadul' object")
    expected = {"type", "version", "classification", "kind"}
    if set(block) != expected:
        raise InvalidSchemaFile(
            f"{origin}: 'x-tabadul' must have exactly the keys {sorted(expected)}"
        )
    type_name, version = block["type"], block["version"]
    if not isinstance(type_name, str) or not TYPE_NAME.match(type_name):
        raise InvalidSchemaFile(
            f"{origin}: x-tabadul.type {type_name!r} is not a dotted lowercase type name"
        )
    if not isinstance(version, str) or not SEMVER.match(version):
        raise InvalidSchemaFile(
            f"{origin}: x-tabadul.version {version!r} is not a MAJOR.MINOR.PATCH version"
        )
    try:
        classification = Classification(block["classification"])
        kind = Kind(block["kind"])
    except ValueError as exc:
        raise InvalidSchemaFile(
            f"{origin}: x-tabadul classification must be one of "
            f"{[c.value for c in Classification]} and kind one of {[k.value for k in Kind]}"
        ) from exc
    return Metadata(type_name, version, classification, kind)


def _subset_problems(node: object, where: str, *, root: bool = False) -> Iterator[str]:
    """Every use of a keyword that would not mean the same to the draft-07 fast path."""
    if isinstance(node, bool):
        return
    if not isinstance(node, Mapping):  # pragma: no cover - the metaschema refuses it first
        yield f"{where}: a schema must be an object or a boolean"
        return
    allowed = ASSERTIONS | ANNOTATIONS | (ROOT_ONLY if root else frozenset())
    for key in sorted(set(node) - allowed):
        yield f"{where}: keyword {key!r} is not allowed (outside the draft-07-compatible subset)"
    yield from _keyword_problems(node, where)
    for name, sub in node.get("properties", {}).items():
        yield from _subset_problems(sub, f"{where}/properties/{name}")
    for name, sub in node.get("$defs", {}).items() if root else ():
        yield from _subset_problems(sub, f"{where}/$defs/{name}")
    for key in ("items", "additionalProperties"):
        if key in node:
            yield from _subset_problems(node[key], f"{where}/{key}")
    for key in _SUBSCHEMA_LISTS:
        for index, sub in enumerate(node.get(key, ())):
            yield from _subset_problems(sub, f"{where}/{key}/{index}")


def _keyword_problems(node: Mapping[str, Any], where: str) -> Iterator[str]:
    if "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/$defs/"):
            yield f"{where}: $ref {ref!r} must point into this document's '#/$defs/'"
        siblings = sorted(set(node) & (ASSERTIONS - {"$ref"}))
        if siblings:
            # draft-07 ignores every sibling of $ref; 2020-12 applies them.
            yield f"{where}: $ref may not have assertion siblings {siblings}"
    pattern = node.get("pattern")
    if isinstance(pattern, str) and _SHORTHAND_CLASS.search(pattern):
        yield (
            f"{where}: pattern {pattern!r} uses a class like \\d, \\w or \\s, which"
            " ECMA-262 and Python read differently; write the characters out, e.g. [0-9]"
        )
    if isinstance(pattern, str) and _POSIX_CLASS.search(pattern):
        yield (
            f"{where}: pattern {pattern!r} uses a POSIX class like [:alpha:], which the"
            " validators read differently; write the characters out, e.g. [A-Za-z]"
        )
    if "format" in node and node["format"] not in FORMATS:
        yield f"{where}: format {node['format']!r} is not one of {sorted(FORMATS)}"
    if ("enum" in node or "const" in node) and "type" not in node:
        # JSON Schema libraries compare 1, 1.0 and true differently without a type.
        yield f"{where}: 'enum' and 'const' need a 'type' beside them"
    if node.get("uniqueItems") is True:
        items = node.get("items")
        if not isinstance(items, Mapping) or items.get("type") != "string":
            # The two libraries disagree on whether 1 and true (or 1 and 1.0) are equal.
            yield f"{where}: 'uniqueItems' is only allowed on items of type string"
