"""Training, lanes, explanations and the model store."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import risk._store as store_module
from risk import BadOption, ModelMissing, ModelStore, ModelTampered, ModelUnwritable, train
from risk._features import scoring_features
from risk._model import SingleRow, learner_input


def test_the_model_is_judged_on_the_latest_rows_and_beats_chance(model, sample):
    metrics = model.metrics
    assert metrics.train_rows + metrics.holdout_rows == len(sample)
    assert metrics.holdout_rows == pytest.approx(0.2 * len(sample), abs=30)
    assert metrics.auc > 0.6
    assert 0 <= metrics.precision_top5 <= 1
    assert 0 < metrics.macro_f1 <= 1


def test_explanations_add_up_to_the_models_margin(model, sample):
    """Tree SHAP: each row's contributions plus the bias are the raw margin; the score is
    its logistic; the reasons are the largest contributions, signed."""
    rows = sample.drop(columns=["Fraud", "Critical Fraud"]).head(200)
    columns = scoring_features(rows, model.layout, model.history)
    x = np.column_stack([columns[f] for f in model.features])
    contributions = model.contributions(x)
    assert np.allclose(contributions.sum(axis=1), model.margins(x), atol=1e-6)
    assessments = model.score(rows)
    scores = np.array([a["score"] for a in assessments])
    assert np.allclose(scores, 1 / (1 + np.exp(-model.margins(x))), atol=1e-5)
    first = assessments[0]
    by_name = dict(zip(model.features, contributions[0][:-1], strict=True))
    sizes = [abs(r["contribution"]) for r in first["reasons"]]
    assert sizes == sorted(sizes, reverse=True)
    assert all(abs(by_name[r["feature"]] - r["contribution"]) < 1e-5 for r in first["reasons"])
    assert sizes[0] == pytest.approx(max(abs(c) for c in by_name.values()), abs=1e-5)
    assert set(first["reasons"][0]["labels"]) == {"ar", "fr", "en"}


def test_category_codes_predict_as_lightgbm_reads_the_categories(model, sample):
    """Scoring hands LightGBM each category as its code; the same rows given as pandas
    categories (how the model was trained) get the same margins, unseen values included."""
    rows = sample.drop(columns=["Fraud", "Critical Fraud"]).head(300).copy()
    rows.loc[rows.index[:20], "Country of Origin"] = "ZZ"
    columns = scoring_features(rows, model.layout, model.history)
    as_frame = pd.DataFrame(
        {
            name: pd.Categorical.from_codes(
                np.nan_to_num(values, nan=-1).astype(int), model.history.categories[name]
            )
            if model.kinds[name] == "code"
            else values
            for name, values in columns.items()
            if name in model.features
        }
    )
    codes = np.column_stack([columns[f] for f in model.features])
    assert np.allclose(
        model.margins(learner_input(as_frame, model.features)), model.margins(codes), atol=1e-9
    )


def test_a_product_code_of_letters_at_scoring_time_is_scored(model, sample):
    """Headings were learnt from codes of digits; a code of another shape is unseen, not a
    crash."""
    rows = sample.drop(columns=["Fraud"]).head(3).copy()
    rows["HS6 Code"] = ["ABC", "", "12"]
    assert len(model.score(rows)) == 3


def test_lanes_follow_the_inspection_budget_not_a_probability(sample, layout):
    """On declarations the model has not seen, red holds about the budget's share, yellow
    the review's; flagged is red."""
    later = sample["Date"] >= "2021-01-01"
    model = train(sample[~later], layout, budget=0.1, review=0.2)
    lanes = [a["lane"] for a in model.score(sample[later])]
    share = {lane: lanes.count(lane) / len(lanes) for lane in ("red", "yellow", "green")}
    assert share["red"] == pytest.approx(0.1, abs=0.08)
    assert share["yellow"] == pytest.approx(0.2, abs=0.08)
    assert all((a["flagged"]) == (a["lane"] == "red") for a in model.score(sample.head(50)))


@pytest.mark.parametrize(("budget", "review"), [(0, 0.1), (1, 0), (0.6, 0.5), (0.2, -0.1)])
def test_shares_out_of_range_are_refused(sample, layout, budget, review):
    with pytest.raises(BadOption):
        train(sample.head(10), layout, budget=budget, review=review)


