"""``tabadul risk train`` and ``tabadul risk score``: the contract and its errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from risk import SAMPLE, Limits, TableTooLarge, read_tables
from tabadul.cli import build_app

KCS = [
    "--label",
    "Fraud",
    "--id",
    "Declaration ID",
    "--time",
    "Date",
    "--exclude",
    "Critical Fraud",
]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Result]:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(build_app(), list(args))

    return run


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sample in two files by time: 2020 to train on, 2021 (less the labels) to score."""
    tmp_path = tmp_path_factory.mktemp("split")
    lines = SAMPLE.read_text("utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    names = header.split(",")
    date = names.index("Date")
    keep = [i for i, n in enumerate(names) if n not in ("Fraud", "Critical Fraud")]
    train = [r for r in rows if r.split(",")[date] < "2021"]
    later = [r for r in rows if r.split(",")[date] >= "2021"]
    (tmp_path / "train.csv").write_text("\n".join([header, *train]) + "\n", "utf-8")
    scored = [",".join(header.split(",")[i] for i in keep)]
    scored += [",".join(r.split(",")[i] for i in keep) for r in later]
    (tmp_path / "later.csv").write_text("\n".join(scored) + "\n", "utf-8")
    return tmp_path / "train.csv", tmp_path / "later.csv"


@pytest.fixture(scope="module")
def trained_once(split, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("trained") / "model"
    args = ["risk", "train", str(split[0]), *KCS, "--model", str(folder), "--json"]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture
def trained(trained_once: Path, tmp_path: Path) -> Path:
    """A copy of the model trained once, for a test to damage."""
    copy = tmp_path / "trained"
    shutil.copytree(trained_once, copy)
    return copy


def refused(result: Result, code: str, *, as_json: bool = False) -> dict:
    """Exit 2, one coded line (or a JSON error), no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if as_json:
        error = json.loads(result.stdout)["error"]
        assert error["code"] == code
        return error
    assert f"error [{code}]:" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    return {}


def test_train_prints_the_hold_out_figures_and_writes_a_model(cli, split, tmp_path):
    result = cli("risk", "train", str(split[0]), *KCS, "--model", "model", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["version"] == "0001"
    assert report["digest"].startswith("sha256:")
    assert set(report["metrics"]) >= {"auc", "precision_top5", "macro_f1"}
    assert 0.5 < report["metrics"]["auc"] <= 1
    assert report["training"]["files"][0]["name"] == "train.csv"
    assert (tmp_path / "model" / "versions" / "0001" / "model.txt").is_file()
    human = cli("risk", "train", str(split[0]), *KCS, "--model", "model")
    assert human.exit_code == 0, human.output
    assert "0002" in human.output
    assert "AUC" in human.output


def test_train_reads_several_files_as_one(cli, split):
    first, _ = split
    lines = first.read_text().splitlines()
    half = len(lines) // 2
    a, b = first.with_name("a.csv"), first.with_name("b.csv")
    a.write_text("\n".join(lines[:half]) + "\n")
    b.write_text("\n".join([lines[0], *lines[half:]]) + "\n")
    result = cli("risk", "train", str(a), str(b), *KCS, "--model", "m", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["training"]["rows"] == len(lines) - 1


def test_score_prints_one_assessment_per_row_in_order(cli, trained, split):
    result = cli("risk", "score", str(split[1]), "--model", str(trained), "--json")
    assert result.exit_code == 0, result.output
    assessments = json.loads(result.stdout)
    ids = [line.split(",")[0] for line in split[1].read_text().splitlines()[1:]]
    assert [a["id"] for a in assessments] == ids
    for a in assessments:
        assert set(a) >= {"id", "score", "flagged", "lane", "reasons"}
        assert 0 <= a["score"] <= 1
        assert a["lane"] in {"green", "yellow", "red"}
        assert a["flagged"] == (a["lane"] == "red")
        assert a["reasons"], a
        assert all(isinstance(r["contribution"], float) for r in a["reasons"])
        assert all(isinstance(r["feature"], str) for r in a["reasons"])
    assert {a["lane"] for a in assessments} == {"green", "yellow", "red"}


def test_the_real_command_keeps_the_contract(trained, split):
    """The installed entry point, as an acceptance check calls it."""
    done = subprocess.run(
        [sys.executable, "-m", "tabadul.cli", "risk", "score", str(split[1]), "--model",
         str(trained), "--json"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == len(split[1].read_text().splitlines()) - 1


def test_no_label_column_is_a_coded_error(cli, split):
    args = ("risk", "train", str(split[0]), "--label", "fraud", "--id", "Declaration ID")
    refused(cli(*args, "--model", "m"), "missing-column")
    error = refused(cli(*args, "--model", "m", "--json"), "missing-column", as_json=True)
    assert error["missing"] == ["fraud"]
    assert not Path("m").exists()


@pytest.mark.parametrize(("content", "code"), [(b"", "bad-table"), (b"a,b\n", "bad-table"),
                                               (b"\xff\xfe,x\n1,2\n", "bad-table"),
                                               (b"a,b\n1,2,3\n4,5,6\n", "bad-table")])  # fmt: skip
def test_an_empty_or_unreadable_file_is_a_coded_error(cli, tmp_path, content, code):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    refused(cli("risk", "train", str(path), "--label", "b", "--id", "a", "--model", "m"), code)
    refused(cli("risk", "train", str(tmp_path / "none.csv"), "--label", "b", "--id", "a",
                "--model", "m"), "bad-table")  # fmt: skip


def test_columns_the_model_does_not_know_or_lacks_are_coded_errors(cli, trained, split):
    lines = split[1].read_text().splitlines()
    extra = split[1].with_name("extra.csv")
    extra.write_text("\n".join([lines[0] + ",Remarks", *(r + ",x" for r in lines[1:])]) + "\n")
    error = refused(
        cli("risk", "score", str(extra), "--model", str(trained), "--json"),
        "unknown-column",
        as_json=True,
    )
    assert error["unknown"] == ["Remarks"]
    names = lines[0].split(",")
    drop = names.index("Net Mass")
    lacking = split[1].with_name("lacking.csv")
    lacking.write_text(
        "\n".join(",".join(c for i, c in enumerate(r.split(",")) if i != drop) for r in lines)
    )
    refused(cli("risk", "score", str(lacking), "--model", str(trained)), "missing-column")


def test_text_in_a_numeric_column_is_a_coded_error(cli, trained, split):
    lines = split[1].read_text().splitlines()
    names = lines[0].split(",")
    cells = lines[2].split(",")
    cells[names.index("Item Price")] = "about ten"
    lines[2] = ",".join(cells)
    bad = split[1].with_name("bad.csv")
    bad.write_text("\n".join(lines) + "\n")
    error = refused(
        cli("risk", "score", str(bad), "--model", str(trained), "--json"),
        "not-a-number",
        as_json=True,
    )
    assert (error["column"], error["row"]) == ("Item Price", 3)


@pytest.mark.parametrize("name", ["model.txt", "state.json", "manifest.json"])
def test_a_tampered_model_folder_is_a_coded_error(cli, trained, split, name):
    path = trained / "versions" / "0001" / name
    path.write_bytes(path.read_bytes()[:-40] + b"tampered")
    refused(cli("risk", "score", str(split[1]), "--model", str(trained)), "model-tampered")
    refused(cli("risk", "show", "--model", str(trained)), "model-tampered")


def test_a_folder_without_a_model_is_a_coded_error(cli, split, tmp_path):
    refused(cli("risk", "score", str(split[1]), "--model", str(tmp_path)), "model-missing")


def test_show_names_the_models_version_digest_and_figures(cli, trained):
    result = cli("risk", "show", "--model", str(trained), "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["version"], shown["layout"]["label"]) == ("0001", "Fraud")
    assert shown["lanes"]["budget"] == 0.2


def test_a_short_row_reads_as_empty_cells_and_a_bad_date_is_named(cli, tmp_path):
    """A row with fewer cells than the header has empty ones (no crash); a date column with
    a cell that is no date is refused naming the row."""
    header = "ref,day,kind,y,amount"
    rows = [
        f"r{i},2024-01-{i % 28 + 1:02d},{'ab'[i % 2]},{i % 3 == 0:d},{i * 3.5}" for i in range(80)
    ]
    rows[5] = "r5,2024-01-06,a,1"
    good = tmp_path / "short.csv"
    good.write_text("\n".join([header, *rows]) + "\n")
    args = ("--label", "y", "--id", "ref", "--time", "day", "--model", "m", "--json")
    result = cli("risk", "train", str(good), *args)
    assert result.exit_code == 0, result.output
    rows[9] = "r9,someday,a,0,1"
    bad = tmp_path / "baddate.csv"
    bad.write_text("\n".join([header, *rows]) + "\n")
    error = refused(cli("risk", "train", str(bad), *args), "not-a-date", as_json=True)
    assert error["row"] == 11


def test_a_refusal_names_the_files_line_though_rows_are_taken_in_time_order(cli, tmp_path):
    header = "ref,day,kind,y,amount"
    rows = [f"r{i},2024-01-{28 - i % 28:02d},{'ab'[i % 2]},{i % 3 == 0:d},{i}" for i in range(60)]
    rows[20] = "r20,2024-01-08,a,maybe,3"
    path = tmp_path / "unordered.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    args = ("--label", "y", "--id", "ref", "--time", "day", "--model", "m", "--json")
    error = refused(cli("risk", "train", str(path), *args), "bad-label", as_json=True)
    assert error["row"] == 22


def test_a_file_over_the_limits_is_refused_before_it_is_read(tmp_path):
    """A file over the byte limit is refused from its size; a header of 20,000 columns from
    the header, at once (a column named twice among them is not searched for)."""
    big = tmp_path / "big.csv"
    big.write_text("a,b\n" + "1,0\n" * 1000)
    with pytest.raises(TableTooLarge) as caught:
        read_tables([big], Limits(max_bytes=1000))
    assert (caught.value.code, caught.value.details["limit"]) == ("table-too-large", 1000)
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(20_000)) + "\n" + "1," * 19_999 + "1\n")
    with pytest.raises(TableTooLarge, match="20,000 columns"):
        read_tables([wide])


def test_a_wide_header_through_the_command_is_a_coded_error(cli, tmp_path):
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(5000)) + "\n" + "1," * 4999 + "1\n")
    refused(cli("risk", "train", str(wide), "--label", "c1", "--id", "c0", "--model", "m"),
            "table-too-large")  # fmt: skip


def test_a_column_named_like_a_derived_feature_is_refused(cli, split, tmp_path):
    """A column called ``unit price (log)`` (or ``<identifier>: past fraud rate``) would be
    overwritten by the feature of that name: refused, naming it."""
    lines = split[0].read_text().splitlines()
    renamed = tmp_path / "renamed.csv"
    renamed.write_text("\n".join([lines[0].replace("Tax Rate", "unit price (log)"), *lines[1:]]))
    error = refused(cli("risk", "train", str(renamed), *KCS, "--model", "m", "--json"),
                    "bad-table", as_json=True)  # fmt: skip
    assert error["columns"] == ["unit price (log)"]


def test_a_model_folder_that_cannot_be_written_is_a_coded_error(cli, split, tmp_path):
    """A --model that is a file (a folder the command may not write goes the same way; the
    suite runs as root, who may write anywhere): model-unwritable."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    refused(cli("risk", "train", str(split[0]), *KCS, "--model", str(blocker)), "model-unwritable")
