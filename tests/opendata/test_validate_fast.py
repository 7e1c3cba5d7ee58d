"""The validation fast path agrees with Frictionless: on generated schemas and files (near
misses included) it never calls valid what Frictionless calls invalid, and where both say
valid they count the same rows. Invalid files get Frictionless's own report."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from opendata import validate_resource
from opendata._validate import _frictionless, _schema

CELLS = [
    "", "0", "1", "007", "-3", "+4", " 5 ", "1_000", "1.5", "-0.25", "1e3", "NaN", "inf",
    "abc", "ABC", "x y", "٣", "2024", "1999", "0999", "2024-02-28", "2024-02-30", "28/02/2024",
    "true", "false", "TRUE", "yes", "no", "M", "F", "é", 'say "q"', "a,b",
]  # fmt: skip
# Cells each type accepts, so that a good share of the generated files are valid.
GOOD = {
    "integer": ["0", "1", "-3", "42"],
    "number": ["1.5", "-0.25", "3"],
    "string": ["abc", "M", "F", "2024"],
    "year": ["2024", "1999"],
    "date": ["2024-02-28", "2026-11-22"],
    "boolean": ["true", "false"],
}
TYPES = list(GOOD)


@st.composite
def fields(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 4))
    out = []
    for i in range(count):
        kind = draw(st.sampled_from(TYPES))
        constraints: dict[str, Any] = {}
        if draw(st.booleans()):
            constraints["required"] = True
        if kind == "string" and draw(st.booleans()):
            if draw(st.booleans()):
                constraints["enum"] = ["M", "F"]
            else:
                constraints["pattern"] = draw(st.sampled_from(["[a-z]+", "[0-9]{4}"]))
        if kind in ("integer", "number") and draw(st.booleans()):
            constraints[draw(st.sampled_from(["minimum", "maximum"]))] = 0
        if draw(st.integers(0, 5)) == 0:
            constraints["unique"] = True
        field: dict[str, Any] = {"name": f"c{i}", "type": kind}
        if constraints:
            field["constraints"] = constraints
        out.append(field)
    return out


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    schema: dict[str, Any] = {"fields": draw(fields())}
    names = [f["name"] for f in schema["fields"]]
    if draw(st.integers(0, 4)) == 0:
        schema["primaryKey"] = [names[0]]
    header = names if draw(st.integers(0, 9)) else [*names[:-1], "other"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for _ in range(draw(st.integers(0, 6))):
        width = len(names) if draw(st.integers(0, 9)) else draw(st.integers(0, len(names) + 1))
        kinds = [f["type"] for f in schema["fields"]] + ["string"]
        writer.writerow(
            [
                draw(st.sampled_from(GOOD[kinds[i]] if draw(st.integers(0, 5)) else CELLS))
                for i in range(width)
            ]
        )
    return schema, buffer.getvalue()


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_fast_path_never_disagrees_with_frictionless(case: tuple[dict[str, Any], str]) -> None:
    schema, text = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        path.write_text(text, encoding="utf-8")
        ours = validate_resource(path, schema)
        theirs = _frictionless(path.resolve(), _schema(schema))
    event("valid" if theirs.valid else "invalid")
    assert ours.valid == theirs.valid, (schema, text, theirs.errors)
    if ours.valid:
        assert ours.rows == theirs.rows


def test_progress_is_told_the_rows_read(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("n\n" + "".join(f"{i}\n" for i in range(120_000)), encoding="utf-8")
    seen: list[int] = []
    schema = {"fields": [{"name": "n", "type": "integer"}]}
    report = validate_resource(path, schema, progress=seen.append)
    assert (report.valid, report.rows) == (True, 120_000)
    assert seen == [50_000, 100_000]


def test_a_byte_order_mark_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffn\n1\n".encode())
    assert validate_resource(path, {"fields": [{"name": "n", "type": "integer"}]}).valid
