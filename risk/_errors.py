"""The errors of risk scoring: one tree, each class with a stable ``code``::

    RiskError                    risk-error
    ├── BadTable                 bad-table        (not a CSV table: unreadable, empty, no rows,
    │   │                                          a column named twice)
    │   ├── MissingColumn        missing-column   (a column the model or the command needs)
    │   ├── UnknownColumn        unknown-column   (a column the model was not trained on)
    │   ├── NotANumber           not-a-number     (text in a numeric column: names the
    │   │                                          column and the row)
    │   ├── NotADate             not-a-date       (a time column cell that is no date)
    │   ├── BadLabel             bad-label        (a label that is not 0/1, or one class only)
    │   └── TableTooLarge        table-too-large  (more bytes or columns than the limits)
    ├── BadOption                bad-option       (a budget out of range, an id column used
    │                                              as a feature...)
    ├── TooFewOutcomes           too-few-outcomes (retraining needs frauds and non-frauds
    │                                              among the inspections of the model's own
    │                                              assessments)
    ├── NotADeclaration          not-a-declaration (a declaration the risk service cannot
    │                                              read as rows)
    ├── NotAPayment              not-a-payment    (a payment the payment model cannot read:
    │                                              malformed, or not in MAD)
    ├── OutcomesUnreadable       outcomes-unreadable (the outcome database cannot be opened)
    └── ModelError               model-error
        ├── ModelMissing         model-missing    (no model in the folder, or no such version)
        ├── ModelUnwritable      model-unwritable (the folder cannot be written)
        ├── ModelTampered        model-tampered   (an artefact whose SHA-256 is not the one
        │                                          its manifest records, or a manifest that
        │                                          does not parse)
        └── ModelNotForBus       model-not-for-bus (a model reading columns that declarations
                                                   on the bus do not carry)

Messages are for people; they name columns and rows, never the values of a row.
"""

from __future__ import annotations


class RiskError(Exception):
    """Base of every risk error; ``code`` is stable, ``message`` is for people."""

    code = "risk-error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, **self.details}


class BadTable(RiskError):
    code = "bad-table"


class MissingColumn(BadTable):
    code = "missing-column"


class UnknownColumn(BadTable):
    code = "unknown-column"


class NotANumber(BadTable):
    code = "not-a-number"


class NotADate(BadTable):
    code = "not-a-date"


class BadLabel(BadTable):
    code = "bad-label"


class TableTooLarge(BadTable):
    code = "table-too-large"


class BadOption(RiskError):
    code = "bad-option"


class TooFewOutcomes(RiskError):
    code = "too-few-outcomes"


class NotADeclaration(RiskError):
    code = "not-a-declaration"


class NotAPayment(RiskError):
    code = "not-a-payment"


class ModelError(RiskError):
    code = "model-error"


class ModelMissing(ModelError):
    code = "model-missing"


class ModelUnwritable(ModelError):
    code = "model-unwritable"


class ModelTampered(ModelError):
    code = "model-tampered"


class ModelNotForBus(ModelError):
    code = "model-not-for-bus"


class OutcomesUnreadable(RiskError):
    code = "outcomes-unreadable"
