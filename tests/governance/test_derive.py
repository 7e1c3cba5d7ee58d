# ruff: noqa: RUF001 - Arabic text is the point of these cells, not look-alikes
"""Derived datasets: each column operation, streaming in flat memory, the SHA-256s, and the
lineage that resolves the review's PII findings (SQLite and the real PostgreSQL)."""

from __future__ import annotations

import codecs
import csv
import hashlib
import tracemalloc
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from governance import (
    AuditLog,
    Dialect,
    InvalidInput,
    LineTooLong,
    OtherAgency,
    PiiUnresolved,
    Refused,
    Resolution,
    State,
    TableLimits,
    UnknownDataset,
    Workflow,
    WrongRole,
    head_revision,
)
from governance._db import metadata
from governance._derive import (
    BadSource,
    DerivationResult,
    DerivedNotReviewed,
    Drop,
    GeneraliseDateToYear,
    GeneraliseToPrefix,
    GeneraliseToRange,
    NeutraliseFormulas,
    UnknownColumn,
    column_op,
    derive_csv,
    lineage,
    record_derivation,
)
from governance.pii import scan_csv
from tests.governance.conftest import Clock, classify, register


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write(path: Path, text: str, *, bom: bool = False) -> Path:
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + text.encode("utf-8"))
    return path


def rows_of(path: Path) -> list[list[str]]:
    text = path.read_bytes().decode("utf-8")
    return [line.split(",") for line in text.split("\r\n") if line]


# ---- the operations --------------------------------------------------------------------


def test_drop_removes_the_column_and_keeps_arabic_text(tmp_path):
    """A dropped column disappears from header and rows; other cells pass through as is."""
    src = write(tmp_path / "in.csv", "ville,cin,n\nالدار البيضاء,BE123456,1\nفاس,,2\n")
    result = derive_csv(src, tmp_path / "out.csv", [Drop("cin")])
    assert rows_of(tmp_path / "out.csv") == [["ville", "n"], ["الدار البيضاء", "1"], ["فاس", "2"]]
    assert result.rows == 2
    assert result.columns == ("ville", "n")
    assert result.emptied == {}


def test_date_to_year_keeps_years_and_counts_what_it_cannot_read(tmp_path):
    """ISO dates become their year; anything else is emptied and counted; empties stay."""
    cells = [
        "1990-04-12",  # -> 1990
        " 1985-11-02 ",  # trimmed -> 1985
        "",  # empty: not counted
        "2024-02-30",  # not a calendar date
        "12/04/1990",  # not ISO
        "1990-4-12",  # not YYYY-MM-DD
        "١٩٩٠-٠٤-١٢",  # Arabic-Indic digits: not the ISO form
        "1990-04-12T10:00",  # a timestamp, not a date
        "   ",  # blank: not counted
    ]
    src = write(tmp_path / "in.csv", "d\n" + "\n".join(f'"{c}"' for c in cells) + "\n")
    result = derive_csv(src, tmp_path / "out.csv", [GeneraliseDateToYear("d")])
    out = [r[0] if r else "" for r in rows_of(tmp_path / "out.csv")[1:]]
    assert result.rows == len(cells)
    assert result.emptied == {"d": 5}
    assert out[:2] == ["1990", "1985"]
    text = (tmp_path / "out.csv").read_text(encoding="utf-8")
    assert "2024" not in text
    assert "1990-04-12" not in text
    assert "١٩٩٠" not in text


@pytest.mark.parametrize(
    ("step", "value", "expected"),
    [
        (1000, "1500.75", "1000-1999"),
        (1000, "1000", "1000-1999"),
        (1000, "999.99", "0-999"),
        (1000, "0", "0-999"),
        (1000, "-5", "-1000--1"),
        (1000, "+2500", "2000-2999"),
        (1000, " 12500.50 ", "12000-12999"),
        (1000, ".5", "0-999"),
        (
            10,
            "12345678901234567890123456789012345.5",
            "12345678901234567890123456789012340-12345678901234567890123456789012349",
        ),
        (1, "7.9", "7-7"),
    ],
)
def test_range_labels(tmp_path, step, value, expected):
    """Amounts become the range of width ``step`` holding them, exactly, however long."""
    src = write(tmp_path / "in.csv", f"amount\n{value}\n")
    result = derive_csv(src, tmp_path / "out.csv", [GeneraliseToRange("amount", step)])
    assert rows_of(tmp_path / "out.csv")[1] == [expected]
    assert result.emptied == {"amount": 0}


