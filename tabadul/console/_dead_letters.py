"""The console's dead-letter pages, for operators and auditors: every managed connector's dead
letters, one dead letter's header, code, reason and history, and (operators only) its payload
unless encrypted, resend after a fix and discard with a reason. The work is
:class:`tabadul._dead_letters.DeadLetterOffice`'s, as for the management API; every action
and every payload shown is in the governance audit log."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from connectors import ConnectorError, DeadLetterView
from governance import GovernanceError, Role
from tabadul._dead_letters import DeadLetterOffice
from tabadul.console._web import Flash, View, redirect

if TYPE_CHECKING:
    from tabadul.console._router import Console

STATES = ("waiting", "resent", "discarded")
form = Annotated[str, Form()]
Step = Callable[[DeadLetterOffice, str], str]  # (office, actor) -> the success text's key
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}\Z")


def add_dead_letter_pages(  # noqa: C901 - one route each
    router: APIRouter, console: Console, error_flash: Callable[[Exception], Flash]
) -> None:
    """Add the pages to ``router``, with ``console``'s sessions, rendering and flashes."""
    services = console.services

    def office() -> DeadLetterOffice:
        return DeadLetterOffice(services.settings.connectors, services.workflow.audit)

    @router.get("/dead-letters", name="console.dead_letters")
    def dead_letters(
        request: Request, state: str = "waiting", connector: str = "", after: int = 0
    ) -> Response:
        view = console.overseer(request)
        if isinstance(view, Response):
            return view
        chosen = state if state in STATES else None
        holders = office().everything(
            state=chosen, connector=connector or None, after=after if connector else 0
        )
        return console.render(
            view,
            "dead_letters.html",
            holders=holders,
            state=chosen or "all",
            states=STATES,
            configured=bool(services.settings.connectors),
        )

    def letter_page(view: View, slug: str, seq: int, *, payload: bool) -> Response:
        assert view.user is not None
        operator = Role.OPERATOR in view.user.roles
        try:
            letter = office().show(slug, seq, actor=view.user.user_id, payload=payload)
        except (ConnectorError, GovernanceError) as exc:
            return console.error_page(view, exc)
        return console.render(
            view,
            "dead_letter.html",
            slug=slug,
            letter=letter,
            header_rows=_header_rows(letter),
            operator=operator,
            asked=payload,
        )

    @router.get("/dead-letters/{slug}/{seq}", name="console.dead_letter")
    def dead_letter(request: Request, slug: str, seq: int) -> Response:
        view = console.overseer(request)
        if isinstance(view, Response):
            return view
        return letter_page(view, slug, seq, payload=False)

    @router.post("/dead-letters/{slug}/{seq}/payload")
    def payload(request: Request, slug: str, seq: int, csrf: form = "") -> Response:
        """The page with the payload: a POST with the CSRF token, since reading it is an
        audit entry in the operator's name (a link from elsewhere must not make one)."""
        view = console.posted(request, csrf)
        if isinstance(view, Response):
            return view
        assert view.user is not None
        if Role.OPERATOR not in view.user.roles:
            return console.refusal_page(view, "wrong-role", 403)
        return letter_page(view, slug, seq, payload=True)

    def act(request: Request, where: tuple[str, int], csrf: str, step: Step) -> Response:
        """Run ``step`` for the signed-in operator, then back to the dead letter's page."""
        view = console.posted(request, csrf)
        if isinstance(view, Response):
            return view
        assert view.user is not None
        if Role.OPERATOR not in view.user.roles:
            return console.refusal_page(view, "wrong-role", 403)
        slug, seq = where
        if _SLUG.match(slug) is None:
            return redirect(view, f"{view.base}/dead-letters", None, console.flashes)
        try:
            key = step(office(), view.user.user_id)
            flash = Flash("ok", key=key, params={"seq": str(seq)})
        except (ConnectorError, GovernanceError) as exc:
            flash = error_flash(exc)
        return redirect(view, f"{view.base}/dead-letters/{slug}/{seq}", flash, console.flashes)

    @router.post("/dead-letters/{slug}/{seq}/resend")
    def resend(
        request: Request, slug: str, seq: int, csrf: form = "", reason: form = ""
    ) -> Response:
        def step(desk: DeadLetterOffice, actor: str) -> str:
            desk.resend(slug, seq, actor=actor, reason=reason)
            return "dead_letters.resend_done"

        return act(request, (slug, seq), csrf, step)

    @router.post("/dead-letters/{slug}/{seq}/discard")
    def discard(
        request: Request, slug: str, seq: int, csrf: form = "", reason: form = ""
    ) -> Response:
        def step(desk: DeadLetterOffice, actor: str) -> str:
            desk.discard(slug, seq, actor=actor, reason=reason)
            return "dead_letters.discard_done"

        return act(request, (slug, seq), csrf, step)


def _header_rows(letter: DeadLetterView) -> list[tuple[str, str]]:
    """The header's members as (name, text), nested values as compact JSON."""
    rows = []
    for name, value in (letter.header or {}).items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        rows.append((name, text))
    return rows
