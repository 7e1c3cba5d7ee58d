"""Property test: the fast path's verdict equals jsonschema's on every shipped schema."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import default_registry

REGISTRY = default_registry()
ENTRIES = REGISTRY.entries()
ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))]
)
JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
ANY_JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
TRICKY = st.sampled_from(
    [
        "",
        "\n",
        "BE123456\n",
        "2026-02-30",
        "2026-11-04T15:00:00",
        "a@b",
        1.0,
        0,
        -1,
        True,
        False,
        None,
        [],
        {},
        "x" * 600,
        1e300,
        2**70,
    ]
)


def _resolve(schema: Any, root: dict[str, Any]) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = root["$defs"][schema["$ref"].removeprefix("#/$defs/")]
    return schema


def near_valid(schema: Any, root: dict[str, Any]) -> st.SearchStrategy[Any]:  # noqa: PLR0911 - one branch per JSON type
    """Payloads built from the schema's own rules (ignoring oneOf/anyOf, so mostly valid)."""
    schema = _resolve(schema, root)
    if schema is False:
        return st.nothing()
    if schema is True:
        return ANY_JSON
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        items = near_valid(schema.get("items", True), root)
        low = schema.get("minItems", 0)
        return st.lists(items, min_size=low, max_size=min(schema.get("maxItems", 3), low + 3))
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", ())) & set(props)
        return st.fixed_dictionaries(
            {name: near_valid(props[name], root) for name in sorted(required)},
            optional={
                name: near_valid(sub, root)
                for name, sub in sorted(props.items())
                if name not in required and sub is not False
            },
        )
    return ANY_JSON  # pragma: no cover - every shipped subschema has a type


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    fmt = schema.get("format")
    if fmt == "date":
        return st.dates().map(lambda d: d.isoformat())
    if fmt == "date-time":
        # hypothesis wants naive bounds; ``timezones`` attaches the offset.
        low, high = datetime(1900, 1, 1), datetime(2100, 1, 1)  # noqa: DTZ001
        moments = st.datetimes(low, high, timezones=ZONES)
        return moments.map(lambda m: m.isoformat())
    if fmt == "email":
        return st.from_regex(r"[a-z0-9._-]{1,20}@[a-z0-9-]{1,20}\.[a-z]{2,6}", fullmatch=True)
    low, high = schema.get("minLength", 0), schema.get("maxLength", 40)
    if "pattern" in schema:
        base = st.from_regex(schema["pattern"], fullmatch=True)
    else:
        base = st.text(min_size=low, max_size=high)
    return base.filter(lambda s: low <= len(s) <= high)


def _locations(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here]
    if isinstance(value, dict):
        for key, sub in value.items():
            found += _locations(sub, (*here, key))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            found += _locations(sub, (*here, index))
    return found


def _mutate(payload: Any, data: st.DataObject) -> Any:
    """Replace, drop or add one value somewhere in ``payload``."""
    payload = copy.deepcopy(payload)
    where = data.draw(st.sampled_from(_locations(payload)))
    action = data.draw(st.sampled_from(["replace", "tricky", "drop", "add", "append-newline"]))
    if not where:
        return data.draw(ANY_JSON | TRICKY)
    parent = payload
    for step in where[:-1]:
        parent = parent[step]
    last = where[-1]
    if action == "replace":
        parent[last] = data.draw(ANY_JSON)
    elif action == "tricky":
        parent[last] = data.draw(TRICKY)
    elif action == "drop":
        del parent[last]
    elif action == "add" and isinstance(parent[last], dict):
        parent[last][data.draw(st.text(min_size=1, max_size=8))] = data.draw(ANY_JSON)
    elif isinstance(parent[last], str):
        parent[last] += "\n"
    return payload


PROPERTY_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: f"{e.type}@{e.version}")
@PROPERTY_SETTINGS
@given(data=st.data())
def test_fast_and_detailed_verdicts_agree_on_near_valid_payloads(entry, data):
    """For payloads generated from the schema, jsonschema-rs and jsonschema agree."""
    compiled = REGISTRY.compiled(entry.type, entry.version)
    payload = data.draw(near_valid(entry.schema, dict(entry.schema)))
    assert compiled.is_valid_fast(payload) == compiled.is_valid_detailed(payload)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: f"{e.type}@{e.version}")
@PROPERTY_SETTINGS
@given(data=st.data())
def test_fast_and_detailed_verdicts_agree_on_mutated_payloads(entry, data):
    """After one random mutation of a generated payload, both validators still agree."""
    compiled = REGISTRY.compiled(entry.type, entry.version)
    payload = _mutate(data.draw(near_valid(entry.schema, dict(entry.schema))), data)
    fast, slow = compiled.is_valid_fast(payload), compiled.is_valid_detailed(payload)
    assert fast == slow
    assert compiled.validate(payload).ok is slow


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: f"{e.type}@{e.version}")
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_generated_valid_payloads_take_the_fast_path(entry, data):
    """Payloads jsonschema accepts are accepted by the fast path with an empty report."""
    compiled = REGISTRY.compiled(entry.type, entry.version)
    payload = data.draw(
        near_valid(entry.schema, dict(entry.schema)).filter(compiled.is_valid_detailed)
    )
    assert compiled.is_valid_fast(payload)
    assert compiled.validate(payload).errors == ()