def test_range_empties_what_is_not_a_plain_decimal(tmp_path):
    """Exponents, NaN, infinity, separators, currency and words are emptied and counted."""
    bad = ["1e5", "NaN", "Infinity", "1 000", "12,5", "100 MAD", "abc", "١٢٣", "--1", "."]
    src = write(tmp_path / "in.csv", "amount\n" + "\n".join(f'"{b}"' for b in bad) + "\n\n")
    result = derive_csv(src, tmp_path / "out.csv", [GeneraliseToRange("amount", 100)])
    assert result.emptied == {"amount": len(bad)}
    assert result.rows == len(bad)
    assert (tmp_path / "out.csv").read_bytes() == b"amount\r\n" + b'""\r\n' * len(bad)


def test_prefix_keeps_the_first_characters(tmp_path):
    """Postcodes keep their first digits; Arabic text keeps its first letters; short cells stay."""
    src = write(tmp_path / "in.csv", "cp,quartier\n20250,المعاريف\n 10000 ,حي\n,\n4,x\n")
    result = derive_csv(
        src,
        tmp_path / "out.csv",
        [GeneraliseToPrefix("cp", 3), GeneraliseToPrefix("quartier", 3)],
    )
    assert rows_of(tmp_path / "out.csv")[1:] == [
        ["202", "الم"],
        ["100", "حي"],
        ["", ""],
        ["4", "x"],
    ]
    assert result.emptied == {"cp": 0, "quartier": 0}


def test_quoted_fields_survive(tmp_path):
    """Commas, quotes and line breaks inside cells are written back correctly quoted."""
    src = write(tmp_path / "in.csv", 'a,b,c\n"x, y","say ""hi""","two\nlines"\n')
    derive_csv(src, tmp_path / "out.csv", [Drop("a")])
    assert (tmp_path / "out.csv").read_bytes() == b'b,c\r\n"say ""hi""","two\nlines"\r\n'


def test_bom_is_tolerated_and_hashed(tmp_path):
    """A BOM does not become part of the first column name; the source hash covers it."""
    src = write(tmp_path / "in.csv", "cin,n\nBE1,1\n", bom=True)
    result = derive_csv(src, tmp_path / "out.csv", [Drop("cin")])
    assert (tmp_path / "out.csv").read_bytes() == b"n\r\n1\r\n"
    assert (tmp_path / "out.csv").stat().st_mode & 0o777 == 0o644  # readable by the publisher
    assert result.source_sha256 == sha(src)
    assert result.target_sha256 == sha(tmp_path / "out.csv")


def test_other_dialect(tmp_path):
    """The declared dialect is read and written; bounds apply to the source as everywhere."""
    src = write(tmp_path / "in.csv", "a;b\n1;2000-01-01\n")
    derive_csv(src, tmp_path / "out.csv", [GeneraliseDateToYear("b")], dialect=Dialect(";"))
    assert (tmp_path / "out.csv").read_bytes() == b"a;b\r\n1;2000\r\n"
    short = TableLimits(max_line=12)
    with pytest.raises(LineTooLong):
        derive_csv(src, tmp_path / "x.csv", [Drop("a")], dialect=Dialect(";"), limits=short)
    assert not (tmp_path / "x.csv").exists()


def test_sha256s_and_as_dict(tmp_path):
    """The result names both files by SHA-256 and lists the operations as data."""
    src = write(tmp_path / "in.csv", "nom,naissance,salaire,cp\nA,1990-01-01,12500,20250\n")
    plan = [
        Drop("nom"),
        GeneraliseDateToYear("naissance"),
        GeneraliseToRange("salaire", 1000),
        GeneraliseToPrefix("cp", 2),
    ]
    result = derive_csv(src, tmp_path / "out.csv", plan)
    assert result.source_sha256 == sha(src)
    assert result.target_sha256 == sha(tmp_path / "out.csv")
    assert result.as_dict() == {
        "source_sha256": sha(src),
        "target_sha256": sha(tmp_path / "out.csv"),
        "rows": 1,
        "columns": ["naissance", "salaire", "cp"],
        "operations": [
            {"op": "drop", "column": "nom"},
            {"op": "date-to-year", "column": "naissance"},
            {"op": "range", "column": "salaire", "step": 1000},
            {"op": "prefix", "column": "cp", "keep": 2},
        ],
        "emptied": {"naissance": 0, "salaire": 0, "cp": 0},
    }
    assert (tmp_path / "out.csv").read_bytes() == b"naissance,salaire,cp\r\n1990,12000-12999,20\r\n"
    assert [column_op(d) for d in result.as_dict()["operations"]] == plan


