"""Risk scoring of declarations and payments. Declarations: features from earlier
declarations only, a LightGBM model, tree SHAP reasons, lanes from an inspection budget, a
checked model store. Payments (:mod:`risk._payments`): an isolation forest over each payee
account's behaviour, occlusion reasons, fed back by the verdicts of tax.

Pure model code; its only I/O is reading CSV files (:mod:`risk._table`), the model folder
(:mod:`risk._store`) and the risk service's outcome database (:mod:`risk._outcomes`). The
service (:mod:`risk._service`) assesses declarations as the bus carries them
(:mod:`risk._declarations`); the connector around it is composed in ``tabadul``. See
docs/risk.md.
"""

from pathlib import Path

from risk._declarations import ITEM_COLUMNS, assessment, bus_layout, check_for_bus, item_cells
from risk._errors import (
    BadLabel,
    BadOption,
    BadTable,
    MissingColumn,
    ModelError,
    ModelMissing,
    ModelNotForBus,
    ModelTampered,
    ModelUnwritable,
    NotADate,
    NotADeclaration,
    NotANumber,
    NotAPayment,
    OutcomesUnreadable,
    RiskError,
    TableTooLarge,
    TooFewOutcomes,
    UnknownColumn,
)
from risk._features import FEATURE_KINDS, History, Layout, infer_layout
from risk._model import Lanes, Metrics, Model, judge, train
from risk._outcomes import Outcomes
from risk._payments import (
    PAYMENTS,
    Ledger,
    Payment,
    PaymentModelStore,
    PaymentRisk,
    RetrainedPayments,
    read_payments,
    retrain_payments,
    train_from,
)
from risk._service import OUTCOMES, Retrained, RiskService, retrain
from risk._store import ModelStore, Stored
from risk._table import Limits, Source, read_tables

SAMPLE = Path(__file__).parent / "data" / "customs-declarations-sample.csv"
"""Every 15th row of the Korea Customs Service's synthetic declarations (MIT, see
data/LICENSE): what tests and the demo train on without the full files."""

__all__ = [
    "FEATURE_KINDS",
    "ITEM_COLUMNS",
    "OUTCOMES",
    "PAYMENTS",
    "SAMPLE",
    "BadLabel",
    "BadOption",
    "BadTable",
    "History",
    "Lanes",
    "Layout",
    "Ledger",
    "Limits",
    "Metrics",
    "MissingColumn",
    "Model",
    "ModelError",
    "ModelMissing",
    "ModelNotForBus",
    "ModelStore",
    "ModelTampered",
    "ModelUnwritable",
    "NotADate",
    "NotADeclaration",
    "NotANumber",
    "NotAPayment",
    "Outcomes",
    "OutcomesUnreadable",
    "Payment",
    "PaymentModelStore",
    "PaymentRisk",
    "Retrained",
    "RetrainedPayments",
    "RiskError",
    "RiskService",
    "Source",
    "Stored",
    "TableTooLarge",
    "TooFewOutcomes",
    "UnknownColumn",
    "assessment",
    "bus_layout",
    "check_for_bus",
    "infer_layout",
    "item_cells",
    "judge",
    "read_payments",
    "read_tables",
    "retrain",
    "retrain_payments",
    "train",
    "train_from",
]
