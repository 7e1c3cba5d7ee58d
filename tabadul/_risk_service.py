"""The risk services on the bus, composed here (``connectors`` may not import ``risk``).

**Customs**: a connector of ``MA/GOV/MEF/CUSTOMS-RISK`` whose handlers call
:class:`risk.RiskService`. It subscribes to ``customs.declaration-lodged``; for each
declaration it sends the ``customs.risk-assessed`` message (RESTRICTED, so encrypted to
customs) back to the publisher, and it keeps each ``customs.inspection-result`` customs sends
it. A declaration the model cannot read is refused (``not-a-declaration``) rather than
retried for ever.

**Treasury**: ``treasury.PaymentScreener(scorer=payment_risk(DIR))`` is the treasury's
screener with the learned anomaly score of :class:`risk.PaymentRisk` beside its two rules
(it satisfies ``treasury.Scorer``); :func:`payment_handlers` adds to
the treasury's connector the keeping of each ``tax.alert-verdict`` in the scorer's ledger,
where it feeds back (``tabadul risk payments retrain``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors import Context, Delivery, Handler, Refuse
from connectors.ministries import customs, tax, treasury
from exchange import LegalBasis

if TYPE_CHECKING:
    from pathlib import Path

    from risk import PaymentRisk, RiskService

SUBSYSTEM = customs.RISK_SUBSYSTEM
TERMS: dict[str, dict[str, Any]] = {
    customs.RISK_ASSESSED: {
        "purpose": "customs-risk-selection",
        "legal_basis": LegalBasis(
            "Selecting the declarations to inspect by risk analysis",
            "Code des douanes et impôts indirects, art. 41",
        ),
    },
    customs.INSPECTION_RESULT: {
        "purpose": "customs-risk-selection",
        "legal_basis": LegalBasis(
            "Learning from the results of inspections to select better",
            "Code des douanes et impôts indirects, art. 41",
        ),
    },
}
"""The purpose and legal basis of the two grants the service needs (illustrative)."""

VERDICT_TERMS: dict[str, Any] = {
    "purpose": "anti-money-laundering",
    "legal_basis": LegalBasis(
        "Telling the treasury what its suspicious-transaction alerts turned out to be",
        "Loi n° 43-05 relative à la lutte contre le blanchiment de capitaux",
    ),
}
"""The purpose and legal basis of tax's grant to send the treasury its verdicts."""


def risk_handlers(service: RiskService) -> dict[str, Handler]:
    """The handlers of the risk service's connector."""
    from risk import NotADeclaration  # noqa: PLC0415 - the CLI starts without pandas

    def on_declaration_lodged(delivery: Delivery, ctx: Context) -> None:
        try:
            assessed = service.assess(delivery.payload)
        except NotADeclaration as exc:
            raise Refuse(exc.message, code=exc.code) from exc
        ctx.send(customs.RISK_ASSESSED, delivery.sender, assessed)

    def on_inspection_result(delivery: Delivery, ctx: Context) -> None:
        del ctx
        service.record(delivery.payload)

    return {
        customs.DECLARATION_LODGED: on_declaration_lodged,
        customs.INSPECTION_RESULT: on_inspection_result,
    }


def payment_risk(folder: Path) -> PaymentRisk:
    """The payment scorer of the model folder ``folder``, over the treasury's register."""
    from risk import PaymentRisk  # noqa: PLC0415 - the CLI starts without scikit-learn

    return PaymentRisk(folder, treasury.payee_registry().known_since)


def payment_handlers(risk: PaymentRisk) -> dict[str, Handler]:
    """The treasury's handlers, its verdicts also kept by ``risk``."""

    def on_alert_verdict(delivery: Delivery, ctx: Context) -> None:
        risk.decided(delivery.payload)
        treasury.on_alert_verdict(delivery, ctx)

    return {**treasury.SPEC.handlers, tax.ALERT_VERDICT: on_alert_verdict}
