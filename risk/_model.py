"""Training, judging and scoring: a LightGBM model over :mod:`risk._features`.

LightGBM was chosen by measurement (docs/risk.md): on the same features and split it matched
or beat XGBoost and scikit-learn's HistGradientBoosting in quality, trained fastest on two
cores, takes categories natively, gives tree SHAP contributions itself (``pred_contrib``) and
saves models as text (never pickle).

Training keeps the last :data:`HOLDOUT` of the rows in time order aside, fits with early
stopping on them, and judges that fit there (AUC, precision in the top 5 %, macro-F1 of the
flags): those are the figures reported. It also fits once without each feature group and
leaves out the group whose absence gains the most hold-out AUC (more than
:data:`SELECTION_MARGIN`), if any: on the customs data set the identifier histories hurt a
later period (docs/risk.md), elsewhere they may help. The choice is made on the hold-out, so
its figures are slightly optimistic; a later period is the honest judge. The model kept is
then refitted on every row with as many rounds per row. Lanes come from an inspection
**budget**: the hold-out's scores give the thresholds above which ``budget`` of the
declarations go red (flagged: inspected) and the next ``review`` yellow (documents
checked); the rest is green.
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from lightgbm import basic as lgb_basic
from sklearn.metrics import f1_score, roc_auc_score

from risk._errors import BadLabel, BadOption
from risk._features import (
    FEATURE_KINDS,
    PRICE_DEVIATION,
    UNIT_PRICE,
    History,
    Layout,
    cell_features,
    check_columns,
    labels_of,
    time_order,
    training_features,
)

HOLDOUT = 0.2
TOP_SHARE = 0.05
REASONS = 5
LANES = ("red", "yellow", "green")
FEW_ROWS = 256  # below, one thread predicts (see _threads)
SINGLE_ROWS = 16  # up to this many rows (a declaration's items), one at a time (SingleRow)
_RAW_SCORE, _FLOAT64 = 1, 1  # C_API_PREDICT_RAW_SCORE, C_API_DTYPE_FLOAT64 of LightGBM's c_api.h
_C_API: Any = lgb_basic._LIB  # type: ignore[attr-defined]  # noqa: SLF001 - the library LightGBM loaded
MAX_ROUNDS = 150  # of 127 leaves at 0.2: as good here as 500 of 63 at 0.1, a third of the trees
EARLY_STOPPING = 100
SELECTION_MARGIN = 0.002  # a group is left out only if the hold-out AUC gains more
PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.2,
    "num_leaves": 127,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "max_cat_to_onehot": 8,
    "cat_smooth": 20,
    "min_data_per_group": 20,
    "seed": 7,
    "deterministic": True,
    "force_col_wise": True,
    "verbose": -1,
}


@dataclass(frozen=True, slots=True)
class Metrics:
    """How the model did on the time-ordered hold-out it never saw while fitting."""

    auc: float
    precision_top5: float
    macro_f1: float
    holdout_rows: int
    holdout_frauds: int
    train_rows: int
    rounds: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "auc": round(self.auc, 4),
            "precision_top5": round(self.precision_top5, 4),
            "macro_f1": round(self.macro_f1, 4),
            "holdout_rows": self.holdout_rows,
            "holdout_frauds": self.holdout_frauds,
            "train_rows": self.train_rows,
            "rounds": self.rounds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Metrics:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class Lanes:
    """Score thresholds of the lanes, and the shares they were set for."""

    budget: float
    review: float
    red: float
    yellow: float

    def lane(self, score: float) -> str:
        return "red" if score >= self.red else "yellow" if score >= self.yellow else "green"


@dataclass(slots=True)
class Model:
    """A trained model: the layout and history it reads rows with, the booster, the feature
    columns it takes in order, their groups and labels, the lanes and the figures."""

    layout: Layout
    history: History
    booster: lgb.Booster
    features: tuple[str, ...]
    kinds: dict[str, str]
    labels: dict[str, dict[str, str]]
    lanes: Lanes
    metrics: Metrics
    params: dict[str, Any] = field(default_factory=dict)
    _single: SingleRow | None = field(default=None, init=False, repr=False, compare=False)

    def score(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """One assessment per row, in the file's order: id, score (0..1), flagged, lane and
        the top reasons (feature, signed contribution to the margin in log-odds, labels)."""
        cells, lines = self._cells(frame)
        return self.assess(cells, lines=lines)

    def assess(
        self,
        cells: Mapping[str, Sequence[str]],
        *,
        lines: Sequence[int] | None = None,
        explain: Collection[str] = LANES,
    ) -> list[dict[str, Any]]:
        """:meth:`score` of columns of text cells (see :func:`~risk._features.cell_features`),
        with reasons for the rows in an ``explain`` lane (an empty list for the others: tree
        SHAP is most of the cost, and on the bus a green lane asks nothing of anyone)."""
        x = self._x(cells, lines)
        scores = (1.0 / (1.0 + np.exp(-self.margins(x)))).tolist()
        lanes = [self.lanes.lane(score) for score in scores]
        explained = [row for row, lane in enumerate(lanes) if lane in explain]
        reasons: dict[int, list[dict[str, Any]]] = {}
        if explained:
            contributions = self.contributions(x[explained])
            top = np.argsort(-np.abs(contributions[:, :-1]), axis=1)[:, :REASONS]
            for at, row in enumerate(explained):
                reasons[row] = [
                    {
                        "feature": self.features[j],
                        "contribution": round(float(contributions[at, j]), 6),
                        "labels": self.labels[self.features[j]],
                    }
                    for j in top[at]
                    if contributions[at, j] != 0.0
                ]
        ids = cells[self.layout.id]
        return [
            {
                "id": ids[row],
                "score": round(score, 6),
                "flagged": lanes[row] == "red",
                "lane": lanes[row],
                "reasons": reasons.get(row, []),
            }
            for row, score in enumerate(scores)
        ]

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        """The score of each row, without reasons (for judging)."""
        margin = self.margins(self._x(*self._cells(frame)))
        return np.asarray(1.0 / (1.0 + np.exp(-margin)), dtype=np.float64)

    def _cells(self, frame: pd.DataFrame) -> tuple[dict[str, list[str]], list[int]]:
        check_columns(list(frame.columns), self.layout)
        cells = {name: frame[name].tolist() for name in self.layout.inputs}
        return cells, [int(i) + 2 for i in frame.index]

    def _x(self, cells: Mapping[str, Sequence[str]], lines: Sequence[int] | None) -> np.ndarray:
        columns = cell_features(cells, self.layout, self.history, lines=lines, wanted=self.features)
        return np.column_stack([columns[f] for f in self.features])

    def contributions(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Tree SHAP contributions, one column per feature and the bias last: each row sums
        to the model's margin (log-odds)."""
        threads = _threads(len(x))
        found = self.booster.predict(x, pred_contrib=True, num_threads=threads)
        return np.asarray(found, dtype=np.float64)

    def margins(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        if isinstance(x, np.ndarray) and len(x) <= SINGLE_ROWS:
            if self._single is None:
                self._single = SingleRow(self.booster, len(self.features))
            return np.asarray([self._single.raw(row) for row in x], dtype=np.float64)
        found = self.booster.predict(x, raw_score=True, num_threads=_threads(len(x)))
        return np.asarray(found, dtype=np.float64)


def _check(status: int) -> None:
    """Raise LightGBM's own error for a C API call that failed."""
    if status != 0:
        raise lgb.basic.LightGBMError(_C_API.LGBM_GetLastError().decode("utf-8"))


class SingleRow:
    """The raw score of one row through LightGBM's fast single-row prediction (its C API's
    ``LGBM_BoosterPredictForMatSingleRowFast``): the same trees and the same figures as
    ``Booster.predict``, without preparing a predictor on every call, which is most of what
    scoring one declaration costs. Thread-safe."""

    def __init__(self, booster: lgb.Booster, columns: int) -> None:
        self._columns = columns
        self._config = ctypes.c_void_p()
        _check(
            _C_API.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,  # noqa: SLF001 - the C API's handle of this booster
                ctypes.c_int(_RAW_SCORE),
                ctypes.c_int(0),  # from the first iteration
                ctypes.c_int(-1),  # to the best (or last) one
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(columns),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(self._config),
            )
        )
        weakref.finalize(self, _C_API.LGBM_FastConfigFree, self._config)
        self._booster = booster  # kept alive as long as the configuration that points into it
        self._out = np.empty(1, dtype=np.float64)
        self._length = ctypes.c_int64()
        self._lock = threading.Lock()

    def raw(self, row: np.ndarray) -> float:
        data = np.ascontiguousarray(row, dtype=np.float64)
        if data.shape != (self._columns,):
            raise ValueError(f"a row of {self._columns} features, not {data.shape}")
        with self._lock:
            _check(
                _C_API.LGBM_BoosterPredictForMatSingleRowFast(
                    self._config,
                    data.ctypes.data_as(ctypes.c_void_p),
                    ctypes.byref(self._length),
                    self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
                )
            )
            return float(self._out[0])