def test_unknown_column_is_refused_and_nothing_is_written(tmp_path):
    src = write(tmp_path / "in.csv", "a,b\n1,2\n")
    with pytest.raises(UnknownColumn) as caught:
        derive_csv(src, tmp_path / "out.csv", [Drop("a"), Drop("cin"), Drop("tel")])
    assert caught.value.code == "unknown-column"
    assert caught.value.columns == ("cin", "tel")
    assert caught.value.as_dict()["columns"] == ["cin", "tel"]
    assert isinstance(caught.value, InvalidInput)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_ambiguous_column_is_refused(tmp_path):
    src = write(tmp_path / "in.csv", "a,a,b\n1,2,3\n")
    with pytest.raises(UnknownColumn, match="more than once"):
        derive_csv(src, tmp_path / "out.csv", [Drop("a")])


@pytest.mark.parametrize(
    ("content", "match", "code"),
    [
        (b"", "no header", "bad-source"),
        (b"a,b\n1,2\n\xff\xfe,3\n", "not UTF-8", "not-utf8"),
        (b"a,b\n1,2\n1,2,3\n", "line 3: 3 fields", "bad-source"),
        (b'a,b\n"1"x,2\n', "line 2", "bad-source"),
    ],
)
def test_bad_sources_are_refused_and_leave_nothing(tmp_path, content, match, code):
    src = tmp_path / "in.csv"
    src.write_bytes(content)
    with pytest.raises(BadSource, match=match) as caught:
        derive_csv(src, tmp_path / "out.csv", [Drop("a")])
    assert caught.value.code == code
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_missing_source_and_self_overwrite(tmp_path):
    with pytest.raises(BadSource, match="cannot read"):
        derive_csv(tmp_path / "absent.csv", tmp_path / "out.csv", [Drop("a")])
    src = write(tmp_path / "in.csv", "a,b\n1,2\n")
    with pytest.raises(InvalidInput, match="overwrite its source"):
        derive_csv(src, src, [Drop("a")])
    assert src.read_text() == "a,b\n1,2\n"


def test_failed_derivation_keeps_an_existing_target(tmp_path):
    """The target is replaced only by a complete derivation."""
    target = write(tmp_path / "out.csv", "old\n")
    src = write(tmp_path / "in.csv", "a,b\n1,2\n1\n")
    with pytest.raises(BadSource):
        derive_csv(src, target, [Drop("a")])
    assert target.read_text() == "old\n"


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (list, "empty"),
        (lambda: [Drop("a"), GeneraliseToPrefix("a", 2)], "twice"),
        (lambda: [GeneraliseToRange("a", 0)], "positive integer"),
        (lambda: [GeneraliseToRange("a", True)], "positive integer"),
        (lambda: [GeneraliseToPrefix("a", -1)], "positive integer"),
        (lambda: [Drop("")], "non-empty"),
        (lambda: "a", "list of column operations"),
        (lambda: [column_op({"op": "hash", "column": "a"})], "unknown operation"),
        (lambda: [column_op({"op": "range", "column": "a", "width": 3})], "bad fields"),
    ],
)
def test_bad_plans_are_refused(tmp_path, make, match):
    src = write(tmp_path / "in.csv", "a,b\n1,2\n")
    with pytest.raises(InvalidInput, match=match):
        derive_csv(src, tmp_path / "out.csv", make())


