"""Suspicious-payment scoring: a learned anomaly score over the behaviour of each payee
account, with its reasons, fed back by the verdicts of tax on the alerts.

**Features** (:data:`FEATURES`) of a payment come from the payment itself, the register of
payees (since when the treasury has known the account) and the earlier payments to the same
account only, the :data:`HISTORY` latest ones (strictly earlier by execution time: a payment
arriving late, or a later one, never changes them). One pure function,
:func:`payment_features`, computes them for training and for scoring alike.

**The model** is scikit-learn's :class:`~sklearn.ensemble.IsolationForest`, fitted on the
payments of the ledger: unsupervised, since confirmed cases are too few to learn from. Its
score is the forest's own anomaly score in 0..1 (0.5 is ordinary; near 1, a payment the
trees isolate at once). A payment is flagged from the score reached by the top ``budget``
share of the training payments: the share of payments the analysts can review, not a fixed
probability.

**Reasons** are occlusion contributions: for each feature, how much the score falls when
that feature alone takes its training median. Positive: the feature makes the payment
unusual. The forest has no tree SHAP of its own; occlusion is exact for what it measures.

**Feedback.** Each verdict of tax (``tax.alert-verdict``) is kept with the alert it judges:

* *dismissed*: later payments to the same account scoring no higher than the dismissed one
  are not flagged again for :data:`SUPPRESSION` (the analyst has seen that behaviour);
* *confirmed*: every later payment to the account is flagged (the account is watched), and
  the confirmed payments are left out when the model is retrained, so that the picture of
  ordinary behaviour does not learn them as ordinary;
* :func:`retrain_payments` fits a new version on the ledger (which grows with every payment
  screened) and makes it current unless it separates confirmed from dismissed alerts worse
  than the current version (AUC on the verdicts).

Models are stored as :class:`PaymentModelStore` versions: the forest in skops' format (never
pickle; loading admits only the scikit-learn tree type, and checks every file's SHA-256).
"""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

from risk._errors import (
    BadOption,
    MissingColumn,
    ModelTampered,
    NotAPayment,
    OutcomesUnreadable,
    TooFewOutcomes,
)
from risk._store import Checked, Current, Kept, VersionedStore, write_manifest
from risk._table import Limits, Source, read_tables

HISTORY = 100
"""How many earlier payments to an account the features look at."""
SUPPRESSION = timedelta(days=90)
"""How long a dismissed alert keeps the same behaviour of its account from alerting again."""
TREES = 100
PAYMENTS = "payments.sqlite"
"""The ledger's name in the model folder."""
_DAY = 86_400.0
_TRUSTED = ["sklearn.tree._tree.Tree"]  # skops: the one type beyond its defaults

FEATURES: tuple[tuple[str, dict[str, str]], ...] = (
    ("amount (log10 MAD)", {"en": "amount", "fr": "montant", "ar": "المبلغ"}),
    (
        "account age (days)",
        {
            "en": "days the register has known the account",
            "fr": "ancienneté du compte au registre (jours)",
            "ar": "أقدمية الحساب في السجل (أيام)",
        },
    ),
    (
        "account unknown",
        {
            "en": "account unknown to the register",
            "fr": "compte inconnu du registre",
            "ar": "حساب غير مسجل",
        },
    ),
    (
        "payments to the account in 24 h",
        {
            "en": "payments to the account in the last 24 hours",
            "fr": "paiements au compte dans les 24 heures",
            "ar": "المدفوعات إلى الحساب خلال 24 ساعة",
        },
    ),
    (
        "payments to the account in 30 days",
        {
            "en": "payments to the account in the last 30 days",
            "fr": "paiements au compte dans les 30 jours",
            "ar": "المدفوعات إلى الحساب خلال 30 يوما",
        },
    ),
    (
        "amount against the account's median (log10)",
        {
            "en": "amount against the account's median",
            "fr": "montant rapporté à la médiane du compte",
            "ar": "المبلغ مقارنة بوسيط مدفوعات الحساب",
        },
    ),
    (
        "paid to the account in 24 h (log10 MAD)",
        {
            "en": "total paid to the account in 24 hours",
            "fr": "total payé au compte en 24 heures",
            "ar": "مجموع المدفوع إلى الحساب خلال 24 ساعة",
        },
    ),
    (
        "days since the account's last payment",
        {
            "en": "days since the account was last paid",
            "fr": "jours depuis le dernier paiement au compte",
            "ar": "أيام منذ آخر دفعة إلى الحساب",
        },
    ),
    (
        "hour of execution (UTC)",
        {"en": "hour of execution", "fr": "heure d'exécution", "ar": "ساعة التنفيذ"},
    ),
    (
        "round amount",
        {
            "en": "amount in whole thousands",
            "fr": "montant en milliers ronds",
            "ar": "مبلغ بآلاف كاملة",
        },
    ),
)
_NAMES = tuple(name for name, _ in FEATURES)
_NEVER_PAID = 3650.0  # days since the last payment of an account never paid before


