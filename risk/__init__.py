"""Risk scoring of declarations and payments: features from earlier declarations only, a
LightGBM model, tree SHAP reasons, lanes from an inspection budget, a checked model store.

Pure model code; its only I/O is reading CSV files (:mod:`risk._table`) and the model
folder (:mod:`risk._store`). See docs/risk.md.
"""

from pathlib import Path

from risk._errors import (
    BadLabel,
    BadOption,
    BadTable,
    MissingColumn,
    ModelError,
    ModelMissing,
    ModelTampered,
    NotADate,
    NotANumber,
    RiskError,
    UnknownColumn,
)
from risk._features import FEATURE_KINDS, History, Layout, infer_layout
from risk._model import LANES, Lanes, Metrics, Model, judge, train
from risk._store import ModelStore, Stored
from risk._table import Source, read_tables

SAMPLE = Path(__file__).parent / "data" / "customs-declarations-sample.csv"
"""Every 15th row of the Korea Customs Service's synthetic declarations (MIT, see
data/LICENSE): what tests and the demo train on without the full files."""

__all__ = [
    "FEATURE_KINDS",
    "LANES",
    "SAMPLE",
    "BadLabel",
    "BadOption",
    "BadTable",
    "History",
    "Lanes",
    "Layout",
    "Metrics",
    "MissingColumn",
    "Model",
    "ModelError",
    "ModelMissing",
    "ModelStore",
    "ModelTampered",
    "NotADate",
    "NotANumber",
    "RiskError",
    "Source",
    "Stored",
    "UnknownColumn",
    "infer_layout",
    "judge",
    "read_tables",
    "train",
]
