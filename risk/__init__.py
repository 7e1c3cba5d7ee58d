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
    ModelUnwritable,
    NotADate,
    NotANumber,
    RiskError,
    TableTooLarge,
    UnknownColumn,
)
from risk._features import FEATURE_KINDS, History, Layout, infer_layout
from risk._model import Lanes, Metrics, Model, judge, train
from risk._store import ModelStore, Stored
from risk._table import Limits, Source, read_tables

SAMPLE = Path(__file__).parent / "data" / "customs-declarations-sample.csv"
"""Every 15th row of the Korea Customs Service's synthetic declarations (MIT, see
data/LICENSE): what tests and the demo train on without the full files."""

__all__ = [
    "FEATURE_KINDS",
    "SAMPLE",
    "BadLabel",
    "BadOption",
    "BadTable",
    "History",
    "Lanes",
    "Layout",
    "Limits",
    "Metrics",
    "MissingColumn",
    "Model",
    "ModelError",
    "ModelMissing",
    "ModelStore",
    "ModelTampered",
    "ModelUnwritable",
    "NotADate",
    "NotANumber",
    "RiskError",
    "Source",
    "Stored",
    "TableTooLarge",
    "UnknownColumn",
    "infer_layout",
    "judge",
    "read_tables",
    "train",
]
