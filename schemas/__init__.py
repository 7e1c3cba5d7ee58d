"""JSON Schemas of the bus's message types: the registry, validation and compatibility.

Imports nothing else from the project, and no network or database library.

>>> from schemas import validate
>>> validate("civil.person-lookup.request", "1.0.0", {"cin": "AB123456"}).ok
False
"""

from __future__ import annotations

from schemas._compat import BreakingChange, CompatibilityReport, check_compatibility
from schemas._dialect import Classification, Kind
from schemas._errors import (
    InvalidSchemaFile,
    SchemaConflict,
    SchemaError,
    SchemaIncompatible,
    UnknownType,
    UnknownVersion,
)
from schemas._registry import (
    SchemaEntry,
    SchemaRegistry,
    default_registry,
    schema_digest,
    validate,
)
from schemas._validation import CompiledSchema, ValidationIssue, ValidationReport

__all__ = [
    "BreakingChange",
    "Classification",
    "CompatibilityReport",
    "CompiledSchema",
    "InvalidSchemaFile",
    "Kind",
    "SchemaConflict",
    "SchemaEntry",
    "SchemaError",
    "SchemaIncompatible",
    "SchemaRegistry",
    "UnknownType",
    "UnknownVersion",
    "ValidationIssue",
    "ValidationReport",
    "check_compatibility",
    "default_registry",
    "schema_digest",
    "validate",
]
