"""Validating a payload against one schema: a fast verdict, then a detailed report if needed.

Each schema is compiled twice:

* with jsonschema-rs (compiled to native code, in 2020-12 like the documents), for the
  verdict on the common path, where the payload is valid;
* with jsonschema's ``Draft202012Validator``, which runs only when the fast path says
  "invalid", and then collects *every* error for the report.

**If the two disagree, jsonschema wins**: a payload the fast path rejects but jsonschema
accepts is reported valid. The opposite disagreement (fast accepts, jsonschema would reject)
cannot be corrected this way, which is why ``schemas._dialect`` only admits keywords that mean
the same to both, both validators share the format checks of ``schemas._formats`` (and read
``$`` as ECMA-262 does), and a property test compares the two verdicts on every shipped schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator
from jsonschema.validators import extend

from schemas._errors import InvalidSchemaFile
from schemas._formats import FORMATS, ecma_search, format_checker


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One reason a payload is invalid: where (``$.items[2].hs_code``), why, which keyword."""

    path: str
    message: str
    keyword: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message, "keyword": self.keyword}


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The outcome of validating one payload: ``ok`` and every issue, sorted by path."""

    ok: bool
    errors: tuple[ValidationIssue, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "errors": [issue.as_dict() for issue in self.errors]}


VALID = ValidationReport(ok=True)


def json_path(parts: Iterable[str | int]) -> str:
    """``["items", 2, "hs_code"]`` -> ``"$.items[2].hs_code"`` (odd keys as ``['a b']``)."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part.isidentifier():
            out.append(f".{part}")
        else:
            escaped = part.replace("\\", "\\\\").replace("'", "\\'")
            out.append(f"['{escaped}']")
    return "".join(out)


def _pattern(
    validator: Validator, pattern: str, instance: object, schema: Mapping[str, Any]
) -> Iterable[jsonschema.ValidationError]:
    del validator, schema
    if isinstance(instance, str) and not ecma_search(pattern, instance):
        yield jsonschema.ValidationError(f"does not match pattern {pattern!r}")


# the stubs leave ``extend`` untyped; its result is a validator class like the one extended
_Detailed = extend(Draft202012Validator, validators={"pattern": _pattern})  # type: ignore[no-untyped-call]


def _message(error: jsonschema.ValidationError) -> str:
    """A message that does not repeat the payload's values (they may be personal data)."""
    keyword = str(error.validator)
    value = error.validator_value
    by_keyword: dict[str, Callable[[], str]] = {
        "type": lambda: f"must be of type {' or '.join(_as_list(value))}",
        "enum": lambda: f"must be one of {value!r}",
        "const": lambda: f"must be {value!r}",
        "format": lambda: f"must be a valid {value}",
        "minimum": lambda: f"must be >= {value}",
        "maximum": lambda: f"must be <= {value}",
        "exclusiveMinimum": lambda: f"must be > {value}",
        "exclusiveMaximum": lambda: f"must be < {value}",
        "minLength": lambda: f"must be at least {value} characters long",
        "maxLength": lambda: f"must be at most {value} characters long",
        "minItems": lambda: f"must have at least {value} items",
        "maxItems": lambda: f"must have at most {value} items",
        "uniqueItems": lambda: "items must be unique",
        "oneOf": lambda: "must match exactly one of the alternatives",
        "anyOf": lambda: "must match at least one of the alternatives",
    }
    if keyword in by_keyword:
        return by_keyword[keyword]()
    # required, additionalProperties and pattern messages name only schema data and keys.
    return str(error.message)


def _as_list(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


class CompiledSchema:
    """One schema, compiled for both validators. Compiling can take a few milliseconds."""

    __slots__ = ("_detailed", "_fast")

    def __init__(self, schema: Mapping[str, Any]) -> None:
        try:
            self._fast = jsonschema_rs.Draft202012Validator(
                dict(schema), formats=dict(FORMATS), validate_formats=True
            )
        except (jsonschema_rs.ValidationError, ValueError) as exc:
            raise InvalidSchemaFile(f"cannot compile the schema: {exc}") from exc
        self._detailed = _Detailed(dict(schema), format_checker=format_checker())

    def is_valid_fast(self, payload: object) -> bool:
        """The fast verdict alone (what the property test compares)."""
        try:
            return self._fast.is_valid(payload)
        except ValueError:  # a value no JSON document holds (a non-text key, an object)
            return False

    def is_valid_detailed(self, payload: object) -> bool:
        """jsonschema's verdict alone."""
        return bool(self._detailed.is_valid(payload))

    def validate(self, payload: object) -> ValidationReport:
        """Validate ``payload``; never raises for an invalid payload."""
        if self.is_valid_fast(payload):
            return VALID
        found = []
        for error in self._detailed.iter_errors(payload):
            parts = tuple(error.absolute_path)
            key = tuple((0, p) if isinstance(p, int) else (1, p) for p in parts)
            issue = ValidationIssue(json_path(parts), _message(error), str(error.validator))
            found.append((key, issue.keyword, issue.message, issue))
        if not found:
            return VALID  # the fast path was stricter than jsonschema: jsonschema wins.
        found.sort(key=lambda item: (item[0], item[1], item[2]))
        return ValidationReport(ok=False, errors=tuple(item[3] for item in found))