def test_streams_a_large_file_in_flat_memory(tmp_path):
    """A file of several megabytes is derived with a peak far below its size, and the same
    peak as a file ten times smaller."""

    def make(path: Path, rows: int) -> Path:
        with path.open("w", encoding="utf-8", newline="") as out:
            out.write("nom,cin,naissance,salaire,cp,ville\n")
            for i in range(rows):
                out.write(
                    f"Amina Alaoui {i},BE{i:06d},19{i % 90 + 10}-0{i % 9 + 1}-1{i % 9},"
                    f"{i * 37 % 100000}.50,{20000 + i % 900},الدار البيضاء\n"
                )
        return path

    plan = [
        Drop("nom"),
        Drop("cin"),
        GeneraliseDateToYear("naissance"),
        GeneraliseToRange("salaire", 1000),
        GeneraliseToPrefix("cp", 3),
    ]
    peaks = []
    for rows in (10_000, 100_000):
        src = make(tmp_path / f"in-{rows}.csv", rows)
        tracemalloc.start()
        try:
            result = derive_csv(src, tmp_path / f"out-{rows}.csv", plan)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert result.rows == rows
        assert result.emptied == {"naissance": 0, "salaire": 0, "cp": 0}
        assert result.source_sha256 == sha(src)
        assert result.target_sha256 == sha(tmp_path / f"out-{rows}.csv")
    size = (tmp_path / "in-100000.csv").stat().st_size
    assert size > 7_000_000
    assert peaks[1] < 1_000_000
    assert peaks[1] < peaks[0] * 2 + 100_000


def test_neutralise_turns_formula_cells_into_text(tmp_path):
    """Formula cells get a leading apostrophe (OWASP's advice for CSV injection); numbers,
    plain text and empty cells are left as they are."""
    cells = ['=HYPERLINK("http://x.example")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3",
             " =1+1", "-5", "12.5", "texte", "", "'=déjà neutralisé"]  # fmt: skip
    src = tmp_path / "in.csv"
    with src.open("w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows([["note", "n"], *([c, str(i)] for i, c in enumerate(cells))])
    result = derive_csv(src, tmp_path / "out.csv", [NeutraliseFormulas("note")])
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as derived:
        out_cells = [row[0] for row in list(csv.reader(derived))[1:]]
    assert out_cells == [
        "'=HYPERLINK(\"http://x.example\")", "'+cmd|' /C calc'!A0", "'@SUM(1+1)", "'-2+3",
        "' =1+1", "-5", "12.5", "texte", "", "'=déjà neutralisé",
    ]  # fmt: skip
    assert result.emptied == {"note": 0}
    assert scan_csv(tmp_path / "out.csv").findings == ()
    assert column_op({"op": "neutralise", "column": "note"}) == NeutraliseFormulas("note")


# ---- lineage and the workflow ----------------------------------------------------------

PERSONAL = (
    "nom,cin,date_naissance,telephone,code_postal,salaire,ville\n"
    "Amina Alaoui,BE123456,1990-04-12,0612345678,20250,12500.50,الدار البيضاء\n"
    "Karim Bennani,AB654321,1985-11-02,0661234567,10000,8000,الرباط\n"
    "Nadia Tazi,CD112233,inconnue,0522334455,30000,,فاس\n"
)
FULL_PLAN = (
    Drop("nom"),
    Drop("cin"),
    Drop("telephone"),
    GeneraliseDateToYear("date_naissance"),
    GeneraliseToPrefix("code_postal", 2),
)


@pytest.fixture
def original(tmp_path) -> Path:
    return write(tmp_path / "beneficiaires.csv", PERSONAL)


def findings_of(path: Path) -> list[str]:
    return [f.id for f in scan_csv(path).findings]


def prepare(flow: Workflow, original: Path, plan, *, submit_derived: bool = True):
    """Register and classify, derive, then submit (the derived bytes, with the original
    file's PII findings)."""
    register(flow)
    found = findings_of(original)
    assert found == [
        "nom:person-name",
        "cin:national-id",
        "date_naissance:birth-date",
        "telephone:phone",
    ]
    result = derive_csv(original, original.with_name("publishable.csv"), plan)
    classify(flow, justification="personal columns dropped or generalised")
    submitted = result.target_sha256 if submit_derived else sha(original)
    flow.submit_for_review("amina", "tariffs", content_sha256=submitted, pii_findings=found)
    return result


def test_migrated_database_has_the_lineage_table(store):
    """Migration 0003 built exactly the table the code queries (other modules' tables are
    test_migrations' concern: they may not be imported here)."""
    assert store.revision() == head_revision()
    assert "derivations" in sa.inspect(store.engine).get_table_names()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diff if "derivations" in repr(d)] == []