def _threads(rows: int) -> int:
    """LightGBM's threads for ``rows``: one for a few (a declaration on the bus: waking
    OpenMP's pool costs more than it saves, and the connector's threads need the cores),
    all of them (0) for a batch."""
    return 1 if rows < FEW_ROWS else 0


def train(  # noqa: PLR0913 - the training command's options, one each
    frame: pd.DataFrame,
    layout: Layout,
    *,
    budget: float = 0.2,
    review: float = 0.1,
    groups: Sequence[str] = FEATURE_KINDS,
    select: bool = True,
    progress: Callable[[str], None] = lambda _step: None,
) -> Model:
    """Train on ``frame`` (text cells) as ``layout`` reads it. Raises :class:`BadOption` for
    shares out of range, :class:`BadLabel` when the label cannot be learnt, and the
    errors of :mod:`risk._features` for bad cells."""
    if not (0 < budget < 1 and 0 <= review < 1 and budget + review < 1):
        raise BadOption("--budget and --review are shares: above 0 and together below 1")
    progress("ordering the rows in time")
    ordered, instants = time_order(frame, layout)
    labels = labels_of(ordered, layout.label)
    progress("computing features from earlier declarations only")
    features, history = training_features(ordered, layout, labels, instants)
    cut = _cut(instants, labels)
    kinds = features.kinds
    present = [g for g in groups if any(kinds[c] == g for c in features.frame.columns)]
    if not present:
        raise BadOption("no feature is left to learn from")
    candidates = [present]
    if select and len(present) > 1:
        candidates += [[g for g in present if g != dropped] for dropped in present]
    best: tuple[float, list[str], list[str], int, np.ndarray] | None = None
    for chosen in candidates:
        progress(
            f"fitting on {cut:,} rows with {', '.join(chosen)}; judging on the "
            f"{len(ordered) - cut:,} latest"
        )
        columns = [c for c in features.frame.columns if kinds[c] in chosen]
        rounds, held = _first_fit(learner_input(features.frame, columns), labels, cut)
        auc = float(roc_auc_score(labels[cut:], held))
        if best is None or auc > best[0] + SELECTION_MARGIN:
            best = (auc, chosen, columns, rounds, held)
    assert best is not None
    _, chosen, columns, rounds, held = best
    x = learner_input(features.frame, columns)
    lanes = Lanes(
        budget,
        review,
        red=float(np.quantile(held, 1 - budget)),
        yellow=float(np.quantile(held, 1 - budget - review)),
    )
    metrics = judge(held, labels[cut:], lanes, train_rows=cut, rounds=rounds)
    final_rounds = int(rounds * len(x) / cut)  # as many rounds per row as the first fit
    progress(f"refitting on all {len(x):,} rows ({final_rounds} rounds)")
    booster = lgb.train(PARAMS, lgb.Dataset(x, labels), num_boost_round=final_rounds)
    return Model(
        layout=layout,
        history=history,
        booster=booster,
        features=tuple(columns),
        kinds={c: features.kinds[c] for c in columns},
        labels={c: feature_labels(c, features.kinds[c], layout) for c in columns},
        lanes=lanes,
        metrics=metrics,
        params={**PARAMS, "rounds": final_rounds, "groups": chosen},
    )