@dataclass(frozen=True, slots=True)
class Payment:
    """What scoring reads of a ``treasury.payment-executed`` payload (MAD only)."""

    payment_id: str
    executed_at: float  # POSIX seconds
    value_date: date
    amount: float
    creditor: str

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Payment:
        """Raises :class:`NotAPayment` for a payload that is not one, or not in MAD."""
        try:
            amount = payload["amount"]
            currency = amount["currency"]
            executed = datetime.fromisoformat(str(payload["executed_at"]).upper())
            payment = cls(
                str(payload["payment_id"]),
                executed.timestamp(),
                date.fromisoformat(str(payload["value_date"])),
                float(Decimal(str(amount["amount"]))),
                str(payload["creditor"]["rib"]),
            )
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise NotAPayment(f"not a payment the model can read: {exc}") from exc
        if currency != "MAD" or executed.tzinfo is None:
            raise NotAPayment(
                f"payment {payment.payment_id}: the model reads amounts in MAD executed at a "
                "time with an offset"
            )
        return payment


PAYMENT_COLUMNS = ("payment_id", "executed_at", "value_date", "amount", "creditor_rib")
"""The columns a payment history CSV needs (those of the treasury's sample payments; a
``currency`` column is optional, MAD when absent)."""


def read_payments(
    paths: Sequence[Path], limits: Limits | None = None
) -> tuple[list[Payment], Source]:
    """The payments of history CSV files, and what was read (their SHA-256s, for the model's
    manifest). Read as every table of ``risk`` is (:func:`~risk._table.read_tables`: the
    limits, UTF-8, one header); raises its errors, :class:`MissingColumn` or
    :class:`NotAPayment` (naming the file and the line)."""
    source = read_tables(paths, limits)
    frame = source.frame
    missing = [c for c in PAYMENT_COLUMNS if c not in frame.columns]
    if missing:
        raise MissingColumn(
            f"{paths[0].name} lacks the column(s) {', '.join(missing)}", missing=missing
        )
    currencies = frame["currency"] if "currency" in frame.columns else None
    files = [name for name, _, rows in source.digests for _ in range(rows)]
    payments = []
    for at, row in enumerate(frame[list(PAYMENT_COLUMNS)].itertuples(index=False)):
        payment_id, executed_at, value_date, amount, creditor = row
        currency = (currencies.iloc[at] if currencies is not None else "") or "MAD"
        payload = {
            "payment_id": payment_id,
            "executed_at": executed_at,
            "value_date": value_date,
            "amount": {"amount": amount, "currency": currency},
            "creditor": {"rib": creditor},
        }
        try:
            payments.append(Payment.from_payload(payload))
        except NotAPayment as exc:
            line = int(frame.index[at]) + 2
            raise NotAPayment(
                f"{files[at]}, line {line}: {exc.message}", file=files[at], line=line
            ) from exc
    return payments, source


