"""The demo's dead letter: tax's ledger is down for one customs declaration, so tax's handler
fails every attempt and the declaration becomes a ``handler-failed`` dead letter; customs'
status of it says ``failed`` at tax. Once the ledger is back an operator resends it from
tax's dead letters, tax handles it, and customs' status goes to ``handled``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from connectors import Connector, Delivery, Handler
from connectors.ministries import customs

DOWN_FOR = "the tax ledger is unavailable"
OPERATOR = "demo-operator"
TIMEOUT = 30.0


class LedgerOutage:
    """``handler``, but failing for declaration ``number`` until :meth:`fix`."""

    def __init__(self, handler: Handler, number: str) -> None:
        self.handler = handler
        self.number = number
        self.down = True
        self.failures = 0

    def __call__(self, delivery: Delivery, ctx: Any) -> Any:
        if self.down and delivery.payload.get("declaration_number") == self.number:
            self.failures += 1
            raise RuntimeError(f"{DOWN_FOR} for declaration {self.number}")
        assert callable(self.handler)
        return self.handler(delivery, ctx)

    def fix(self) -> None:
        self.down = False


def with_outage(handlers: Mapping[str, Handler]) -> tuple[dict[str, Handler], LedgerOutage]:
    """tax's ``handlers`` with the lodged declarations' one down for the first sample
    declaration."""
    first = next(customs.declarations(1))[0]["declaration_number"]
    outage = LedgerOutage(handlers[customs.DECLARATION_LODGED], first)
    return {**handlers, customs.DECLARATION_LODGED: outage}, outage


def _until(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the demo waited {TIMEOUT:g} s for {what}")
        time.sleep(0.1)
    return found


def run(
    tax_connector: Connector,
    customs_connector: Connector,
    outage: LedgerOutage,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Wait for the dead letter, fix the ledger, resend it; returns what happened."""
    desk = tax_connector.dead_letters
    tax = str(tax_connector.me)

    def failed_letter() -> Any:
        return next(
            (v for v in desk.list(state="waiting").letters if v.code == "handler-failed"), None
        )

    def state_at_tax(message_id: str) -> str | None:
        states = customs_connector.status(message_id)
        found = [d.state for d in states.deliveries if d.party == tax] if states else []
        return found[0] if found else None

    letter = _until(failed_letter, "tax's dead letter")
    before = _until(lambda: state_at_tax(letter.message_id) == "failed" and "failed", "failed")
    outage.fix()
    resent = desk.resend(letter.seq, actor=OPERATOR, reason="the tax ledger is back")
    after = _until(
        lambda: state_at_tax(letter.message_id) == "handled" and "handled", "the resent handling"
    )
    say(
        f"tax's ledger was down for declaration {outage.number}: its handler failed "
        f"{outage.failures} times and the declaration became dead letter {letter.seq} "
        f"(handler-failed); once fixed, {OPERATOR} resent it, tax handled it, and customs' "
        f"status of it went {before} -> {after}"
    )
    return {
        "message_id": letter.message_id,
        "code": letter.code,
        "attempts": outage.failures,
        "resent_by": resent.actions[-1].actor,
        "status_at_tax": [before, after],
    }
