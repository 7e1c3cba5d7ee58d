"""Is a new schema backward compatible with an old one?

*Backward compatible* means: a reader using the NEW schema accepts every document that is
valid under the OLD one, so producers still on the old version keep working.

The checker walks both schemas side by side (resolving ``$ref`` into each document's own
``$defs``) and lists every change it cannot prove harmless. It is deliberately conservative:
a changed pattern, a new ``oneOf``, a keyword it does not understand are reported as breaking,
with a message saying why, even when a human could prove them safe.

Where the old schema allows only a finite set of values (``const`` or ``enum``), the checker
is exact: it validates each of those values against the new schema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from jsonschema import Draft202012Validator

from schemas._formats import format_checker

_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "$comment",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$schema",
        "$id",
        "$defs",
        "definitions",
        "$anchor",
    }
)
_HANDLED = frozenset(
    {
        "type",
        "enum",
        "const",
        "format",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "items",
        "minItems",
        "maxItems",
        "uniqueItems",
        "properties",
        "required",
        "additionalProperties",
        "allOf",
        "anyOf",
        "oneOf",
    }
)
_NUMERIC = frozenset({"integer", "number"})

JsonSchema: TypeAlias = Mapping[str, Any] | bool
"""A JSON Schema: an object, or ``true`` / ``false``."""


@dataclass(frozen=True, slots=True)
class BreakingChange:
    """One change that may reject documents the old schema accepted."""

    code: str
    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "path": self.path, "message": self.message}


@dataclass(frozen=True, slots=True)
class CompatibilityReport:
    """``compatible`` is true exactly when ``changes`` is empty."""

    compatible: bool
    changes: tuple[BreakingChange, ...] = ()

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(change.code for change in self.changes)

    def as_dict(self) -> dict[str, object]:
        return {"compatible": self.compatible, "changes": [c.as_dict() for c in self.changes]}


def check_compatibility(old_schema: JsonSchema, new_schema: JsonSchema) -> CompatibilityReport:
    """Whether ``new_schema`` accepts every document ``old_schema`` accepts.

    Never raises for a schema it does not understand: what it cannot follow (a ``$ref``
    outside the document, an unknown keyword) is reported as a breaking change.
    """
    checker = _Checker(old_schema, new_schema)
    checker.compare(old_schema, new_schema, "#")
    changes = tuple(checker.changes)
    return CompatibilityReport(compatible=not changes, changes=changes)


class _Unresolvable(Exception):
    pass


def _is_trivial(schema: object) -> bool:
    """True for a schema that accepts everything (``true`` or only annotations)."""
    if schema is True:
        return True
    return isinstance(schema, Mapping) and not (set(schema) - _ANNOTATIONS)


def _family_applies(old_types: frozenset[str] | None, family: frozenset[str]) -> bool:
    return old_types is None or bool(old_types & family)


def _types(schema: Mapping[str, Any]) -> frozenset[str] | None:
    value = schema.get("type")
    if value is None:
        return None
    return frozenset([value] if isinstance(value, str) else value)


def _same(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@dataclass
class _Checker:
    old_root: JsonSchema
    new_root: JsonSchema
    changes: list[BreakingChange] = field(default_factory=list)
    _seen: set[tuple[int, int]] = field(default_factory=set)

    def add(self, code: str, path: str, message: str) -> None:
        self.changes.append(BreakingChange(code, path, message))

    def _trial(self, old: object, new: object, path: str) -> list[BreakingChange]:
        trial = _Checker(self.old_root, self.new_root)
        trial.compare(old, new, path)
        return trial.changes

    # -- $ref ---------------------------------------------------------------------------

    @staticmethod
    def _resolve(schema: object, root: object) -> object:
        """Follow local ``$ref``s; sibling assertions become an ``allOf`` with the target."""
        hops = 0
        while isinstance(schema, Mapping) and "$ref" in schema:
            hops += 1
            ref = schema["$ref"]
            if hops > 64 or not isinstance(ref, str) or not ref.startswith("#"):
                raise _Unresolvable(str(ref))
            target: object = root
            for raw in ref[1:].split("/")[1:] if ref != "#" else []:
                token = raw.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, Mapping) or token not in target:
                    raise _Unresolvable(ref)
                target = target[token]
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            if _is_trivial(rest):
                schema = target
            else:
                return {"allOf": [target, rest]}
        return schema

    # -- the walk -------------------------------------------------------------------------

    def _prepare(
        self, old: object, new: object, path: str
    ) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
        """Resolve both sides; ``None`` when nothing more needs comparing under ``path``."""
        try:
            old = self._resolve(old, self.old_root)
            new = self._resolve(new, self.new_root)
        except _Unresolvable as exc:
            self.add("ref-unresolvable", path, f"cannot resolve $ref {exc} (only local refs)")
            return None
        if _is_trivial(new) or old is False:
            return None
        if new is False:
            self.add("schema-narrowed", path, "the new schema accepts nothing here")
            return None
        if old is True:
            old = {}
        if not isinstance(old, Mapping) or not isinstance(new, Mapping):
            self.add("schema-invalid", path, "not a JSON Schema (object or boolean)")
            return None
        pair = (id(old), id(new))
        if pair in self._seen:  # a recursive $ref already being compared
            return None
        self._seen.add(pair)
        return old, new

    def compare(self, old: object, new: object, path: str) -> None:
        """Record every change under ``path`` that may reject a document ``old`` accepted."""
        pair = self._prepare(old, new, path)
        if pair is None:
            return
        old, new = pair
        if "const" in old or "enum" in old:
            self._compare_finite(old, new, path)
            return
        self._compare_types(old, new, path)
        self._compare_values(new, path)
        old_types = _types(old)
        if _family_applies(old_types, frozenset({"string"})):
            self._compare_strings(old, new, path)
        if _family_applies(old_types, _NUMERIC):
            self._compare_numbers(old, new, path)
        if _family_applies(old_types, frozenset({"array"})):
            self._compare_arrays(old, new, path)
        if _family_applies(old_types, frozenset({"object"})):
            self._compare_objects(old, new, path)
        self._compare_combinators(old, new, path)
        for keyword in sorted(set(new) - _HANDLED - _ANNOTATIONS):
            if keyword.startswith("x-"):
                continue
            if keyword not in old or not _same(old[keyword], new[keyword]):
                self.add(
                    "keyword-changed",
                    f"{path}/{keyword}",
                    f"cannot prove that {keyword!r} as changed accepts the same documents",
                )

    def _compare_finite(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        """Old allows a finite set of values: check each one against the new schema."""
        values = [old["const"]] if "const" in old else list(old["enum"])
        old_check = _subvalidator(self.old_root, old)
        new_check = _subvalidator(self.new_root, new)
        rejected = [v for v in values if old_check.is_valid(v) and not new_check.is_valid(v)]
        if not rejected:
            return
        code = "const-changed" if "const" in new else "enum-narrowed"
        shown = ", ".join(json.dumps(v, ensure_ascii=False) for v in rejected)
        self.add(code, path, f"values valid before are now rejected: {shown}")

    def _compare_types(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        new_types = _types(new)
        if new_types is None:
            return
        old_types = _types(old)
        if old_types is None:
            self.add("type-narrowed", path, f"any type was allowed, now only {sorted(new_types)}")
            return
        lost = sorted(
            t
            for t in old_types
            if t not in new_types and not (t == "integer" and "number" in new_types)
        )
        if lost:
            self.add(
                "type-narrowed",
                path,
                f"type {sorted(old_types)} became {sorted(new_types)}: {lost} no longer accepted",
            )

    def _compare_values(self, new: Mapping[str, Any], path: str) -> None:
        # old is not finite here (that case is handled exactly), so any new enum/const narrows.
        if "enum" in new:
            self.add("enum-narrowed", path, f"any value was allowed, now only {new['enum']!r}")
        if "const" in new:
            self.add("const-changed", path, f"any value was allowed, now only {new['const']!r}")

    def _compare_strings(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        for keyword, code in (("pattern", "pattern"), ("format", "format")):
            if keyword in new and new[keyword] != old.get(keyword):
                if keyword in old:
                    self.add(
                        f"{code}-changed",
                        path,
                        f"{keyword} changed from {old[keyword]!r} to {new[keyword]!r} "
                        "(cannot prove the new one accepts everything the old one did)",
                    )
                else:
                    self.add(f"{code}-added", path, f"{keyword} {new[keyword]!r} was added")
        if new.get("minLength", 0) > old.get("minLength", 0):
            self.add(
                "min-length-raised",
                path,
                f"minLength raised from {old.get('minLength', 0)} to {new['minLength']}",
            )
        if "maxLength" in new and new["maxLength"] < old.get("maxLength", float("inf")):
            self.add(
                "max-length-lowered",
                path,
                f"maxLength lowered from {old.get('maxLength', 'unbounded')} to {new['maxLength']}",
            )

    def _compare_numbers(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_low, new_low = (
            _bound(old, "minimum", "exclusiveMinimum", max),
            _bound(new, "minimum", "exclusiveMinimum", max),
        )
        if new_low is not None and (
            old_low is None
            or new_low[0] > old_low[0]
            or (new_low[0] == old_low[0] and new_low[1] and not old_low[1])
        ):
            self.add("minimum-raised", path, f"lower bound {old_low} became {new_low}")
        old_high, new_high = (
            _bound(old, "maximum", "exclusiveMaximum", min),
            _bound(new, "maximum", "exclusiveMaximum", min),
        )
        if new_high is not None and (
            old_high is None
            or new_high[0] < old_high[0]
            or (new_high[0] == old_high[0] and new_high[1] and not old_high[1])
        ):
            self.add("maximum-lowered", path, f"upper bound {old_high} became {new_high}")

    def _compare_arrays(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        if "items" in new:
            if "items" not in old or _is_trivial(old["items"]):
                if not _is_trivial(new["items"]):
                    self.add("items-changed", f"{path}/items", "items were unconstrained")
            else:
                self.compare(old["items"], new["items"], f"{path}/items")
        if new.get("minItems", 0) > old.get("minItems", 0):
            self.add(
                "min-items-raised",
                path,
                f"minItems raised from {old.get('minItems', 0)} to {new['minItems']}",
            )
        if "maxItems" in new and new["maxItems"] < old.get("maxItems", float("inf")):
            self.add(
                "max-items-lowered",
                path,
                f"maxItems lowered from {old.get('maxItems', 'unbounded')} to {new['maxItems']}",
            )
        if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
            self.add("unique-items-added", path, "items must now be unique")

    def _compare_objects(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        for name in sorted(set(new.get("required", ())) - set(old.get("required", ()))):
            self.add("required-added", f"{path}/properties/{name}", f"{name!r} is now required")
        old_props: Mapping[str, Any] = old.get("properties", {})
        new_props: Mapping[str, Any] = new.get("properties", {})
        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)
        for name in sorted(set(old_props) | set(new_props)):
            where = f"{path}/properties/{name}"
            if name in old_props and name not in new_props:
                if new_extra is False:
                    self.add("property-removed", where, f"property {name!r} is no longer allowed")
                else:
                    self.compare(old_props[name], new_extra, where)
            elif name in new_props and name not in old_props:
                if old_extra is False:
                    continue  # no old document can carry it
                if _is_trivial(old_extra) and not _is_trivial(new_props[name]):
                    self.add(
                        "property-constrained",
                        where,
                        f"undeclared property {name!r} was free (additionalProperties), "
                        "now it has a schema",
                    )
                else:
                    self.compare(old_extra, new_props[name], where)
            else:
                self.compare(old_props[name], new_props[name], where)
        if new_extra is False and old_extra is not False:
            self.add(
                "additional-properties-closed",
                f"{path}/additionalProperties",
                "undeclared properties were allowed, now they are rejected",
            )
        elif old_extra is not False:
            self.compare(old_extra, new_extra, f"{path}/additionalProperties")

    def _compare_combinators(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: str
    ) -> None:
        old_rest = {k: v for k, v in old.items() if k not in ("allOf", "anyOf", "oneOf")}
        if "allOf" in new:
            pairwise = len(old.get("allOf", ())) == len(new["allOf"])
            for index, member in enumerate(new["allOf"]):
                before = old["allOf"][index] if pairwise else old_rest
                self.compare(before, member, f"{path}/allOf/{index}")
        if "anyOf" in new:
            self._compare_any_of(old, old_rest, new, path)
        if "oneOf" in new:
            old_members = old.get("oneOf", ())
            same = len(old_members) == len(new["oneOf"]) and all(
                not self._trial(o, n, path) and not self._trial_reverse(o, n, path)
                for o, n in zip(old_members, new["oneOf"], strict=True)
            )
            if not same:
                self.add(
                    "one-of-changed",
                    f"{path}/oneOf",
                    "oneOf alternatives were added or changed; "
                    "cannot prove each old document still matches exactly one",
                )

    def _compare_any_of(
        self,
        old: Mapping[str, Any],
        old_rest: Mapping[str, Any],
        new: Mapping[str, Any],
        path: str,
    ) -> None:
        old_members = old.get("anyOf", ())
        if len(old_members) == len(new["anyOf"]) and all(
            not self._trial(o, n, path) for o, n in zip(old_members, new["anyOf"], strict=True)
        ):
            return
        if any(not self._trial(old_rest, n, path) for n in new["anyOf"]):
            return
        self.add(
            "any-of-changed",
            f"{path}/anyOf",
            "cannot prove every old document matches one of the new anyOf alternatives",
        )

    def _trial_reverse(self, old: object, new: object, path: str) -> list[BreakingChange]:
        trial = _Checker(self.new_root, self.old_root)
        trial.compare(new, old, path)
        return trial.changes


def _bound(
    schema: Mapping[str, Any], inclusive: str, exclusive: str, pick: Any
) -> tuple[float, bool] | None:
    """The effective bound as (value, is_exclusive); ``pick`` is ``max`` for lower bounds."""
    candidates: list[tuple[float, bool]] = []
    if isinstance(schema.get(inclusive), int | float):
        candidates.append((schema[inclusive], False))
    if isinstance(schema.get(exclusive), int | float):
        candidates.append((schema[exclusive], True))
    if not candidates:
        return None
    # For equal values the exclusive bound is the stricter one, whichever way we pick.
    best = pick(value for value, _ in candidates)
    return best, any(excl for value, excl in candidates if value == best)


def _subvalidator(root: JsonSchema, schema: Mapping[str, Any]) -> Any:
    """A jsonschema validator for ``schema`` that resolves ``$ref`` against ``root``."""
    return Draft202012Validator(root, format_checker=format_checker()).evolve(schema=schema)