def payment_features(
    payment: Payment, earlier: Sequence[tuple[float, float]], known_since: date | None
) -> list[float]:
    """The :data:`FEATURES` of ``payment``; ``earlier`` holds the ``(executed_at, amount)``
    of earlier payments to the same account (any order; only the :data:`HISTORY` latest
    strictly before the payment count), ``known_since`` when the register first knew it."""
    at = payment.executed_at
    past = sorted((t, a) for t, a in earlier if t < at)[-HISTORY:]
    day = [a for t, a in past if t >= at - _DAY]
    month = [a for t, a in past if t >= at - 30 * _DAY]
    median = statistics.median(a for _, a in past) if past else payment.amount
    age = (payment.value_date - known_since).days if known_since is not None else 0
    hour = datetime.fromtimestamp(at, UTC)
    return [
        math.log10(1 + payment.amount),
        float(max(age, 0)),
        0.0 if known_since is not None else 1.0,
        float(len(day)),
        float(len(month)),
        math.log10((1 + payment.amount) / (1 + median)),
        math.log10(1 + payment.amount + sum(day)),
        (at - past[-1][0]) / _DAY if past else _NEVER_PAID,
        hour.hour + hour.minute / 60,
        1.0 if payment.amount >= 1000 and payment.amount % 1000 == 0 else 0.0,
    ]


def history_features(
    payments: Iterable[Payment], known_since: Callable[[str], date | None]
) -> tuple[list[Payment], np.ndarray]:
    """The payments in execution order and their features, each from earlier ones only."""
    ordered = sorted(payments, key=lambda p: (p.executed_at, p.payment_id))
    seen: dict[str, list[tuple[float, float]]] = {}
    rows = []
    for payment in ordered:
        earlier = seen.setdefault(payment.creditor, [])
        rows.append(payment_features(payment, earlier[-HISTORY:], known_since(payment.creditor)))
        earlier.append((payment.executed_at, payment.amount))
    return ordered, np.asarray(rows, dtype=float).reshape(-1, len(FEATURES))


# -- the model ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentModel:
    """A fitted forest, the training medians (for the reasons) and the alert threshold."""

    forest: IsolationForest
    medians: tuple[float, ...]
    threshold: float
    budget: float
    rows: int

    def scores(self, features: np.ndarray) -> np.ndarray:
        """The anomaly scores (0..1) of rows of :data:`FEATURES`."""
        return np.asarray(-self.forest.score_samples(features), dtype=float)

    def explain(self, features: Sequence[float]) -> tuple[float, list[dict[str, Any]]]:
        """One payment's score and its reasons: the features whose usual value would lower
        the score, largest first (at most three)."""
        row = np.asarray(features, dtype=float)
        grid = np.tile(row, (len(row) + 1, 1))
        for i, median in enumerate(self.medians):
            grid[i + 1, i] = median
        scores = self.scores(grid)
        contributions = scores[0] - scores[1:]
        order = sorted(range(len(row)), key=lambda i: -contributions[i])
        reasons = [
            {
                "feature": _NAMES[i],
                "value": round(float(row[i]), 4),
                "contribution": round(float(contributions[i]), 4),
                "labels": dict(FEATURES[i][1]),
            }
            for i in order[:3]
            if contributions[i] > 0
        ]
        return float(scores[0]), reasons


def _check_budget(budget: float) -> None:
    if not 0 < budget <= 0.5:
        raise BadOption(f"the alert budget must be in (0, 0.5], not {budget}")


def train_payments(features: np.ndarray, *, budget: float = 0.02, seed: int = 0) -> PaymentModel:
    """Fit the forest on rows of :data:`FEATURES`; flag the top ``budget`` share. Raises
    :class:`BadOption` for a budget outside (0, 0.5] and :class:`TooFewOutcomes` for fewer
    than 50 payments."""
    _check_budget(budget)
    if len(features) < 50:
        raise TooFewOutcomes(
            f"an anomaly model needs at least 50 payments to learn from, not {len(features)}"
        )
    forest = IsolationForest(n_estimators=TREES, random_state=seed).fit(features)
    scores = -forest.score_samples(features)
    return PaymentModel(
        forest=forest,
        medians=tuple(float(m) for m in np.median(features, axis=0)),
        threshold=float(np.quantile(scores, 1 - budget)),
        budget=budget,
        rows=len(features),
    )


StoredPayments = Kept[PaymentModel]
"""A payment model as the store holds it."""


