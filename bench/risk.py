"""Risk scoring benchmark: quality on a later period, what each feature group adds, the
learners side by side, and the speed of training and scoring.

    python -m bench.risk DATA_DIR [--json]

DATA_DIR holds train.csv (2020) and valid.csv (2021 Q1) of the Korea Customs Service's
synthetic declarations (or any pair of files with their columns). Each figure is measured
in this run:

* **quality**: trained on train.csv, judged on valid.csv (AUC, precision in the top 5 %,
  macro-F1 of the flags at the model's own red threshold); goals AUC >= 0.84, precision
  >= 0.90, macro-F1 >= 0.73;
* **ablation**: the same with each feature group removed in turn;
* **learners**: LightGBM (the one used), scikit-learn's HistGradientBoosting and XGBoost
  (when installed) on the same features and split, with their fitting times;
* **speed**: training on both files (goal <= 60 s), batch scoring with reasons and scores
  alone beside LightGBM's bare prediction on prepared features (goal >= 20,000/s), and
  one declaration at a time (p50 and p99);
* **payments**: the treasury's anomaly model fitted on the sample's six months of payments,
  then each sample payment screened by the two rules alone (the baseline) and by the rules
  with the learned score and its reasons, one at a time (p50);
* **online**, on the real RabbitMQ: the model for the bus (``risk.bus_layout``: only the
  columns declarations on the bus carry) judged on valid.csv, then declarations published
  one by one to two subscribers of the same run, one whose handler scores each with the
  risk service (score, reasons, outcome kept) and one whose handler does not, each in its
  own process: the latency from publishing to the handler's end, and what scoring adds to
  each declaration (the scoring subscriber's latency less the plain one's for the same
  declaration), at p50 (goal <= 2 ms); the difference of the two p50s beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from bench._timing import machine
from risk import FEATURE_KINDS, Model, bus_layout, infer_layout, judge, read_tables, train
from risk._features import Layout, labels_of, scoring_features, time_order, training_features

Progress = Callable[[str], None]


def _layout(frame: pd.DataFrame) -> Layout:
    """The data set's roles: the declaration id, the date, the Fraud label; the Critical
    Fraud label is left out (it would give the answer away)."""
    return infer_layout(
        frame, id_column="Declaration ID", label="Fraud", time="Date", exclude=["Critical Fraud"]
    )


GOALS = {"auc": 0.84, "precision_top5": 0.90, "macro_f1": 0.73}
SINGLE = 300


def _later(model: Model, frame: pd.DataFrame) -> dict[str, Any]:
    scores = np.array([a["score"] for a in model.score(frame)])
    labels = frame[model.layout.label].astype(int).to_numpy()
    metrics = judge(scores, labels, model.lanes, train_rows=model.metrics.train_rows, rounds=0)
    figures = metrics.as_dict()
    return {k: figures[k] for k in ("auc", "precision_top5", "macro_f1", "holdout_rows")}


def _learners(
    train_frame: pd.DataFrame, later: pd.DataFrame, model: Model, say: Progress
) -> list[dict[str, Any]]:
    """The other learners on the features LightGBM was given (the groups training kept; the
    categories as codes for scikit-learn), on the same split."""
    layout = model.layout
    ordered, instants = time_order(train_frame, layout)
    labels = labels_of(ordered, layout.label)
    features, history = training_features(ordered, layout, labels, instants)
    x = features.frame[list(model.features)]
    scored = scoring_features(later, layout, history)
    x_later = pd.DataFrame(
        {
            name: pd.Categorical.from_codes(
                np.nan_to_num(scored[name], nan=-1).astype(int),
                dtype=pd.CategoricalDtype(history.categories[name]),
            )
            if model.kinds[name] == "code"
            else scored[name]
            for name in model.features
        }
    )
    y_later = later[layout.label].astype(int).to_numpy()
    out = []

    def codes(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                name: c.cat.codes.astype(float).replace(-1.0, np.nan)
                if c.dtype == "category"
                else c
                for name, c in frame.items()
            }
        )

    small = [c for c in x.columns if x[c].dtype == "category" and len(x[c].cat.categories) < 250]
    say("learners: scikit-learn HistGradientBoosting")
    start = time.perf_counter()
    hgb = HistGradientBoostingClassifier(
        max_iter=1000, learning_rate=0.1, max_leaf_nodes=63, categorical_features=small,
        early_stopping=True, validation_fraction=0.2, n_iter_no_change=100, random_state=7,
    )  # fmt: skip
    hgb.fit(codes(x), labels)
    fitted = time.perf_counter() - start
    out.append(
        {
            "learner": "scikit-learn HistGradientBoosting",
            "auc": round(float(roc_auc_score(y_later, hgb.predict_proba(codes(x_later))[:, 1])), 4),
            "fit_s": round(fitted, 1),
        }
    )
    try:
        import xgboost as xgb  # noqa: PLC0415 - optional: compared when installed
    except ImportError:
        return out
    say("learners: XGBoost")
    start = time.perf_counter()
    booster = xgb.XGBClassifier(
        n_estimators=1000, learning_rate=0.1, max_leaves=63, grow_policy="lossguide",
        tree_method="hist", enable_categorical=True, max_cat_to_onehot=8, random_state=7,
    )  # fmt: skip
    booster.fit(x, labels)
    fitted = time.perf_counter() - start
    out.append(
        {
            "learner": f"XGBoost {xgb.__version__}",
            "auc": round(float(roc_auc_score(y_later, booster.predict_proba(x_later)[:, 1])), 4),
            "fit_s": round(fitted, 1),
        }
    )
    return out


def _best(call: Callable[[], object], repeats: int = 3) -> float:
    """The shortest of ``repeats`` timings of ``call``, in seconds (the least disturbed by
    whatever else the machine runs; the same for a figure and its baseline)."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return min(timings)