def test_derivation_resolves_findings_and_approval_succeeds(flow, store, original):
    """register -> classify -> derive -> submit with the original's findings -> record the
    derivation -> every finding resolved (drop / generalise) -> another person approves ->
    the derived bytes can be published."""
    result = prepare(flow, original, FULL_PLAN)
    derived = original.with_name("publishable.csv")
    # the values no longer identify anyone; only the generalised column's name still hints
    assert findings_of(derived) == ["date_naissance:header-birth-date"]
    assert result.emptied == {"date_naissance": 1, "code_postal": 0}

    recorded = record_derivation(
        store, "amina", "tariffs", result, reason="open data release", clock=Clock()
    )

    review = flow.review("tariffs")
    assert review is not None
    assert review.unresolved == ()
    resolutions = {f.finding_id: (f.resolution, f.resolved_by) for f in review.findings}
    assert resolutions == {
        "nom:person-name": (Resolution.DROP, "amina"),
        "cin:national-id": (Resolution.DROP, "amina"),
        "telephone:phone": (Resolution.DROP, "amina"),
        "date_naissance:birth-date": (Resolution.GENERALISE, "amina"),
    }
    assert recorded.review_id == review.review_id
    assert set(recorded.resolved) == set(resolutions)

    assert lineage(store, "tariffs") == [recorded]
    assert recorded.source_sha256 == sha(original)
    assert recorded.derived_sha256 == sha(derived)
    assert recorded.operations == tuple(op.as_dict() for op in FULL_PLAN)
    assert recorded.emptied == {"date_naissance": 1, "code_postal": 0}
    assert recorded.rows == 3
    assert recorded.actor == "amina"
    assert recorded.reason == "open data release"
    assert recorded.as_dict()["operations"][0] == {"op": "drop", "column": "nom"}

    entries = flow.history("tariffs")
    derive_entries = [e for e in entries if e.action == "dataset.derive"]
    assert len(derive_entries) == 1
    entry = derive_entries[0]
    assert entry.content_sha256 == sha(derived)
    assert entry.details["derivation"] == recorded.derivation_id
    assert entry.details["source_sha256"] == sha(original)
    assert entry.details["operations"] == [op.as_dict() for op in FULL_PLAN]
    resolve_entries = [e for e in entries if e.action == "finding.resolve"]
    assert {e.details["finding"] for e in resolve_entries} == set(resolutions)
    assert all(e.details["derivation"] == recorded.derivation_id for e in resolve_entries)
    assert all(e.seq > entry.seq for e in resolve_entries)
    AuditLog(store).verify()

    approved = flow.approve("karim", "tariffs", reason="checked the derived file")
    assert approved.decision == "approved"
    assert approved.content_sha256 == sha(derived)
    published = flow.mark_published(
        "amina", "tariffs", content_sha256=sha(derived), reference="ckan:x"
    )
    assert published.state is State.PUBLISHED
    assert flow.audit.verify().count == len(flow.audit.entries())


def test_a_pii_column_left_in_blocks_approval(flow, store, original):
    """A derivation that keeps the phone column leaves its finding open: pii-unresolved."""
    plan = [op for op in FULL_PLAN if op.column != "telephone"]
    result = prepare(flow, original, plan)
    recorded = record_derivation(store, "amina", "tariffs", result, reason="partial")
    assert "telephone:phone" not in recorded.resolved
    with pytest.raises(PiiUnresolved) as caught:
        flow.approve("karim", "tariffs")
    assert caught.value.code == "pii-unresolved"
    assert caught.value.findings == ("telephone:phone",)
    assert flow.dataset("tariffs").state is State.IN_REVIEW
    AuditLog(store).verify()


def test_findings_already_resolved_are_kept(flow, store, original):
    """A finding the steward already justified keeps its resolution."""
    result = prepare(flow, original, FULL_PLAN)
    flow.resolve_finding(
        "samir", "tariffs", "cin:national-id", resolution="justify", reason="needed"
    )
    recorded = record_derivation(store, "amina", "tariffs", result, reason="release")
    assert "cin:national-id" not in recorded.resolved
    review = flow.review("tariffs")
    assert review is not None
    cin = next(f for f in review.findings if f.finding_id == "cin:national-id")
    assert (cin.resolution, cin.resolved_by) == (Resolution.JUSTIFY, "samir")


