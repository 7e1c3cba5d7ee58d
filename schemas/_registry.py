"""The registry of message-type schemas: load, look up, register new versions, validate.

Schema files live at ``types/<agency>/<name>/<MAJOR.MINOR.PATCH>.json``, where the message
type is ``<agency>.<name>`` (``types/civil/person-lookup.request/1.0.0.json`` holds
``civil.person-lookup.request`` 1.0.0). The package ships its own set; an operator can load
another directory laid out the same way.

Versioning rule: within one major version, every version must be backward compatible with
the one before it (a reader of the newer accepts what the older accepted). A new major may
break. A version is immutable: registering it again with other content is a conflict.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import rfc8785

from schemas._compat import CompatibilityReport, check_compatibility
from schemas._dialect import Classification, Kind, check_document, parse_version
from schemas._errors import (
    InvalidSchemaFile,
    SchemaConflict,
    SchemaIncompatible,
    UnknownType,
    UnknownVersion,
)
from schemas._validation import CompiledSchema, ValidationReport


def schema_digest(schema: Mapping[str, Any]) -> str:
    """``"sha256:" + hex`` of the SHA-256 of the schema's RFC 8785 canonical bytes."""
    try:
        canonical = rfc8785.dumps(schema)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidSchemaFile(f"the schema cannot be canonicalised: {exc}") from exc
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True, slots=True)
class SchemaEntry:
    """One registered (type, version) with its schema and what the bus needs to know of it."""

    type: str
    version: str
    classification: Classification
    kind: Kind
    digest: str
    schema: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def examples(self) -> tuple[Any, ...]:
        """The valid payloads the schema file carries (its ``examples`` annotation)."""
        return tuple(self.schema.get("examples", ()))

    @property
    def title(self) -> str:
        return str(self.schema["title"])

    @property
    def sort_key(self) -> tuple[str, tuple[int, int, int]]:
        return self.type, parse_version(self.version)

    def as_dict(self) -> dict[str, object]:
        return {
            "type": self.type,
            "version": self.version,
            "classification": self.classification.value,
            "kind": self.kind.value,
            "digest": self.digest,
            "title": self.title,
        }


