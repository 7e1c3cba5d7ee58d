"""Retraining from inspection outcomes: a new version replaces the current one only when it
does no worse on the inspected declarations the current one assessed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import risk
from risk import (
    ITEM_COLUMNS,
    ModelStore,
    Outcomes,
    Source,
    TooFewOutcomes,
    bus_layout,
    read_tables,
    retrain,
    train,
)
from risk._declarations import ID
from tabadul.cli import build_app

LABEL = "Fraud"


@pytest.fixture(scope="module")
def halves():
    """The sample's earlier 70 % (by date) as base rows and the rest as declarations that
    were later assessed and inspected, with a label planted that the bus's columns can
    learn (fraud: the dearest quarter by unit price), so that better and worse are clear."""
    frame = read_tables([risk.SAMPLE]).frame.sort_values("Date", kind="stable")
    unit = frame["Item Price"].astype(float) / (frame["Net Mass"].astype(float) + 1)
    frame[LABEL] = np.where(unit > unit.quantile(0.75), "1", "0")
    cut = int(len(frame) * 0.7)
    return frame.iloc[:cut], frame.iloc[cut:]


def _shuffled(frame, seed=3):
    out = frame.copy()
    out[LABEL] = np.random.default_rng(seed).permutation(out[LABEL].to_numpy())
    return out


def _source(frame) -> Source:
    return Source(frame, (("base.csv", "0" * 64, len(frame)),))


def _store(folder, frame) -> ModelStore:
    store = ModelStore(folder)
    store.save(train(frame, bus_layout(frame)), training={})
    return store


def _inspected(outcomes: Outcomes, version: str, rows) -> None:
    """Record ``rows`` as one-item declarations assessed by ``version`` and inspected, each
    found fraudulent when its label says so."""
    for row in rows.to_dict("records"):
        number = row[ID]
        cells = {name: [row[name]] for name in ITEM_COLUMNS}
        cells[ID] = [f"{number}/1"]
        outcomes.assessed(
            {
                "declaration_number": number,
                "assessed_at": "2026-11-03T10:00:00+00:00",
                "model": {"version": version},
                "score": 0.5,
                "lane": "green",
            },
            cells,
        )
        fraud = row[LABEL] == "1"
        outcomes.inspected(
            {
                "declaration_number": number,
                "inspected_at": "2026-11-04T10:00:00+00:00",
                "fraud_found": fraud,
                "findings": [],
                "additional_duties": {"amount": "0", "currency": "MAD"},
            }
        )


def test_a_better_challenger_replaces_the_current_model(tmp_path, halves):
    base, later = halves
    store = _store(tmp_path / "m", _shuffled(base))  # the current model learnt noise
    outcomes = Outcomes(tmp_path / "o.sqlite")
    _inspected(outcomes, "0001", later)
    done = retrain(store, outcomes, _source(base))
    assert done.replaced
    assert done.challenger.auc > done.current.auc
    assert (done.previous, done.version) == ("0001", "0002")
    assert store.current() == "0002"
    assert done.judged_rows == len(later)
    assert done.rows == len(base) + len(later)
    manifest = store.load().manifest
    assert manifest["training"]["retrained_from"] == "0001"
    assert manifest["training"]["outcome_rows"] == len(later)


def test_a_worse_challenger_leaves_the_current_model(tmp_path, halves):
    base, later = halves
    store = _store(tmp_path / "m", base)
    outcomes = Outcomes(tmp_path / "o.sqlite")
    _inspected(outcomes, "0001", later)
    done = retrain(store, outcomes, _source(_shuffled(base)))  # new base rows are noise
    assert not done.replaced
    assert done.challenger.auc < done.current.auc
    assert store.current() == "0001"
    assert store.versions() == ["0001"]  # nothing half-made is left either


def test_outcomes_of_an_older_version_do_not_judge_the_current_one(tmp_path, halves):
    base, later = halves
    store = _store(tmp_path / "m", base)
    outcomes = Outcomes(tmp_path / "o.sqlite")
    _inspected(outcomes, "0000", later)  # assessed by a version before this one
    with pytest.raises(TooFewOutcomes) as refused:
        retrain(store, outcomes, _source(base))
    assert refused.value.code == "too-few-outcomes"
    assert refused.value.details["rows"] == 0


def test_retraining_needs_frauds_and_non_frauds_among_the_judged(tmp_path, halves):
    base, later = halves
    store = _store(tmp_path / "m", base)
    outcomes = Outcomes(tmp_path / "o.sqlite")
    _inspected(outcomes, "0001", later[later[LABEL] == "0"].head(30))
    with pytest.raises(TooFewOutcomes):
        retrain(store, outcomes, _source(base))
    assert store.versions() == ["0001"]


def test_repeated_messages_are_kept_once(tmp_path, halves):
    _, later = halves
    outcomes = Outcomes(tmp_path / "o.sqlite")
    rows = later.head(5)
    _inspected(outcomes, "0001", rows)
    _inspected(outcomes, "0001", rows)  # redelivered
    assert outcomes.counts() == {"assessed": 5, "inspected": 5, "frauds": int(
        (rows[LABEL] == "1").sum()), "unmatched": 0}  # fmt: skip
    assert len(outcomes.labelled(LABEL)) == 5
    outcomes.close()
    reopened = Outcomes(tmp_path / "o.sqlite")  # durable across restarts
    assert len(reopened.labelled(LABEL, version="0001")) == 5


def test_the_retrain_command_reports_too_few_outcomes_with_its_code(tmp_path, halves):
    base, _ = halves
    _store(tmp_path / "m", base)
    result = CliRunner().invoke(
        build_app(), ["risk", "retrain", "--model", str(tmp_path / "m"), "--json"]
    )
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "too-few-outcomes"


def test_the_retrain_command_replaces_a_worse_model(tmp_path, halves):
    base, later = halves
    store = _store(tmp_path / "m", _shuffled(base))
    _inspected(Outcomes(tmp_path / "m" / risk.OUTCOMES), "0001", later)
    base_file = tmp_path / "base.csv"
    base.to_csv(base_file, index=False)
    result = CliRunner().invoke(
        build_app(), ["risk", "retrain", str(base_file), "--model", str(tmp_path / "m"), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["replaced"] is True
    assert report["version"] == store.current() == "0002"


def test_an_inspection_of_a_declaration_never_assessed_is_kept_not_learnt(tmp_path):
    outcomes = Outcomes(tmp_path / "o.sqlite")
    outcomes.inspected(
        {
            "declaration_number": "301-2026-0999999",
            "inspected_at": "2026-11-04T10:00:00+00:00",
            "fraud_found": True,
            "findings": [{"line": 7, "kind": "other"}],
            "additional_duties": {"amount": "10.00", "currency": "MAD"},
        }
    )
    assert outcomes.counts() == {"assessed": 0, "inspected": 0, "frauds": 0, "unmatched": 1}
    assert outcomes.labelled(LABEL).empty
