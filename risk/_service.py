"""The customs risk service: assess each declaration lodged, keep the inspection results,
retrain from them.

:class:`RiskService` holds the model in use (from a :class:`~risk.ModelStore`, picking up a
version made current by another process) and the :class:`~risk._outcomes.Outcomes`. It does
no I/O of the bus: the connector's handlers (composed in ``tabadul``) call it.

**Retraining** (:func:`retrain`) trains a candidate on the base rows given (the files the
current model was trained on, or newer ones) plus every inspected declaration. It replaces
the current model only when it is not worse, judged where neither model has looked: on the
inspected declarations *the current model assessed itself*. A challenger is trained
without those rows; both models score them; the challenger must match or beat the current
model's AUC and precision in the top 5 %. Then the candidate, trained on everything, is
saved as the new version. Inspections only of what the model sent to red are a biased
sample (what it never flagged is never checked): random control inspections of the other
lanes are what keeps the judgement honest (docs/risk.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from risk._declarations import assessment, check_for_bus, item_cells
from risk._errors import TooFewOutcomes
from risk._features import Layout, infer_layout, labels_of
from risk._model import Metrics, Model, judge, train
from risk._outcomes import Outcomes
from risk._store import Current, ModelStore, Stored
from risk._table import Source

OUTCOMES = "outcomes.sqlite"
"""The outcome database's name in the model folder."""


class RiskService:
    """Scores declarations with the current model of ``store``; thread-safe."""

    def __init__(
        self,
        store: ModelStore,
        outcomes: Outcomes | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.outcomes = outcomes or Outcomes(store.folder / OUTCOMES)
        self._clock = clock
        self._lock = threading.Lock()
        self._current = Current(store, self._load)

    @property
    def stored(self) -> Stored:
        """The model in use: the store's current version, loaded again when another one
        was made current (one ``stat`` per call, see :class:`~risk._store.Current`)."""
        return self._current.get()

    def assess(self, declaration: Mapping[str, Any]) -> dict[str, Any]:
        """The ``customs.risk-assessed`` payload of a ``customs.declaration-lodged`` one,
        kept with its rows for retraining."""
        stored = self.stored
        cells = item_cells(declaration)
        with self._lock:  # one LightGBM prediction at a time
            payload = assessment(
                stored, cells, declaration_number=str(declaration["declaration_number"]),
                now=self._clock(),
            )  # fmt: skip
        self.outcomes.assessed(payload, cells)
        return payload

    def record(self, inspection: Mapping[str, Any]) -> None:
        """Keep a ``customs.inspection-result`` payload."""
        self.outcomes.inspected(inspection)

    def close(self) -> None:
        self.outcomes.close()

    def _load(self) -> Stored:
        stored = self.store.load()
        check_for_bus(stored.model)
        return stored


@dataclass(frozen=True, slots=True)
class Retrained:
    """What a retraining did: whether the candidate replaced the current model, and the
    figures it was judged on."""

    replaced: bool
    previous: str
    version: str
    judged_rows: int
    judged_frauds: int
    current: Metrics
    challenger: Metrics
    candidate: Metrics | None
    rows: int
    outcome_rows: int

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("current", "challenger", "candidate"):
            metrics = getattr(self, name)
            out[name] = metrics.as_dict() if metrics is not None else None
        return out


def retrain(
    store: ModelStore,
    outcomes: Outcomes,
    base: Source | None = None,
    *,
    progress: Callable[[str], None] = lambda _step: None,
) -> Retrained:
    """Train a new version from ``base`` and the inspected declarations; make it current
    only when it is not worse (see the module docstring). Raises :class:`TooFewOutcomes`
    when the current model's own inspected assessments lack frauds or non-frauds, and the
    errors of training."""
    current = store.load()
    check_for_bus(current.model)
    layout = current.model.layout
    judged = outcomes.labelled(layout.label, version=current.version)
    labels = labels_of(judged, layout.label) if _both_classes(judged, layout.label) else None
    if labels is None:
        raise TooFewOutcomes(
            f"retraining needs frauds and non-frauds among the inspected declarations model "
            f"{current.version} assessed; it has {len(judged)} inspected row(s)",
            rows=len(judged),
            version=current.version,
        )
    learnt = outcomes.labelled(layout.label)
    frame = _training_frame(layout, base, learnt)
    earlier = frame[~frame[layout.id].isin(set(judged[layout.id]))]
    lanes = current.model.lanes
    progress(f"training a challenger on {len(earlier):,} rows, without the {len(judged)} judged")
    challenger = train(earlier, _layout_like(earlier, layout), budget=lanes.budget,
                       review=lanes.review, progress=progress)  # fmt: skip
    figures = {
        name: _judged(model, judged, labels)
        for name, model in (("current", current.model), ("challenger", challenger))
    }
    kept = Retrained(
        replaced=False,
        previous=current.version,
        version=current.version,
        judged_rows=len(judged),
        judged_frauds=int(labels.sum()),
        current=figures["current"],
        challenger=figures["challenger"],
        candidate=None,
        rows=len(frame),
        outcome_rows=len(learnt),
    )
    if not _not_worse(figures["challenger"], figures["current"]):
        progress("the challenger is worse on the judged rows: the current model stays")
        return kept
    progress(f"not worse: training the new version on all {len(frame):,} rows")
    candidate = train(frame, _layout_like(frame, layout), budget=lanes.budget,
                      review=lanes.review, progress=progress)  # fmt: skip
    training = {
        **(base.as_training() if base is not None else {"sha256": None, "files": []}),
        "retrained_from": current.version,
        "rows": len(frame),
        "outcome_rows": len(learnt),
        "judged": {"rows": len(judged), "current": figures["current"].as_dict(),
                   "challenger": figures["challenger"].as_dict()},
    }  # fmt: skip
    saved = store.save(candidate, training=training)
    return replace(kept, replaced=True, version=saved.version, candidate=candidate.metrics)


def _both_classes(frame: pd.DataFrame, label: str) -> bool:
    return len(frame) > 0 and frame[label].nunique() == 2


def _training_frame(layout: Layout, base: Source | None, learnt: pd.DataFrame) -> pd.DataFrame:
    """The base rows (the model's columns, its label and excluded ones) and the learnt ones
    below them (empty cells where they lack a column)."""
    if base is None:
        return learnt.reset_index(drop=True)
    keep = [c for c in (*layout.inputs, layout.label, *layout.excluded) if c in base.frame]
    frame = pd.concat([base.frame[keep], learnt], ignore_index=True)
    return frame.fillna("")


def _layout_like(frame: pd.DataFrame, layout: Layout) -> Layout:
    """The layout of ``frame`` with the roles of ``layout``."""
    return infer_layout(
        frame,
        id_column=layout.id,
        label=layout.label,
        time=layout.time,
        exclude=[c for c in layout.excluded if c in frame.columns],
        categorical=[c for c in layout.categorical if c in frame.columns],
    )


def _judged(model: Model, rows: pd.DataFrame, labels: np.ndarray) -> Metrics:
    scores = model.probabilities(rows)
    return judge(scores, labels, model.lanes, train_rows=model.metrics.train_rows,
                 rounds=model.metrics.rounds)  # fmt: skip


def _not_worse(challenger: Metrics, current: Metrics) -> bool:
    return challenger.auc >= current.auc and challenger.precision_top5 >= current.precision_top5