class PaymentModelStore(VersionedStore):
    """Versioned payment models (DIR/versions/NNNN/forest.skops, state.json, manifest.json),
    checked on load like the declaration models."""

    FORMAT = "tabadul-payment-model/1"
    FILES = ("forest.skops", "state.json")

    def save(self, model: PaymentModel, *, training: dict[str, Any]) -> StoredPayments:
        """Write ``model`` as the next version and make it current."""
        state = {"medians": list(model.medians), "threshold": model.threshold}
        state.update(budget=model.budget, rows=model.rows, features=list(_NAMES))

        def write(folder: Path, version: str) -> StoredPayments:
            manifest, digest = write_manifest(
                folder,
                self.FORMAT,
                version,
                {
                    "forest.skops": sio.dumps(model.forest),
                    "state.json": json.dumps(state, sort_keys=True).encode(),
                },
                training=training,
                params=model.forest.get_params(),
                features=list(_NAMES),
            )
            return StoredPayments(model, version, digest, manifest)

        return self._save(write)

    def load(self, version: str | None = None) -> StoredPayments:
        """The payment model ``version`` (the current one by default), checked."""
        checked: Checked = self._checked(version)
        where = f"{checked.folder}/forest.skops"
        data = checked.files["forest.skops"]
        try:
            untrusted = set(sio.get_untrusted_types(data=data)) - set(_TRUSTED)
            forest = None if untrusted else sio.loads(data, trusted=_TRUSTED)
            state = json.loads(checked.files["state.json"])
            model = PaymentModel(
                forest,
                tuple(float(m) for m in state["medians"]),
                float(state["threshold"]),
                float(state["budget"]),
                int(state["rows"]),
            )
        except Exception as exc:  # skops raises many kinds on a corrupt file
            raise ModelTampered(f"{checked.folder}: the model does not load: {exc}") from exc
        if untrusted:
            raise ModelTampered(f"{where} holds types a forest does not: {sorted(untrusted)}")
        if not isinstance(forest, IsolationForest) or state["features"] != list(_NAMES):
            raise ModelTampered(f"{where} is not a forest over this version's features")
        return StoredPayments(model, checked.version, checked.digest, checked.manifest)


# -- the ledger -----------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    payment_id TEXT PRIMARY KEY,
    creditor TEXT NOT NULL,
    executed_at REAL NOT NULL,
    value_date TEXT NOT NULL,
    amount REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_by_creditor ON payments (creditor, executed_at);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL,
    creditor TEXT NOT NULL,
    score REAL NOT NULL,
    model_version TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_creditor ON alerts (creditor);