def run(data: Path, progress: Progress | None = None) -> dict[str, Any]:
    say = progress or (lambda _step: None)
    first = read_tables([data / "train.csv"]).frame
    later = read_tables([data / "valid.csv"]).frame
    layout = _layout(first)
    say("quality: training on train.csv")
    start = time.perf_counter()
    model = train(first, layout)
    fit_first = time.perf_counter() - start
    quality = {
        **_later(model, later),
        "fit_s": round(fit_first, 1),
        "groups": model.params["groups"],
    }
    say("ablation: every group")
    ablation = {"all groups": _later(train(first, layout, select=False), later)}
    for group in FEATURE_KINDS:
        say(f"ablation: without {group}")
        ablated = train(
            first, layout, groups=[g for g in FEATURE_KINDS if g != group], select=False
        )
        ablation[f"without {group}"] = _later(ablated, later)
    learners = [{"learner": "LightGBM (used)", "auc": quality["auc"], "fit_s": quality["fit_s"]}]
    learners += _learners(first, later, model, say)
    say("speed: training on both files")
    both = read_tables([data / "train.csv", data / "valid.csv"]).frame
    start = time.perf_counter()
    full = train(both, _layout(both))
    fit_both = time.perf_counter() - start
    say("speed: scoring")
    rows = later.drop(columns=[layout.label, *layout.excluded])
    start = time.perf_counter()
    model.score(rows)
    with_reasons = len(rows) / (time.perf_counter() - start)
    columns = scoring_features(rows, layout, model.history)
    x = np.column_stack([columns[f] for f in model.features])

    def scores_alone() -> None:
        columns = scoring_features(rows, layout, model.history)
        model.margins(np.column_stack([columns[f] for f in model.features]))

    scores_only = len(rows) / _best(scores_alone)
    bare = len(rows) / _best(lambda: model.margins(x))
    single = []
    for i in range(SINGLE):
        one = rows.iloc[i : i + 1]
        start = time.perf_counter()
        model.score(one)
        single.append((time.perf_counter() - start) * 1000)
    online = _online(data, say)
    payments = _payments(say)
    return {
        "benchmark": "risk",
        "online": online,
        "payments": payments,
        "machine": machine(),
        "data": {"train_rows": len(first), "later_rows": len(later), "both_rows": len(both)},
        "quality_on_later_period": quality,
        "goals": GOALS,
        "met": {k: quality[k] >= v for k, v in GOALS.items()},
        "holdout_of_training_on_both": full.metrics.as_dict(),
        "ablation": ablation,
        "learners": learners,
        "speed": {
            "train_both_s": round(fit_both, 1),
            "train_goal_s": 60,
            "batch_with_reasons_per_s": round(with_reasons),
            "batch_scores_only_per_s": round(scores_only),
            "raw_lightgbm_predict_per_s": round(bare),
            "batch_goal_per_s": 20_000,
            "single_p50_ms": round(float(np.percentile(single, 50)), 2),
            "single_p99_ms": round(float(np.percentile(single, 99)), 2),
            "single_goal_p50_ms": 2,
            "rounds": full.params["rounds"],
        },
    }