def _first_fit(x: pd.DataFrame, labels: np.ndarray, cut: int) -> tuple[int, np.ndarray]:
    """Fit on the rows before ``cut`` with early stopping on the rest: the rounds found and
    the scores of the rest."""
    first = lgb.train(
        PARAMS,
        lgb.Dataset(x.iloc[:cut], labels[:cut]),
        num_boost_round=MAX_ROUNDS,
        valid_sets=[lgb.Dataset(x.iloc[cut:], labels[cut:])],
        callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)],
    )
    rounds = max(int(first.best_iteration or first.current_iteration()), 10)
    return rounds, np.asarray(first.predict(x.iloc[cut:], num_iteration=rounds), dtype=np.float64)


def learner_input(frame: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
    """The feature columns in the model's order, named ``f0``, ``f1``... (LightGBM takes
    no punctuation in names; the people's names stay in :attr:`Model.features`)."""
    x = frame[list(features)]
    x.columns = [f"f{i}" for i in range(len(features))]
    return x


def _cut(instants: np.ndarray, labels: np.ndarray) -> int:
    """Where the hold-out starts: the first row of the instant at ``1 - HOLDOUT`` of the
    rows (an instant is never split). Raises :class:`BadLabel` when either side lacks a
    class."""
    cut = int(np.searchsorted(instants, instants[int(len(instants) * (1 - HOLDOUT))], "left"))
    if cut == 0:
        cut = int(np.searchsorted(instants, instants[0], "right"))
    before, after = labels[:cut], labels[cut:]
    if len(after) == 0 or before.min() == before.max() or after.min() == after.max():
        raise BadLabel(
            "too few rows or frauds to learn and judge: both the earliest 80 % and the "
            "latest 20 % of the rows need frauds and non-frauds"
        )
    return cut


def judge(
    scores: np.ndarray, labels: np.ndarray, lanes: Lanes, *, train_rows: int, rounds: int
) -> Metrics:
    """The reported figures of ``scores`` against ``labels``."""
    top = max(int(len(scores) * TOP_SHARE), 1)
    best = np.argsort(-scores, kind="stable")[:top]
    flagged = scores >= lanes.red
    return Metrics(
        auc=float(roc_auc_score(labels, scores)),
        precision_top5=float(labels[best].mean()),
        macro_f1=float(f1_score(labels, flagged, average="macro")),
        holdout_rows=len(scores),
        holdout_frauds=int(labels.sum()),
        train_rows=train_rows,
        rounds=rounds,
    )


_GROUP_LABELS = {
    "product": {
        "en": "unit price against the same product",
        "fr": "prix unitaire par rapport au même produit",
        "ar": "سعر الوحدة مقارنة بالمنتج نفسه",
    },
    "product+origin": {
        "en": "unit price against the same product from the same origin",
        "fr": "prix unitaire par rapport au même produit de même origine",
        "ar": "سعر الوحدة مقارنة بالمنتج نفسه من المنشأ نفسه",
    },
}


def feature_labels(name: str, kind: str, layout: Layout) -> dict[str, str]:
    """What a reason says, in Arabic, French and English (column names as the file has
    them)."""
    if name == UNIT_PRICE:
        return {"en": "unit price", "fr": "prix unitaire", "ar": "سعر الوحدة"}
    if kind == "price deviation":
        return _GROUP_LABELS[name.removeprefix(PRICE_DEVIATION)]
    if kind == "history":
        column, what = name.rsplit(": ", 1)
        if what == "past fraud rate":
            return {
                "en": f"{column}: past fraud rate",
                "fr": f"{column} : taux de fraude passé",
                "ar": f"{column}: معدل الغش السابق",
            }
        return {
            "en": f"{column}: share of earlier declarations",
            "fr": f"{column} : part des déclarations antérieures",
            "ar": f"{column}: حصة التصريحات السابقة",
        }
    if layout.product and name.startswith(f"{layout.product} (") and name.endswith(" digits)"):
        digits = name.removeprefix(f"{layout.product} (").removesuffix(" digits)")
        return {
            "en": f"{layout.product}, {digits}-digit heading",
            "fr": f"{layout.product}, position à {digits} chiffres",
            "ar": f"{layout.product}، البند ذو {digits} أرقام",
        }
    return {"en": name, "fr": name, "ar": name}