def test_a_stored_model_loads_as_it_was_saved(stored, model, sample, tmp_path):
    store = ModelStore(tmp_path / "model")
    loaded = store.load()
    assert (loaded.version, loaded.digest) == (stored.version, stored.digest)
    rows = sample.drop(columns=["Fraud", "Critical Fraud"]).head(100)
    assert loaded.model.score(rows) == model.score(rows)
    manifest = loaded.manifest
    assert set(manifest["libraries"]) >= {"lightgbm", "numpy", "pandas", "python"}
    assert manifest["metrics"] == model.metrics.as_dict()
    second = store.save(model, training={"sha256": "again"})
    assert (second.version, store.current(), store.versions()) == ("0002", "0002", ["0001", "0002"])
    assert not list((tmp_path / "model").rglob("*.pkl"))


@pytest.mark.parametrize("name", ["model.txt", "state.json"])
def test_a_changed_artefact_is_refused(stored, tmp_path, name):
    path = tmp_path / "model" / "versions" / stored.version / name
    data = path.read_bytes()
    path.write_bytes(data.replace(b"0.", b"9.", 1))
    with pytest.raises(ModelTampered) as caught:
        ModelStore(tmp_path / "model").load()
    assert caught.value.code == "model-tampered"
    assert name in caught.value.message


def test_a_manifest_rewritten_with_matching_digests_changes_the_models_digest(stored, tmp_path):
    """Whoever rewrites files and manifest together is not caught by the files' digests;
    the model's digest (what assessments name and operators pin) changes."""
    folder = tmp_path / "model" / "versions" / stored.version
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["metrics"]["auc"] = 0.99
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert ModelStore(tmp_path / "model").load().digest != stored.digest


@pytest.mark.parametrize("damage", ["garbage", "no-current", "no-version"])
def test_a_broken_model_folder_is_a_coded_error(stored, tmp_path, damage):
    root = tmp_path / "model"
    if damage == "garbage":
        (root / "versions" / stored.version / "manifest.json").write_text("{not json")
        expected = ModelTampered
    elif damage == "no-current":
        (root / "CURRENT").unlink()
        expected = ModelMissing
    else:
        (root / "CURRENT").write_text("0042\n")
        expected = ModelMissing
    with pytest.raises(expected):
        ModelStore(root).load()


@pytest.mark.parametrize(
    "manifest", ["[]", "5", '{"format": "tabadul-risk-model/1", "files": []}', '{"files": {}}']
)
def test_a_manifest_of_another_shape_is_tampered(stored, tmp_path, manifest):
    (tmp_path / "model" / "versions" / stored.version / "manifest.json").write_text(manifest)
    with pytest.raises(ModelTampered):
        ModelStore(tmp_path / "model").load()


def test_versions_count_past_9999_and_a_version_must_be_one_stored(stored, tmp_path):
    store = ModelStore(tmp_path / "model")
    (tmp_path / "model" / "versions" / "10000").mkdir()
    (tmp_path / "model" / "versions" / "notes").mkdir()
    assert store.versions() == [stored.version, "10000"]
    with pytest.raises(ModelMissing):
        store.load("../../elsewhere")


def test_a_save_that_fails_midway_leaves_no_version(model, tmp_path, monkeypatch):
    """The disk fills while the second file is written: model-unwritable, the version's
    folder is removed, the current version is still the one before."""
    store = ModelStore(tmp_path / "model")
    first = store.save(model, training={"sha256": "a"})
    real = store_module._write
    calls = []

    def failing(path, data):
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(store_module, "_write", failing)
    with pytest.raises(ModelUnwritable, match="No space left"):
        store.save(model, training={"sha256": "b"})
    assert store.versions() == [first.version]
    assert store.current() == first.version


def test_single_rows_score_as_the_booster_does(model, sample):
    """The fast single-row path (a declaration's few items) gives Booster.predict's margins."""
    frame = sample.drop(columns=[model.layout.label, *model.layout.excluded]).head(40)
    columns = scoring_features(frame, model.layout, model.history)
    x = np.column_stack([columns[f] for f in model.features])
    expected = model.booster.predict(x, raw_score=True)
    np.testing.assert_allclose(
        np.concatenate([model.margins(x[i : i + 4]) for i in range(0, 40, 4)]), expected,
        rtol=0, atol=1e-12,
    )  # fmt: skip
    with pytest.raises(ValueError, match="features"):
        SingleRow(model.booster, len(model.features)).raw(x[0][:-1])