class SchemaRegistry:
    """Schemas by message type and version; each schema is compiled on first use.

    Not thread-safe for registration; lookups and validation are safe once loaded.
    """

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, SchemaEntry]] = {}
        self._compiled: dict[tuple[str, str], CompiledSchema] = {}

    # -- loading --------------------------------------------------------------------------

    @classmethod
    def shipped(cls) -> SchemaRegistry:
        """A registry holding the schemas shipped in this package.

        Raises :class:`InvalidSchemaFile`, :class:`SchemaIncompatible` or
        :class:`SchemaConflict` if the shipped set itself is broken.
        """
        registry = cls()
        registry.load(resources.files("schemas").joinpath("types"))
        return registry

    @classmethod
    def from_directory(cls, directory: str | Path) -> SchemaRegistry:
        """A registry holding the schemas found under ``directory`` (same layout)."""
        path = Path(directory)
        if not path.is_dir():
            raise InvalidSchemaFile(f"{path}: not a directory")
        registry = cls()
        registry.load(path)
        return registry

    def load(self, root: Traversable) -> tuple[SchemaEntry, ...]:
        """Register every ``<agency>/<name>/<version>.json`` under ``root``, oldest first.

        Versions are registered in ascending order so that each is checked against its
        predecessor. The file's place must agree with its ``x-tabadul`` block.
        """
        found: list[tuple[tuple[str, tuple[int, int, int]], Mapping[str, Any]]] = []
        for agency in _dirs(root):
            for name in _dirs(agency):
                for file in sorted(name.iterdir(), key=lambda t: t.name):
                    if not file.name.endswith(".json"):
                        continue
                    origin = f"{agency.name}/{name.name}/{file.name}"
                    schema = _read(file, origin)
                    meta = check_document(schema, origin=origin)
                    assert isinstance(schema, dict)  # check_document refuses anything else
                    expected = (f"{agency.name}.{name.name}", file.name.removesuffix(".json"))
                    if (meta.type, meta.version) != expected:
                        raise InvalidSchemaFile(
                            f"{origin}: x-tabadul says {meta.type} {meta.version}, "
                            f"the file's place says {expected[0]} {expected[1]}"
                        )
                    found.append(((meta.type, parse_version(meta.version)), schema))
        found.sort(key=lambda item: item[0])
        return tuple(self.register(schema, origin=str(key)) for key, schema in found)

    # -- registration ---------------------------------------------------------------------

    def register(self, schema: Mapping[str, Any], *, origin: str = "schema") -> SchemaEntry:
        """Add one schema document; return its entry (the existing one if identical).

        Raises :class:`InvalidSchemaFile` for a document that is not registrable,
        :class:`SchemaConflict` when the version exists with other content, and
        :class:`SchemaIncompatible` when it breaks compatibility with its neighbours in
        the same major version.
        """
        document: dict[str, Any] = copy.deepcopy(dict(schema))
        meta = check_document(document, origin=origin)
        digest = schema_digest(document)
        versions = self._entries.get(meta.type, {})
        existing = versions.get(meta.version)
        if existing is not None:
            if existing.digest == digest:
                return existing
            raise SchemaConflict(
                f"{meta.type} {meta.version} is already registered with digest "
                f"{existing.digest}; this document has {digest}"
            )
        self._check_neighbours(meta.type, meta.version, document, versions)
        compiled = CompiledSchema(document)
        entry = SchemaEntry(
            meta.type, meta.version, meta.classification, meta.kind, digest, document
        )
        self._entries.setdefault(meta.type, {})[meta.version] = entry
        self._compiled[(meta.type, meta.version)] = compiled
        return entry

    def _check_neighbours(
        self,
        type_name: str,
        version: str,
        document: Mapping[str, Any],
        versions: Mapping[str, SchemaEntry],
    ) -> None:
        new_key = parse_version(version)
        same_major = sorted(
            (parse_version(v), e) for v, e in versions.items() if parse_version(v)[0] == new_key[0]
        )
        before = [e for k, e in same_major if k < new_key]
        after = [e for k, e in same_major if k > new_key]
        if before:
            previous = before[-1]
            report = check_compatibility(previous.schema, document)
            if not report.compatible:
                raise SchemaIncompatible(
                    f"{type_name} {version} is not backward compatible with {previous.version} "
                    f"({_summary(report)}); publish it as a new major version instead",
                    report,
                )
        if after:
            following = after[0]
            report = check_compatibility(document, following.schema)
            if not report.compatible:
                raise SchemaIncompatible(
                    f"{type_name} {following.version} would not be backward compatible with "
                    f"{version} ({_summary(report)})",
                    report,
                )

    # -- lookup ---------------------------------------------------------------------------

    def types(self) -> tuple[str, ...]:
        """Every registered message type, sorted."""
        return tuple(sorted(self._entries))

    def versions(self, type_name: str) -> tuple[str, ...]:
        """The registered versions of ``type_name``, oldest first; raises :class:`UnknownType`."""
        return tuple(sorted(self._versions_of(type_name), key=parse_version))

    def get(self, type_name: str, version: str | None = None) -> SchemaEntry:
        """The entry for ``type_name`` in ``version`` (the latest when ``None``).

        Raises :class:`UnknownType` or :class:`UnknownVersion`, listing what exists.
        """
        if version is None:
            return self.latest(type_name)
        versions = self._versions_of(type_name)
        if version not in versions:
            raise UnknownVersion(type_name, version, self.versions(type_name))
        return versions[version]

    def latest(self, type_name: str) -> SchemaEntry:
        """The entry with the highest version of ``type_name``; raises :class:`UnknownType`."""
        versions = self._versions_of(type_name)
        return versions[max(versions, key=parse_version)]

    def entries(self) -> tuple[SchemaEntry, ...]:
        """Every entry, sorted by type then version."""
        return tuple(
            sorted((e for v in self._entries.values() for e in v.values()), key=_entry_key)
        )

    def __iter__(self) -> Iterator[SchemaEntry]:
        return iter(self.entries())

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            return key in self._entries
        if isinstance(key, tuple) and len(key) == 2:
            return key[1] in self._entries.get(key[0], {})
        return False

    def _versions_of(self, type_name: str) -> Mapping[str, SchemaEntry]:
        versions = self._entries.get(type_name)
        if not versions:
            raise UnknownType(type_name, self.types())
        return versions

    # -- validation -----------------------------------------------------------------------

    def compiled(self, type_name: str, version: str | None = None) -> CompiledSchema:
        """The compiled validators of one entry (for callers that validate in a loop)."""
        entry = self.get(type_name, version)
        return self._compiled[(entry.type, entry.version)]

    def validate(self, type_name: str, version: str | None, payload: object) -> ValidationReport:
        """Validate ``payload`` against ``type_name`` in ``version`` (latest when ``None``).

        Returns a report for valid and invalid payloads alike; raises only
        :class:`UnknownType` or :class:`UnknownVersion`.
        """
        compiled = self._compiled.get((type_name, version)) if version is not None else None
        if compiled is None:
            compiled = self.compiled(type_name, version)
        return compiled.validate(payload)


@cache
def default_registry() -> SchemaRegistry:
    """The shipped schemas, loaded once per process."""
    return SchemaRegistry.shipped()


def validate(type_name: str, version: str | None, payload: object) -> ValidationReport:
    """Validate ``payload`` against a shipped schema; see :meth:`SchemaRegistry.validate`."""
    return default_registry().validate(type_name, version, payload)


def _entry_key(entry: SchemaEntry) -> tuple[str, tuple[int, int, int]]:
    return entry.sort_key


def _summary(report: CompatibilityReport) -> str:
    return "; ".join(f"{c.code} at {c.path}" for c in report.changes)


def _dirs(root: Traversable) -> Iterable[Traversable]:
    return sorted((t for t in root.iterdir() if t.is_dir()), key=lambda t: t.name)


def _read(file: Traversable, origin: str) -> object:
    try:
        return json.loads(file.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidSchemaFile(f"{origin}: not readable as JSON: {exc}") from exc
