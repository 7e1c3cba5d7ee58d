"""`tabadul pii scan`: a table or JSON, exit 0 without findings, 1 with, 2 on errors."""

import json

import typer
from typer.testing import CliRunner

from tabadul.cli._pii import pii_app
from tests.governance.pii import generate


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(pii_app, name="pii")
    return app


def test_findings_exit_1_with_a_table(tmp_path):
    path = tmp_path / "people.csv"
    generate.write_table(path, rows=30)
    result = CliRunner().invoke(_app(), ["pii", "scan", str(path)])
    assert result.exit_code == 1, result.output
    assert "téléphone" in result.stdout
    assert "phone" in result.stdout
    assert "blocked" in result.stdout


def test_json_report(tmp_path):
    path = tmp_path / "people.csv"
    columns = generate.write_table(path, rows=30)
    result = CliRunner().invoke(
        _app(), ["pii", "scan", str(path), "--json", "--max-positions", "2"]
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["has_findings"] is True
    assert report["rows_scanned"] == 30
    assert "CIN:national-id" in {f["id"] for f in report["findings"]}
    assert all(len(f["rows"]) <= 2 for f in report["findings"])
    values = {v for c in columns for v, label in zip(c.values, c.labels, strict=True) if label}
    assert not [v for v in values if v in result.stdout]


def test_no_findings_exit_0(tmp_path):
    path = tmp_path / "amounts.csv"
    path.write_text("montant,ville\n12.5,Rabat\n", encoding="utf-8")
    result = CliRunner().invoke(_app(), ["pii", "scan", str(path)])
    assert result.exit_code == 0, result.output
    assert "no PII found" in result.stdout


def test_errors_exit_2_with_a_code(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"nom\nF\xe8s\n")
    result = CliRunner().invoke(_app(), ["pii", "scan", str(path)])
    assert result.exit_code == 2
    assert "error [not-utf8]:" in result.output
    missing = CliRunner().invoke(_app(), ["pii", "scan", str(tmp_path / "no.csv"), "--json"])
    assert missing.exit_code == 2
    assert json.loads(missing.stdout)["error"]["code"] == "bad-source"


def test_an_endless_stream_ends_with_a_coded_error():
    """/dev/zero never ends and holds no line break: the line limit stops it, exit 2."""
    result = CliRunner().invoke(_app(), ["pii", "scan", "/dev/zero"])
    assert result.exit_code == 2
    assert "error [line-too-long]:" in result.output


def test_limits_come_from_the_environment(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(30)) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        _app(), ["pii", "scan", str(path)], env={"TABADUL_CSV_MAX_COLUMNS": "20"}
    )
    assert result.exit_code == 2
    assert "error [too-wide]:" in result.output


def test_the_declared_delimiter_is_used(tmp_path):
    """The file is read with the delimiter given (comma unless told), never a guessed one."""
    path = tmp_path / "semi.csv"
    path.write_text("nom;téléphone\nAmina;0612345678\n", encoding="utf-8")
    semi = CliRunner().invoke(_app(), ["pii", "scan", str(path), "--json", "--delimiter", ";"])
    assert "téléphone:phone" in {f["id"] for f in json.loads(semi.stdout)["findings"]}
    comma = CliRunner().invoke(_app(), ["pii", "scan", str(path), "--json"])
    assert [c["name"] for c in json.loads(comma.stdout)["columns"]] == ["nom;téléphone"]
