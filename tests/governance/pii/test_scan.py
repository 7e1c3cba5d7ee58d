"""Scanning tables: findings per column, reports without values, precision and recall per
detector on generated data, typed errors, and flat memory on long files."""

import json
import tracemalloc
from collections import Counter

import pytest

from governance import BadSource, Dialect, NotUtf8
from governance.pii import Screener, scan_csv, scan_rows
from tests.governance.pii import generate

MIN_PRECISION = 0.95
MIN_RECALL = 0.9


def test_findings_per_column_with_counts_share_and_rows():
    """A column's finding has its count, share of non-empty values and first row numbers."""
    rows = [["Amina Alaoui", "0612345678", "12.50"], ["", "n/a", "3"], ["Omar Tazi", "", "4"]]
    rows += [["Salma Fassi", "+212 6 11 22 33 44", "5"]] * 10
    report = scan_rows(["Nom complet", "GSM", "montant"], rows, max_positions=3)
    phone = report.finding("GSM:phone")
    assert phone is not None
    assert (phone.matches, phone.rows, phone.hinted, phone.blocking) == (11, (1, 4, 5), True, True)
    assert phone.share == pytest.approx(11 / 12)
    name = report.finding("Nom complet:person-name")
    assert name is not None
    assert name.matches == 12
    assert report.columns[2].findings == ()
    assert report.rows_scanned == 13
    assert report.has_findings
    assert report.blocking


def test_header_alone_is_a_finding_when_values_do_not_confirm_it():
    """An empty 'passeport' column still blocks: its name says what it holds."""
    report = scan_rows(["passeport", "montant"], [["", "1"], ["", "2"]])
    assert [f.id for f in report.findings] == ["passeport:header-passport"]
    assert report.findings[0].source == "header"


def test_no_findings():
    report = scan_rows(["montant", "ville"], [["1.5", "Rabat"], ["2", "Fès"]])
    assert not report.has_findings
    assert report.as_dict()["findings"] == []


def test_ragged_rows_and_duplicate_headers_get_unique_keys():
    report = scan_rows(["tel", "tel"], [["0612345678"], ["1", "2", "a.b@gov.ma"]])
    assert [c.key for c in report.columns] == ["tel#1", "tel#2", "#3"]
    assert {f.id for f in report.findings} >= {"tel#1:phone", "#3:email"}


def test_sample_rows_stops_early_and_says_so():
    rows = ([str(i)] for i in range(100))
    report = scan_rows(["n"], rows, sample_rows=10)
    assert (report.rows_scanned, report.complete) == (10, False)


def test_report_never_contains_values(tmp_path):
    """No generated PII value appears in the JSON of the report."""
    path = tmp_path / "people.csv"
    columns = generate.write_table(path)
    text = json.dumps(scan_csv(path).as_dict(), ensure_ascii=False)
    values = {v for c in columns for v, label in zip(c.values, c.labels, strict=True) if label}
    assert values
    leaked = sorted(v for v in values if v in text)
    assert leaked == []


def test_precision_and_recall_per_detector(capsys):
    """On generated columns (positives under headers in three languages, lookalike
    negatives), each detector claims cells with precision >= 0.95 and recall >= 0.9."""
    screener = Screener()
    tp, fp, fn = Counter(), Counter(), Counter()
    for column in generate.columns():
        report = screener.scan_rows([column.header], ([v] for v in column.values))
        reported = {f.detector for f in report.findings if f.source == "values"}
        for value, label in zip(column.values, column.labels, strict=True):
            detector = screener.classify(value)
            predicted = detector.name if detector and detector.name in reported else None
            if predicted and predicted == label:
                tp[label] += 1
                continue
            if predicted:
                fp[predicted] += 1
            if label:
                fn[label] += 1
    lines = [f"{'detector':<12} {'precision':>9} {'recall':>7} {'tp':>6} {'fp':>4} {'fn':>4}"]
    scores = {}
    for name in [d.name for d in screener.detectors]:
        precision = tp[name] / ((tp[name] + fp[name]) or 1)
        recall = tp[name] / ((tp[name] + fn[name]) or 1)
        scores[name] = (precision, recall)
        lines.append(
            f"{name:<12} {precision:>9.3f} {recall:>7.3f} {tp[name]:>6} {fp[name]:>4} {fn[name]:>4}"
        )
    with capsys.disabled():  # the table is part of the test's output, even without -s
        print("\nPII detectors on generated data:\n" + "\n".join(lines))  # noqa: T201
    for name, (precision, recall) in scores.items():
        assert tp[name] > 0, name
        assert precision >= MIN_PRECISION, (name, precision)
        assert recall >= MIN_RECALL, (name, recall)


def test_utf8_bom_and_semicolons(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffnom;téléphone\nAmina;0612345678\n".encode())
    report = scan_csv(path, dialect=Dialect(";"))
    assert [c.name for c in report.columns] == ["nom", "téléphone"]
    assert report.finding("téléphone:phone") is not None


@pytest.mark.parametrize(
    ("content", "error", "code"),
    [
        (b"nom,ville\nAmina,F\xe8s\n", NotUtf8, "not-utf8"),
        (b"", BadSource, "bad-source"),
        # an opening quote never closed runs to the end of the file (whatever csv's field
        # size limit, which other libraries in the process may raise)
        (b'nom,ville\n"Amina,Rabat\nOmar,Fes\n', BadSource, "bad-source"),
        (b'nom,ville\n"Amina"x,"Rabat\n', BadSource, "bad-source"),
    ],
)
def test_typed_errors_for_bad_files(tmp_path, content, error, code):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(error) as info:
        scan_csv(path)
    assert isinstance(info.value, BadSource)
    assert info.value.as_dict()["code"] == code


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"nom,ville\nAmina,Rabat\nOmar,F\xe8s\n")
    with pytest.raises(NotUtf8) as info:
        scan_csv(path)
    assert info.value.line == 3
    assert "F\xe8s" not in info.value.message


def test_unreadable_files(tmp_path):
    with pytest.raises(BadSource, match="cannot read"):
        scan_csv(tmp_path / "missing.csv")
    with pytest.raises(BadSource, match="cannot read"):
        scan_csv(tmp_path)


def test_progress_reports_bytes(tmp_path):
    path = tmp_path / "long.csv"
    generate.write_stream(path, 40_000)
    seen: list[tuple[int, int]] = []
    scan_csv(path, progress=lambda done, total: seen.append((done, total)))
    size = path.stat().st_size
    assert len(seen) >= 2
    assert seen[-1] == (size, size)
    assert all(0 < done <= total == size for done, total in seen)


def _peak(path) -> int:
    tracemalloc.start()
    try:
        report = scan_csv(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.has_findings
    return peak


def test_memory_stays_flat(tmp_path):
    """Scanning 200,000 rows peaks no higher than scanning 50,000 (plus noise), and low."""
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    generate.write_stream(small, 50_000)
    generate.write_stream(large, 200_000)
    small_peak, large_peak = _peak(small), _peak(large)
    assert large_peak < 1.25 * small_peak + 64 * 1024, (small_peak, large_peak)
    assert large_peak < 1024 * 1024, large_peak