def test_review_of_other_bytes_is_refused_and_changes_nothing(flow, store, original):
    """Resolving findings of a review of the original bytes would approve the PII itself."""
    result = prepare(flow, original, FULL_PLAN, submit_derived=False)
    before = flow.audit.verify()
    with pytest.raises(DerivedNotReviewed) as caught:
        record_derivation(store, "amina", "tariffs", result, reason="release")
    assert caught.value.code == "derived-not-reviewed"
    assert isinstance(caught.value, Refused)
    assert lineage(store, "tariffs") == []
    assert flow.audit.verify() == before
    review = flow.review("tariffs")
    assert review is not None
    assert len(review.unresolved) == 4


def test_lineage_outside_review_resolves_nothing(flow, store, original):
    """Before submission a derivation is recorded alone; lineage lists every one in order."""
    register(flow)
    classify(flow)
    first = derive_csv(original, original.with_name("a.csv"), [Drop("cin")])
    second = derive_csv(original, original.with_name("b.csv"), list(FULL_PLAN))
    one = record_derivation(store, "amina", "tariffs", first, reason="first cut")
    two = record_derivation(store, "samir", "tariffs", second, reason="second cut")
    assert (one.review_id, one.resolved) == (None, ())
    assert lineage(store, "tariffs") == [one, two]
    assert two.derivation_id > one.derivation_id
    assert flow.dataset("tariffs").state is State.CLASSIFIED
    assert [e.action for e in flow.history("tariffs")][-2:] == ["dataset.derive"] * 2
    AuditLog(store).verify()


def test_who_may_record(flow, store, original):
    """Only stewards of the owning agency record derivations; bad input is refused early."""
    register(flow)
    result = derive_csv(original, original.with_name("d.csv"), [Drop("cin")])
    with pytest.raises(WrongRole):
        record_derivation(store, "karim", "tariffs", result, reason="x")
    with pytest.raises(OtherAgency):
        record_derivation(store, "yasmine", "tariffs", result, reason="x")
    with pytest.raises(InvalidInput, match="reason"):
        record_derivation(store, "amina", "tariffs", result, reason=" ")
    forged = DerivationResult("x", result.target_sha256, 1, (), (Drop("cin"),))
    with pytest.raises(InvalidInput, match="SHA-256"):
        record_derivation(store, "amina", "tariffs", forged, reason="x")
    with pytest.raises(UnknownDataset):
        record_derivation(store, "amina", "nope", result, reason="x")
    with pytest.raises(UnknownDataset):
        lineage(store, "nope")
    assert lineage(store, "tariffs") == []


NOTES = "code,rate,note\n0101,2.5,=cmd|' /C calc'!A0\n0102,3,0612345678\n"


@pytest.mark.parametrize(
    "case",
    [
        (NeutraliseFormulas("note"), ["note:formula"], ["note:phone"]),
        (GeneraliseToPrefix("note", 3), ["note:phone"], ["note:formula"]),
        (Drop("note"), ["note:formula", "note:phone"], []),
    ],
)
def test_an_operation_resolves_only_what_its_output_cannot_hold(flow, store, tmp_path, case):
    """Neutralising formulas says nothing about the phone numbers in the same column, and
    keeping a prefix of a formula keeps the formula: each stays open."""
    op, resolved, left = case
    register(flow)
    source = write(tmp_path / "notes.csv", NOTES)
    found = findings_of(source)
    assert found == ["note:phone", "note:formula"]
    result = derive_csv(source, tmp_path / "derived.csv", [op])
    classify(flow)
    flow.submit_for_review("amina", "tariffs", content_sha256=result.target_sha256,
                           pii_findings=found)  # fmt: skip
    recorded = record_derivation(store, "amina", "tariffs", result, reason="release")
    assert sorted(recorded.resolved) == resolved
    review = flow.review("tariffs")
    assert review is not None
    assert sorted(review.unresolved) == left
    neutralised = [f for f in review.findings if f.resolution is Resolution.NEUTRALISE]
    assert [f.finding_id for f in neutralised] == (
        ["note:formula"] if isinstance(op, NeutraliseFormulas) else []
    )
