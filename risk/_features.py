"""From rows of text to the features a customs risk engine uses, without looking ahead.

:func:`infer_layout` reads the training rows once and decides what each column is:

* **numeric**: every non-empty cell is a number, and the column is no code (a name like
  ``... ID``, ``... Code``, ``... Type``, ``Mode of ...``, or values with a leading zero);
* **categorical**: a code with at most :data:`MAX_LEVELS` values, given to the learner as
  a category (an unseen value at scoring time is "missing", which the learner handles);
* **identifier**: a code with more values (importer, declarant, seller, HS6 code...). Its
  raw value is never a feature (the learner would memorise it); its *history* is: the share
  of earlier declarations it appears in, and its past fraud rate smoothed towards the base
  rate with :data:`PRIOR` pseudo-declarations.

Where the columns name a value (``price``, ``value``, ``amount``), a quantity (``mass``,
``weight``, ``quantity``) and a product (``HS``, ``tariff``, ``commodity``, ``product``), the
unit price (log) is a feature, with its deviation (z-score) from the unit prices of the same
product, and of the same product from the same origin, seen earlier; a product code of digits
also gives its 4- and 2-digit headings as categories.

**No leakage.** The training rows are taken in time order; a row's history and price
statistics come only from rows *strictly earlier* in time (rows of the same instant do not
see each other), so changing a later label cannot change an earlier row's features. At
scoring time every row sees the state at the end of training (:class:`History`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from risk._errors import (
    BadLabel,
    BadOption,
    BadTable,
    MissingColumn,
    NotADate,
    NotANumber,
    UnknownColumn,
)

MAX_LEVELS = 200
PRIOR = 20.0
MIN_SPREAD = 0.1  # a floor on a unit price's standard deviation (log scale)
_CODE_WORDS = frozenset(
    {
        "id", "code", "type", "use", "mode", "office", "indicator", "class", "category",
        "kind", "zip", "postal", "status", "flag", "country", "hs", "hs2", "hs4", "hs6",
        "hs8", "hs10", "tariff", "commodity", "product", "origin", "departure", "number", "no",
    }
)  # fmt: skip
_VALUE_WORDS = frozenset({"price", "value", "amount", "cost", "invoice"})
_QUANTITY_WORDS = frozenset({"mass", "weight", "quantity", "qty", "kg", "volume", "units"})
_PRODUCT_WORDS = frozenset({"hs", "hs6", "hs8", "hs10", "tariff", "commodity", "product"})
_LEADING_ZERO = re.compile(r"0[0-9]")
_DIGITS = re.compile(r"[0-9]+")


def _words(name: str) -> set[str]:
    return {w for w in re.split(r"[^0-9a-z]+", name.lower()) if w}


@dataclass(frozen=True, slots=True)
class Layout:
    """What each column of the training rows is (see the module's docstring)."""

    id: str
    label: str
    time: str | None
    excluded: tuple[str, ...]
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    identifiers: tuple[str, ...]
    value: str | None = None
    quantity: str | None = None
    product: str | None = None
    origin: str | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        """The columns a file to score must have: all but the label and the excluded."""
        own = (self.id,) + ((self.time,) if self.time else ())
        return own + self.numeric + self.categorical + self.identifiers

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Layout:
        return cls(
            id=str(data["id"]),
            label=str(data["label"]),
            time=data["time"],
            excluded=tuple(data["excluded"]),
            numeric=tuple(data["numeric"]),
            categorical=tuple(data["categorical"]),
            identifiers=tuple(data["identifiers"]),
            value=data["value"],
            quantity=data["quantity"],
            product=data["product"],
            origin=data["origin"],
        )


def infer_layout(  # noqa: PLR0913 - the training command's options, one each
    frame: pd.DataFrame,
    *,
    id_column: str,
    label: str,
    time: str | None = None,
    exclude: Sequence[str] = (),
    categorical: Sequence[str] = (),
) -> Layout:
    """Decide what each column is. Raises :class:`MissingColumn` for a named column the rows
    lack and :class:`BadOption` when one column is given two roles."""
    named = [id_column, label, *([time] if time else []), *exclude, *categorical]
    missing = [name for name in dict.fromkeys(named) if name not in frame.columns]
    if missing:
        raise MissingColumn(
            f"the file has no column {', '.join(map(repr, missing))}",
            missing=missing,
            columns=list(frame.columns),
        )
    roles = [id_column, label, *([time] if time else [])]
    if len(set(roles)) < len(roles) or set(roles) & set(exclude):
        raise BadOption("the id, label, time and excluded columns must all be different")
    numeric, codes = [], []
    for name in frame.columns:
        if name in roles or name in exclude:
            continue
        cells = frame[name]
        filled = cells[cells != ""]
        if filled.empty:
            continue  # nothing to learn from
        if name not in categorical and _is_numeric(name, filled):
            numeric.append(name)
        else:
            codes.append(name)
    levels = {name: frame[name].nunique() for name in codes}
    small = tuple(name for name in codes if levels[name] <= MAX_LEVELS)
    large = tuple(name for name in codes if levels[name] > MAX_LEVELS)
    layout = Layout(
        id=id_column,
        label=label,
        time=time,
        excluded=tuple(exclude),
        numeric=tuple(numeric),
        categorical=small,
        identifiers=large,
        value=_first(numeric, _VALUE_WORDS),
        quantity=_first(numeric, _QUANTITY_WORDS),
        product=_first(codes, _PRODUCT_WORDS),
        origin=next((c for c in codes if {"origin", "country"} <= _words(c)), None),
    )
    clash = sorted(set(derived_names(layout)) & set(layout.inputs))
    if clash:
        raise BadTable(
            f"column(s) {', '.join(map(repr, clash))} have the name of a feature derived from"
            " other columns; rename them",
            columns=clash,
        )
    return layout


def derived_names(layout: Layout) -> list[str]:
    """The names of every feature built from other columns (the unit price, its
    deviations, the headings, the histories)."""
    names = [UNIT_PRICE, *(f"{PRICE_DEVIATION}{g}" for g in ("product", "product+origin"))]
    if layout.product:
        names += [f"{layout.product} (4 digits)", f"{layout.product} (2 digits)"]
    return names + [f"{i}{suffix}" for i in layout.identifiers for suffix in (SHARE, RATE)]


def _is_numeric(name: str, filled: pd.Series) -> bool:
    if pd.to_numeric(filled, errors="coerce").isna().any():
        return False
    if _words(name) & _CODE_WORDS:
        return False
    return not filled.str.match(_LEADING_ZERO).any()


def _first(columns: Sequence[str], words: frozenset[str]) -> str | None:
    return next((c for c in columns if _words(c) & words), None)


def labels_of(frame: pd.DataFrame, label: str) -> np.ndarray:
    """The label column as 0/1. Raises :class:`BadLabel` for other values, or one class."""
    cells = frame[label].str.lower()
    mapped = cells.map({"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1})
    if mapped.isna().any():
        row = _file_row(frame, np.flatnonzero(mapped.isna().to_numpy())[0])
        raise BadLabel(
            f"label {label!r} must be 0 or 1 (or false/true); row {row} is not",
            column=label,
            row=row,
        )
    values = mapped.to_numpy(dtype=np.int8)
    if values.min() == values.max():
        raise BadLabel(f"label {label!r} has one class only: nothing to learn", column=label)
    return values


def time_order(frame: pd.DataFrame, layout: Layout) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows in time order (stable: file order within one instant, and file order when
    there is no time column), with the instant of each as an integer (nanoseconds). The
    frame's index still counts the file's rows. Raises :class:`NotADate`."""
    if layout.time is None:
        return frame, np.arange(len(frame), dtype=np.int64)
    parsed = pd.to_datetime(frame[layout.time], errors="coerce", utc=True, format="mixed")
    if parsed.isna().any():
        row = _file_row(frame, np.flatnonzero(parsed.isna().to_numpy())[0])
        raise NotADate(
            f"column {layout.time!r} must hold dates or times; row {row} does not",
            column=layout.time,
            row=row,
        )
    order = np.argsort(parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64), kind="stable")
    ordered = frame.iloc[order]  # the index still counts the file's rows, for errors
    instants = parsed.iloc[order].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return ordered, instants


@dataclass(slots=True)
class History:
    """What scoring knows of the past: per identifier, how many declarations and frauds;
    per product (and product and origin), the count, sum and sum of squares of log unit
    prices; the base rate and the categories seen."""

    rows: int
    frauds: int
    identifiers: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    prices: dict[str, dict[str, tuple[int, float, float]]] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)
    _indexes: dict[str, dict[str, int]] = field(default_factory=dict, repr=False, compare=False)

    def category_index(self, name: str) -> dict[str, int]:
        """Each training category of code column ``name`` and its code."""
        cached = self._indexes.get(name)
        if cached is None:
            cached = {v: i for i, v in enumerate(self.categories.get(name, []))}
            self._indexes[name] = cached
        return cached

    @property
    def base_rate(self) -> float:
        return (self.frauds + 1.0) / (self.rows + 2.0)  # as _base_rate

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "frauds": self.frauds,
            "identifiers": {
                k: {i: list(v) for i, v in t.items()} for k, t in self.identifiers.items()
            },
            "prices": {k: {i: list(v) for i, v in t.items()} for k, t in self.prices.items()},
            "categories": self.categories,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        return cls(
            rows=int(data["rows"]),
            frauds=int(data["frauds"]),
            identifiers={
                k: {i: (int(v[0]), int(v[1])) for i, v in t.items()}
                for k, t in data["identifiers"].items()
            },
            prices={
                k: {i: (int(v[0]), float(v[1]), float(v[2])) for i, v in t.items()}
                for k, t in data["prices"].items()
            },
            categories={k: list(v) for k, v in data["categories"].items()},
        )


def _file_row(frame: pd.DataFrame, position: int) -> int:
    """The file's line number of the row at ``position`` (the header is line 1)."""
    return int(frame.index[position]) + 2


def numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A numeric column as floats (an empty cell is NaN). Raises :class:`NotANumber` naming
    the first row that holds text."""
    cells = frame[column]
    values = pd.to_numeric(cells.where(cells != ""), errors="coerce")
    bad = values.isna().to_numpy() & (cells != "").to_numpy()
    if bad.any():
        row = _file_row(frame, np.flatnonzero(bad)[0])
        raise NotANumber(
            f"column {column!r} is numeric; row {row} holds text", column=column, row=row
        )
    return values.to_numpy(dtype=np.float64)


def _unit_price(amounts: Mapping[str, np.ndarray], layout: Layout) -> np.ndarray | None:
    if not (layout.value and layout.quantity):
        return None
    value, quantity = amounts[layout.value], amounts[layout.quantity]
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = np.log1p(np.clip(value, 0, None)) - np.log1p(np.clip(quantity, 0, None))
    return np.where(np.isfinite(unit), unit, np.nan)


def _price_groups(frame: pd.DataFrame, layout: Layout) -> dict[str, pd.Series]:
    if layout.product is None or not (layout.value and layout.quantity):
        return {}
    groups = {"product": frame[layout.product]}
    if layout.origin:
        groups["product+origin"] = frame[layout.product] + "|" + frame[layout.origin]
    return groups


def _headings(frame: pd.DataFrame, layout: Layout) -> dict[str, pd.Series]:
    """The 4- and 2-digit headings of a product code of digits (decided on the training
    rows; :func:`cell_features` gives them whenever there is a product: the model takes
    what it has)."""
    if layout.product is None:
        return {}
    codes = frame[layout.product]
    digits = codes.str.fullmatch(_DIGITS).all() and codes.str.len().min() >= 6
    if not digits:
        return {}
    return {
        f"{layout.product} (4 digits)": codes.str[:4],
        f"{layout.product} (2 digits)": codes.str[:2],
    }


def _earlier(keys: pd.Series, instants: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each row, the sum of ``values`` over earlier-instant rows of the same key
    (``values`` is 2-D: one column per quantity summed)."""
    frame = pd.DataFrame(values, columns=[f"v{i}" for i in range(values.shape[1])])
    frame["k"], frame["t"] = keys.to_numpy(), instants
    per = frame.groupby(["k", "t"], sort=True).sum()
    before = per.groupby(level="k").cumsum() - per
    index = pd.MultiIndex.from_arrays([frame["k"], frame["t"]])
    return before.reindex(index).to_numpy(dtype=np.float64)


def _totals(keys: pd.Series, values: np.ndarray) -> dict[str, tuple[float, ...]]:
    frame = pd.DataFrame(values, columns=[f"v{i}" for i in range(values.shape[1])])
    frame["k"] = keys.to_numpy()
    sums = frame.groupby("k", sort=True).sum()
    return {
        str(k): tuple(float(x) for x in row)
        for k, row in zip(sums.index, sums.to_numpy(), strict=True)
    }


UNIT_PRICE = "unit price (log)"
PRICE_DEVIATION = "unit price deviation from "
SHARE = ": share of earlier declarations"
RATE = ": past fraud rate"
FEATURE_KINDS = ("code", "amount", "price deviation", "history")
"""The feature groups (what an ablation removes one at a time)."""


@dataclass(frozen=True, slots=True)
class Features:
    """The learner's input: one column per feature, and each feature's group."""

    frame: pd.DataFrame
    kinds: dict[str, str]


def training_features(
    frame: pd.DataFrame, layout: Layout, labels: np.ndarray, instants: np.ndarray
) -> tuple[Features, History]:
    """Features of time-ordered training rows (each from strictly earlier rows only) and
    the history as of the end of training."""
    history = History(rows=len(frame), frauds=int(labels.sum()))
    out: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    out.update(_amounts(frame, layout))
    kinds.update(dict.fromkeys(out, "amount"))
    categories = _codes(frame, layout)
    for name, cells in categories.items():
        seen = sorted(set(cells) - {""})
        history.categories[name] = seen
        out[name] = pd.Categorical(cells.where(cells != ""), categories=seen)
        kinds[name] = "code"
    counted = np.column_stack([np.ones(len(frame)), labels])  # declarations, frauds
    before = _earlier(pd.Series(np.zeros(len(frame))), instants, counted)
    rows_before, base = before[:, 0], _base_rate(before[:, 0], before[:, 1])
    for name in layout.identifiers:
        keys = frame[name]
        past = _earlier(keys, instants, counted)
        columns = _history_columns(name, past[:, 0], past[:, 1], rows_before, base)
        out.update(columns)
        kinds.update(dict.fromkeys(columns, "history"))
        totals = _totals(keys, counted)
        history.identifiers[name] = {k: (int(n), int(s)) for k, (n, s) in totals.items() if k}
    unit = out.get(UNIT_PRICE)
    if unit is not None:
        known = np.where(np.isnan(unit), 0.0, unit)
        present = (~np.isnan(unit)).astype(np.float64)
        stacked = np.column_stack([present, known, known * known])
        for group, keys in _price_groups(frame, layout).items():
            past = _earlier(keys, instants, stacked)
            out[f"{PRICE_DEVIATION}{group}"] = _deviation(unit, past)
            kinds[f"{PRICE_DEVIATION}{group}"] = "price deviation"
            totals = _totals(keys, stacked)
            history.prices[group] = {k: (int(n), s, q) for k, (n, s, q) in totals.items()}
    return Features(pd.DataFrame(out), kinds), history


def scoring_features(
    frame: pd.DataFrame, layout: Layout, history: History
) -> dict[str, np.ndarray]:
    """Features of rows to score, each against the history at the end of training, as
    float columns: a category is its code (its place in the training categories, as
    LightGBM numbers them), NaN when unseen. Raises :class:`MissingColumn` or
    :class:`UnknownColumn` when the columns are not the model's, :class:`NotANumber` for
    text in a numeric column."""
    check_columns(list(frame.columns), layout)
    cells = {name: frame[name].tolist() for name in layout.inputs}
    return cell_features(
        cells, layout, history, lines=[_file_row(frame, i) for i in range(len(frame))]
    )


def cell_features(
    cells: Mapping[str, Sequence[str]],
    layout: Layout,
    history: History,
    *,
    lines: Sequence[int] | None = None,
    wanted: Collection[str] | None = None,
) -> dict[str, np.ndarray]:
    """:func:`scoring_features` of columns of text cells (each the same length; ``lines``
    numbers their rows for errors, from 2 by default); only the features a model reads
    when ``wanted`` names them (the numbers are read and checked all the same). Plain
    lookups, no frame: one row costs microseconds, which is what scoring on the bus needs."""
    size = len(cells[layout.id])

    def needed(*names: str) -> bool:
        return wanted is None or any(name in wanted for name in names)

    out: dict[str, np.ndarray] = {
        name: _cell_numbers(name, cells[name], lines) for name in layout.numeric
    }
    unit = _unit_price(out, layout)
    if unit is not None:
        out[UNIT_PRICE] = unit
    codes = {name: cells[name] for name in layout.categorical}
    product = cells[layout.product] if layout.product else None
    if product is not None:
        codes[f"{layout.product} (4 digits)"] = [v[:4] for v in product]
        codes[f"{layout.product} (2 digits)"] = [v[:2] for v in product]
    for name, values in codes.items():
        if not needed(name):
            continue
        index = history.category_index(name)
        out[name] = np.array([index.get(v, np.nan) for v in values], dtype=np.float64)
    base = history.base_rate
    rows_before = np.full(size, float(history.rows))
    for name in layout.identifiers:
        if not needed(f"{name}{SHARE}", f"{name}{RATE}"):
            continue
        table = history.identifiers.get(name, {})
        pairs = np.array([table.get(v, (0, 0)) for v in cells[name]], dtype=np.float64)
        pairs = pairs.reshape(size, 2)
        out.update(_history_columns(name, pairs[:, 0], pairs[:, 1], rows_before, base))
    if unit is not None and product is not None:
        groups = {"product": list(product)}
        if layout.origin:
            groups["product+origin"] = [
                f"{p}|{o}" for p, o in zip(product, cells[layout.origin], strict=True)
            ]
        for group, keys in groups.items():
            if not needed(f"{PRICE_DEVIATION}{group}"):
                continue
            prices = history.prices.get(group, {})
            past = np.array([prices.get(k, (0, 0.0, 0.0)) for k in keys], dtype=np.float64).reshape(
                size, 3
            )
            out[f"{PRICE_DEVIATION}{group}"] = _deviation(unit, past)
    return out


def _cell_numbers(column: str, cells: Sequence[str], lines: Sequence[int] | None) -> np.ndarray:
    """As :func:`numbers`, cell by cell."""
    out = np.empty(len(cells), dtype=np.float64)
    for i, cell in enumerate(cells):
        if cell == "":
            out[i] = np.nan
            continue
        try:
            out[i] = float(cell) if "_" not in cell else np.nan  # float() reads 1_000
        except ValueError:
            out[i] = np.nan
        if np.isnan(out[i]):  # as numbers(): "nan" is text too
            row = lines[i] if lines is not None else i + 2
            raise NotANumber(
                f"column {column!r} is numeric; row {row} holds text", column=column, row=row
            )
    return out


def check_columns(columns: Sequence[str], layout: Layout) -> None:
    """The rows must have the model's input columns; the label and the excluded columns
    may be there (they are ignored), nothing else."""
    missing = [c for c in layout.inputs if c not in columns]
    if missing:
        raise MissingColumn(
            f"the file lacks the model's column(s) {', '.join(map(repr, missing))}",
            missing=missing,
        )
    known = set(layout.inputs) | {layout.label, *layout.excluded}
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise UnknownColumn(
            f"the model was not trained on column(s) {', '.join(map(repr, unknown))}",
            unknown=unknown,
        )


def _amounts(frame: pd.DataFrame, layout: Layout) -> dict[str, np.ndarray]:
    """The numeric columns, and the unit price when there is a value and a quantity."""
    out = {name: numbers(frame, name) for name in layout.numeric}
    unit = _unit_price(out, layout)
    if unit is not None:
        out[UNIT_PRICE] = unit
    return out


def _codes(frame: pd.DataFrame, layout: Layout) -> dict[str, pd.Series]:
    codes = {name: frame[name] for name in layout.categorical}
    codes.update(_headings(frame, layout))
    return codes


def _history_columns(
    name: str, n: np.ndarray, frauds: np.ndarray, rows_before: np.ndarray, base: float | np.ndarray
) -> dict[str, np.ndarray]:
    """The history features of identifier ``name``: its share of the earlier declarations
    and its past fraud rate, smoothed towards ``base`` (a rate, or one per row)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(rows_before > 0, n / rows_before, 0.0)
    return {
        f"{name}{SHARE}": share,
        f"{name}{RATE}": (frauds + PRIOR * base) / (n + PRIOR),
    }


def _base_rate(rows: np.ndarray, frauds: np.ndarray) -> np.ndarray:
    """The fraud rate of the declarations seen so far, with one fraud and one non-fraud
    assumed beforehand (so the first declarations have a rate too)."""
    return (frauds + 1.0) / (rows + 2.0)


def _deviation(unit: np.ndarray, past: np.ndarray) -> np.ndarray:
    """z-score of each unit price against (count, sum, sum of squares) of earlier ones;
    NaN when fewer than two earlier prices or no price."""
    n, s, q = past[:, 0], past[:, 1], past[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s / n
        spread = np.sqrt(np.maximum(q / n - mean * mean, MIN_SPREAD * MIN_SPREAD))
        z = (unit - mean) / spread
    return np.where((n >= 2) & np.isfinite(z), z, np.nan)