CREATE TABLE IF NOT EXISTS verdicts (
    alert_id TEXT PRIMARY KEY,
    verdict TEXT NOT NULL,
    decided_at TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Verdict:
    """A verdict of tax with the alert it judges."""

    alert_id: str
    payment_id: str
    creditor: str
    score: float
    verdict: str
    executed_at: float


class Ledger:
    """The payments screened, the alerts raised and the verdicts received: one SQLite file,
    each write one transaction, on disk before returning. Repeats change nothing (a verdict
    sent again replaces the earlier one). Thread-safe."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise OutcomesUnreadable(f"cannot open the payment ledger {path}: {exc}") from exc
        self._lock = threading.Lock()

    def record(self, payments: Iterable[Payment]) -> None:
        """Keep payments (one transaction; those kept already are left as they are)."""
        rows = [
            (p.payment_id, p.creditor, p.executed_at, p.value_date.isoformat(), p.amount)
            for p in payments
        ]
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR IGNORE INTO payments VALUES (?, ?, ?, ?, ?)", rows)

    def earlier(self, payment: Payment) -> list[tuple[float, float]]:
        """The :data:`HISTORY` latest payments to ``payment``'s account before it."""
        with self._lock:
            found = self._db.execute(
                "SELECT executed_at, amount FROM payments WHERE creditor = ? AND executed_at < ?"
                " ORDER BY executed_at DESC LIMIT ?",
                (payment.creditor, payment.executed_at, HISTORY),
            ).fetchall()
        return [(float(t), float(a)) for t, a in found]

    def payments(self) -> list[Payment]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM payments").fetchall()
        return [Payment(i, float(t), date.fromisoformat(d), float(a), c) for i, c, t, d, a in rows]

    def alerted(self, alert_id: str, payment: Payment, score: float, version: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?)",
                (alert_id, payment.payment_id, payment.creditor, score, version),
            )

    def decided(self, verdict: Mapping[str, Any]) -> bool:
        """Keep a ``tax.alert-verdict`` payload; False (kept all the same) for an alert this
        ledger never raised."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?)",
                (verdict["alert_id"], verdict["verdict"], verdict["decided_at"]),
            )
            known = self._db.execute(
                "SELECT 1 FROM alerts WHERE alert_id = ?", (verdict["alert_id"],)
            ).fetchone()
        return known is not None

    def verdicts(self, creditor: str | None = None) -> list[Verdict]:
        """The verdicts on alerts of this ledger (of one account when given), oldest first."""
        query = (
            "SELECT a.alert_id, a.payment_id, a.creditor, a.score, v.verdict, p.executed_at"
            " FROM verdicts v JOIN alerts a USING (alert_id) JOIN payments p USING (payment_id)"
        )
        arguments: tuple[str, ...] = ()
        if creditor is not None:
            query += " WHERE a.creditor = ?"
            arguments = (creditor,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY p.executed_at", arguments).fetchall()
        return [Verdict(i, p, c, float(s), v, float(t)) for i, p, c, s, v, t in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                table: int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608 - our tables
                for table in ("payments", "alerts", "verdicts")
            }

    def close(self) -> None:
        with self._lock:
            self._db.close()


# -- the service ----------------------------------------------------------------------------


class PaymentRisk:
    """Scores the treasury's payments with the current model of ``folder``, keeping each in
    the ledger; ``known_since`` reads the register of payees. Thread-safe."""

    def __init__(self, folder: Path, known_since: Callable[[str], date | None]) -> None:
        self.store = PaymentModelStore(folder)
        self.known_since = known_since
        self._current = Current(self.store, self.store.load)
        self.ledger = Ledger(folder / PAYMENTS)

    @property
    def stored(self) -> StoredPayments:
        """The model in use, loaded again when another version was made current."""
        return self._current.get()

    def assess(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The ``anomaly`` of a ``treasury.payment-executed`` payload (see the alert's
        schema 1.1.0), the payment kept in the ledger. Raises :class:`NotAPayment`."""
        payment = Payment.from_payload(payload)
        stored = self.stored
        earlier = self.ledger.earlier(payment)
        self.ledger.record([payment])
        features = payment_features(payment, earlier, self.known_since(payment.creditor))
        score, reasons = stored.model.explain(features)
        anomaly: dict[str, Any] = {
            "score": round(score, 4),
            "threshold": round(stored.model.threshold, 4),
            "flagged": score >= stored.model.threshold,
            "model": {"version": stored.version, "digest": stored.digest},
            "reasons": reasons,
        }
        feedback = self._feedback(payment, score)
        if feedback is not None:
            anomaly["flagged"] = feedback.verdict == "confirmed"
            anomaly["feedback"] = {"verdict": feedback.verdict, "alert_id": feedback.alert_id}
        return anomaly

    def alerted(self, alert: Mapping[str, Any], payload: Mapping[str, Any]) -> None:
        """Keep which payment an alert was about (what a verdict will refer to)."""
        anomaly = alert.get("anomaly")
        if anomaly is None:
            return
        payment = Payment.from_payload(payload)
        self.ledger.alerted(
            alert["alert_id"], payment, anomaly["score"], anomaly["model"]["version"]
        )

    def decided(self, verdict: Mapping[str, Any]) -> bool:
        """Keep a ``tax.alert-verdict``; False when it names an alert never raised here."""
        return self.ledger.decided(verdict)

    def close(self) -> None:
        self.ledger.close()

    def _feedback(self, payment: Payment, score: float) -> Verdict | None:
        """The verdict that applies to this payment: the account's latest confirmed one
        (it is flagged), else a dismissed one within :data:`SUPPRESSION` that scored at least
        as high (it is not)."""
        verdicts = [
            v for v in self.ledger.verdicts(payment.creditor) if v.payment_id != payment.payment_id
        ]
        earlier = [v for v in verdicts if v.executed_at <= payment.executed_at]
        for v in reversed(earlier):
            if v.verdict == "confirmed":
                return v
        window = payment.executed_at - SUPPRESSION.total_seconds()
        for v in reversed(earlier):
            if v.executed_at >= window and score <= v.score:
                return v
        return None


