"""The customs risk service on the bus: a connector of ``MA/GOV/MEF/CUSTOMS-RISK`` whose
handlers call :class:`risk.RiskService` (composed here: ``connectors`` may not import
``risk``).

It subscribes to ``customs.declaration-lodged``; for each declaration it sends the
``customs.risk-assessed`` message (RESTRICTED, so encrypted to customs) back to the
publisher, and it keeps each ``customs.inspection-result`` customs sends it. A declaration
the model cannot read is refused (``not-a-declaration``) rather than retried for ever.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors import Context, Delivery, Handler, Refuse
from connectors.ministries import customs
from exchange import LegalBasis

if TYPE_CHECKING:
    from risk import RiskService

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
