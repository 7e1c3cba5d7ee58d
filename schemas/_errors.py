"""The schema registry's errors.

Every error this package raises derives from :class:`SchemaError`. Each one has a stable,
machine-readable ``code`` (what the CLI, the API and the logs use) and a human ``message``::

    SchemaError                   schema-error
    ├── UnknownType               unknown-message-type    (lists the registered types)
    ├── UnknownVersion            unknown-schema-version  (lists the type's versions)
    ├── InvalidSchemaFile         invalid-schema-file     (bad JSON, not 2020-12, no x-tabadul,
    │                                                       a keyword outside the fast subset)
    ├── SchemaConflict            schema-conflict         (same type and version, other content)
    └── SchemaIncompatible        schema-incompatible     (carries the CompatibilityReport)

Validating a payload never raises for an invalid payload: it returns a ``ValidationReport``.
Errors of the libraries underneath (json, jsonschema, jsonschema-rs, rfc8785) are caught where
they happen and re-raised as one of these with ``from exc``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from schemas._compat import CompatibilityReport


class SchemaError(Exception):
    """Root of the schema registry's errors; ``code`` is stable, ``message`` is for people."""

    code: ClassVar[str] = "schema-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict[str, object]:
        """The error as data, for JSON output and problem details."""
        return {"code": self.code, "message": self.message}


class UnknownType(SchemaError):
    """No schema is registered for this message type."""

    code = "unknown-message-type"

    def __init__(self, message_type: str, known: tuple[str, ...]) -> None:
        listed = ", ".join(known) if known else "none"
        super().__init__(f"unknown message type {message_type!r}; registered types: {listed}")
        self.message_type = message_type
        self.known = known

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "type": self.message_type, "known": list(self.known)}


class UnknownVersion(SchemaError):
    """The message type is registered, but not in this version."""

    code = "unknown-schema-version"

    def __init__(self, message_type: str, version: str, known: tuple[str, ...]) -> None:
        super().__init__(
            f"message type {message_type!r} has no version {version!r}; "
            f"registered versions: {', '.join(known)}"
        )
        self.message_type = message_type
        self.version = version
        self.known = known

    def as_dict(self) -> dict[str, object]:
        return {
            **super().as_dict(),
            "type": self.message_type,
            "version": self.version,
            "known": list(self.known),
        }


class InvalidSchemaFile(SchemaError):
    """A schema document that cannot be registered (see the message for why)."""

    code = "invalid-schema-file"


class SchemaConflict(SchemaError):
    """The same type and version is already registered with different content."""

    code = "schema-conflict"


class SchemaIncompatible(SchemaError):
    """A new minor or patch version would reject documents its predecessor accepted."""

    code = "schema-incompatible"

    def __init__(self, message: str, report: CompatibilityReport) -> None:
        super().__init__(message)
        self.report = report

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "changes": [c.as_dict() for c in self.report.changes]}