@dataclass(frozen=True, slots=True)
class RetrainedPayments:
    """What a retraining of the payment model did."""

    replaced: bool
    previous: str
    version: str
    rows: int
    left_out: int
    judged: int
    current_auc: float | None
    candidate_auc: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_ledger(
    payments: Iterable[Payment],
    known_since: Callable[[str], date | None],
    *,
    leave_out: Iterable[str] = (),
    budget: float = 0.02,
) -> tuple[PaymentModel, list[Payment], np.ndarray]:
    """A model fitted on ``payments`` less those of ``leave_out`` (their features still
    computed from every payment); the ordered payments and all their features."""
    ordered, features = history_features(payments, known_since)
    left = set(leave_out)
    keep = np.asarray([p.payment_id not in left for p in ordered], dtype=bool)
    return train_payments(features[keep], budget=budget), ordered, features


def train_from(
    folder: Path,
    payments: Iterable[Payment],
    known_since: Callable[[str], date | None],
    *,
    budget: float = 0.02,
    files: Source | None = None,
) -> StoredPayments:
    """Keep ``payments`` (the treasury's history, read from ``files`` when given) in the
    ledger of ``folder`` and fit a new version on the whole ledger, less the confirmed
    payments; make it current. A bad budget is refused before the ledger is touched."""
    _check_budget(budget)
    ledger = Ledger(folder / PAYMENTS)
    try:
        ledger.record(payments)
        confirmed = {v.payment_id for v in ledger.verdicts() if v.verdict == "confirmed"}
        model, ordered, _ = fit_ledger(
            ledger.payments(), known_since, leave_out=confirmed, budget=budget
        )
    finally:
        ledger.close()
    training: dict[str, Any] = {
        "ledger_payments": len(ordered),
        "left_out_confirmed": len(confirmed),
    }
    if files is not None:
        training["history"] = files.as_training()
    return PaymentModelStore(folder).save(model, training=training)


def retrain_payments(risk: PaymentRisk) -> RetrainedPayments:
    """Fit a new version on the ledger, less the confirmed payments; make it current unless
    it ranks the judged alerts (confirmed above dismissed) worse than the current one. With
    verdicts of one kind only, nothing is judged and the new version replaces."""
    current = risk.stored
    verdicts = risk.ledger.verdicts()
    confirmed = {v.payment_id for v in verdicts if v.verdict == "confirmed"}
    candidate, ordered, features = fit_ledger(
        risk.ledger.payments(), risk.known_since, leave_out=confirmed,
        budget=current.model.budget,
    )  # fmt: skip
    judged = {v.payment_id: v.verdict == "confirmed" for v in verdicts}
    rows = [i for i, p in enumerate(ordered) if p.payment_id in judged]
    labels = [judged[ordered[i].payment_id] for i in rows]
    current_auc = candidate_auc = None
    if len(set(labels)) == 2:
        current_auc = float(roc_auc_score(labels, current.model.scores(features[rows])))
        candidate_auc = float(roc_auc_score(labels, candidate.scores(features[rows])))
    replaced = candidate_auc is None or current_auc is None or candidate_auc >= current_auc
    version = current.version
    if replaced:
        version = risk.store.save(
            candidate,
            training={"ledger_payments": len(ordered), "left_out_confirmed": len(confirmed)},
        ).version
    return RetrainedPayments(
        replaced, current.version, version, candidate.rows, len(confirmed), len(rows),
        current_auc, candidate_auc,
    )  # fmt: skip


__all__ = [
    "FEATURES",
    "PAYMENTS",
    "PAYMENT_COLUMNS",
    "Ledger",
    "Payment",
    "PaymentModel",
    "PaymentModelStore",
    "PaymentRisk",
    "RetrainedPayments",
    "StoredPayments",
    "Verdict",
    "fit_ledger",
    "history_features",
    "payment_features",
    "read_payments",
    "retrain_payments",
    "train_from",
    "train_payments",
]