ONLINE = 300


def _online(data: Path, say: Progress) -> dict[str, Any]:
    """The bus model's quality and what scoring adds to a subscriber's latency."""
    from bench._online import latencies  # noqa: PLC0415 - RabbitMQ only for this part

    first = read_tables([data / "train.csv"]).frame
    later = read_tables([data / "valid.csv"]).frame
    say("online: the bus model, trained on train.csv")
    quality = _later(train(first, bus_layout(first)), later)
    both = read_tables([data / "train.csv", data / "valid.csv"])
    model = train(both.frame, bus_layout(both.frame))
    say(f"online: {ONLINE} declarations to a scoring and a plain subscriber")
    plain, scoring = latencies(model, ONLINE)
    p50 = {
        name: float(np.percentile(v, 50)) for name, v in (("plain", plain), ("scoring", scoring))
    }
    return {
        "bus_model_quality_on_later_period": quality,
        "declarations": ONLINE,
        "plain_p50_ms": round(p50["plain"], 2),
        "plain_p99_ms": round(float(np.percentile(plain, 99)), 2),
        "scoring_p50_ms": round(p50["scoring"], 2),
        "scoring_p99_ms": round(float(np.percentile(scoring, 99)), 2),
        "added_p50_ms": round(
            float(np.median([s - p for p, s in zip(plain, scoring, strict=True)])), 2
        ),
        "p50_difference_ms": round(p50["scoring"] - p50["plain"], 2),
        "added_goal_p50_ms": 2,
        "rounds": model.params["rounds"],
    }


def _payments(say: Progress) -> dict[str, Any]:
    """The payment model's fit and what the learned score adds to screening a payment."""
    import tempfile  # noqa: PLC0415 - this part only

    from connectors.ministries import treasury  # noqa: PLC0415
    from risk import Payment, PaymentRisk, train_from  # noqa: PLC0415

    say("payments: the anomaly model on the sample history")
    history = [Payment.from_payload(p) for p in treasury.payment_history()]
    sample = list(treasury.payments())
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        train_from(Path(folder), history, treasury.payee_registry().known_since)
        fit = time.perf_counter() - start
        risk = PaymentRisk(Path(folder), treasury.payee_registry().known_since)
        rules, scored = [], []
        try:
            for _ in range(5):
                for payment in sample:
                    start = time.perf_counter()
                    treasury.screen(payment)
                    rules.append((time.perf_counter() - start) * 1000)
                    start = time.perf_counter()
                    treasury.screen(payment, anomaly=risk.assess(payment))
                    scored.append((time.perf_counter() - start) * 1000)
        finally:
            risk.close()
    return {
        "history_payments": len(history),
        "fit_s": round(fit, 2),
        "screened": len(rules),
        "rules_p50_ms": round(float(np.percentile(rules, 50)), 3),
        "with_score_p50_ms": round(float(np.percentile(scored, 50)), 2),
        "with_score_p99_ms": round(float(np.percentile(scored, 99)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="folder with train.csv and valid.csv")
    args = parser.parse_args()
    report = run(args.data, lambda step: print(step, file=sys.stderr))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
