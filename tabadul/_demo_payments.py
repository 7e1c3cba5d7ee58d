"""The demo's suspicious-payment scoring: the treasury's anomaly score, tax's verdicts, the
feedback.

Before the connectors start, the treasury's anomaly model is fitted on six months of its
payees' fictitious history (:func:`connectors.ministries.treasury.payment_history`). While
the treasury executes the sample payments, its screener applies the two rules and the
learned score; every alert carries the score and its reasons. Tax's investigators then send
a verdict on the alerts they have looked into; the treasury keeps them in the scorer's
ledger. Two later payments show the feedback (one to an account whose alert was dismissed,
one to an account whose alert was confirmed), and the model is refitted from the ledger.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors import Connector
from connectors.ministries import tax, treasury
from tabadul._risk_service import payment_risk

if TYPE_CHECKING:
    from risk import PaymentRisk

Progress = Callable[[str], None]
TIMEOUT = 60.0  # seconds to wait for the messages of one step
LATER = (  # payment id, day, amount, creditor account and holder: after the verdicts
    ("TGR-2026-000000123480", "2026-11-10", "450000.00", "011640000000007878787849",
     "Bureau d'Etudes Atlas Conseil SARL"),
    ("TGR-2026-000000123481", "2026-11-10", "20000.00", "230640000000003131313149",
     "Sigma Travaux SARL"),
)  # fmt: skip


def prepare(folder: Path, say: Progress) -> tuple[PaymentRisk, treasury.PaymentScreener]:
    """Fit the first payment model on the sample history into ``folder``; its scorer and
    the treasury's screener using it."""
    from risk import Payment, train_from  # noqa: PLC0415 - scikit-learn only for the demo

    history = treasury.payment_history()
    started = time.perf_counter()
    payments = [Payment.from_payload(p) for p in history]
    stored = train_from(folder, payments, treasury.payee_registry().known_since)
    say(
        f"treasury's anomaly model fitted on {len(history)} earlier payments in "
        f"{time.perf_counter() - started:.1f} s: flags from score {stored.model.threshold:.3f}"
    )
    risk = payment_risk(folder)
    return risk, treasury.PaymentScreener(scorer=risk)


def run(
    connectors: Mapping[str, Connector],
    risk: PaymentRisk,
    screener: treasury.PaymentScreener,
    *,
    say: Progress,
) -> dict[str, Any]:
    """Once the treasury's alerts reached tax: tax's verdicts, the two later payments, the
    refit. The summary."""
    from risk import RiskError, retrain_payments  # noqa: PLC0415

    alerts = screener.sent()
    _wait(lambda: len(tax.received_alerts()) >= len(alerts))
    verdicts = tax.judge_alerts(connectors["tax"].context())
    _wait(lambda: risk.ledger.counts()["verdicts"] >= len(verdicts))
    judged = Counter(v["verdict"] for v in verdicts)
    say(
        f"tax looked into {len(verdicts)} of the {len(alerts)} alerts and sent the treasury "
        f"its verdicts, encrypted: {dict(sorted(judged.items()))}"
    )
    later = []
    treasury_connector = connectors["treasury"]
    context = treasury_connector.context()
    for payment_id, day, amount, rib, holder in LATER:
        payment = _payment(payment_id, day, amount, rib, holder)
        treasury_connector.publish(treasury.PAYMENT_EXECUTED, payment)
        alert = screener.screen_and_alert(payment, context)
        anomaly = risk.assess(payment)
        later.append(
            {
                "payment": payment_id,
                "account": rib,
                "score": anomaly["score"],
                "flagged": anomaly["flagged"],
                "alerted": alert is not None,
                "because": anomaly.get("feedback", {}).get("verdict"),
            }
        )
    say(
        "two later payments: "
        + "; ".join(
            f"to an account whose alert was {p['because'] or 'not judged'}: "
            + ("alert" if p["alerted"] else "no alert")
            for p in later
        )
    )
    alerts = screener.sent()
    _wait(lambda: len(tax.received_alerts()) >= len(alerts))
    try:
        done = retrain_payments(risk)
        refit: dict[str, Any] = done.as_dict()
        say(
            f"payment model refitted from the ledger ({done.rows} payments, {done.left_out} "
            f"confirmed left out): version {done.version}"
            + (" is current" if done.replaced else f" ranks worse, {done.previous} stays")
        )
    except RiskError as exc:
        refit = {"replaced": False, **exc.as_dict()}
        say(f"payment model refit postponed: {exc.message}")
    anomalous = [a for a in alerts if "anomalous-behaviour" in a["typologies"]]
    return {
        "alerts": len(alerts),
        "by_typology": dict(sorted(Counter(t for a in alerts for t in a["typologies"]).items())),
        "highest": [
            {
                "alert": a["alert_id"],
                "score": a["anomaly"]["score"],
                "typologies": a["typologies"],
                "reasons": [
                    f"{r['labels']['en']} = {r['value']:g} ({r['contribution']:+.3f})"
                    for r in a["anomaly"]["reasons"]
                ],
            }
            for a in sorted(alerts, key=lambda a: -a["anomaly"]["score"])[:3]
        ],
        "anomalous": len(anomalous),
        "verdicts": dict(sorted(judged.items())),
        "later": later,
        "refit": refit,
    }


def _payment(payment_id: str, day: str, amount: str, rib: str, holder: str) -> dict[str, Any]:
    return {
        "payment_id": payment_id,
        "executed_at": f"{day}T10:00:00Z",
        "value_date": day,
        "amount": {"amount": amount, "currency": "MAD"},
        "debtor": {"rib": treasury.TREASURY_RIB, "holder": treasury.TREASURY_HOLDER},
        "creditor": {"rib": rib, "holder": holder},
        "method": "transfer",
    }


def _wait(done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not done() and time.monotonic() < deadline:
        time.sleep(0.1)
