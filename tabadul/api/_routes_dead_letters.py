"""The dead letters of the managed connectors (``settings.connectors``), for operators: list,
show (the payload only to an operator, never an encrypted one), resend to the handler after a
fix, discard with a reason. Auditors may list and show headers. A resend, a discard and each
reading of a payload are entries of the governance audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from connectors import DeadLetterOut, DeadLetterSummary
from tabadul._access import OPERATORS, OVERSIGHT, require_role
from tabadul._dead_letters import DeadLetterOffice
from tabadul.api._auth import Caller, ServicesDep
from tabadul.api._models import ReasonIn, RequiredReasonIn
from tabadul.api._problems import problem_responses

router = APIRouter(
    prefix="/v1/dead-letters",
    tags=["dead letters"],
    responses=problem_responses(400, 401, 403, 404, 413, 429, 503),
)
Slug = Annotated[str, Path(min_length=1, max_length=200, description="The connector's slug")]
Seq = Annotated[int, Path(ge=1, description="The dead letter's number at that connector")]
_CHANGE = problem_responses(409)


class HolderOut(BaseModel):
    source: str = Field(description="The connector's configuration file")
    subsystem: str | None
    slug: str | None
    dead_letters: list[DeadLetterSummary]
    queue_error: str | None = Field(
        description="Why its dead-letter queue could not be read now (what was kept is listed)"
    )
    next_after: int | None = Field(
        description="More follow: pass it as `after`, with this `connector`"
    )
    error: dict[str, str] | None = Field(description="Why it could not be read")


class DeadLettersOut(BaseModel):
    connectors: list[HolderOut]


@dataclass
class Page:
    """Which page: at most ``limit`` per connector; ``connector`` and ``after`` for more."""

    limit: Annotated[int, Query(ge=1, le=1000)] = 100
    connector: Annotated[
        str | None, Query(max_length=200, description="Only this connector's (a slug)")
    ] = None
    after: Annotated[int, Query(ge=0, description="Numbered after this (with `connector`)")] = 0


def _office(services: ServicesDep) -> DeadLetterOffice:
    return DeadLetterOffice(services.settings.connectors, services.workflow.audit)


@router.get("", summary="The managed connectors' dead letters", operation_id="list_dead_letters")
def list_dead_letters(
    services: ServicesDep,
    caller: Caller,
    page: Annotated[Page, Depends()],
    state: Literal["waiting", "resent", "discarded"] | None = None,
) -> DeadLettersOut:
    """Each managed connector's dead letters, oldest first, at most ``limit`` each."""
    require_role(caller, OVERSIGHT, "read_dead_letters", "read the dead letters")
    found = _office(services).everything(
        state=state,
        limit=page.limit,
        connector=page.connector,
        after=page.after if page.connector else 0,
    )
    return DeadLettersOut.model_validate({"connectors": [h.as_dict() for h in found]})


@router.get("/{slug}/{seq}", summary="One dead letter", operation_id="show_dead_letter")
def show_dead_letter(
    slug: Slug, seq: Seq, services: ServicesDep, caller: Caller, *, payload: bool = False
) -> DeadLetterOut:
    """Its header as sent, code, reason, what was done with it; with ``payload=true`` (an
    operator only, audited) its payload, unless encrypted."""
    require_role(caller, OVERSIGHT, "read_dead_letters", "read the dead letters")
    if payload:
        require_role(caller, OPERATORS, "read_dead_letter_payload", "read a dead letter's payload")
    view = _office(services).show(slug, seq, actor=caller.user_id, payload=payload)
    return DeadLetterOut.of(view)


@router.post(
    "/{slug}/{seq}/resend",
    summary="Give a failed message to its handler again",
    operation_id="resend_dead_letter",
    responses=_CHANGE,
)
def resend_dead_letter(
    slug: Slug, seq: Seq, body: ReasonIn, services: ServicesDep, caller: Caller
) -> DeadLetterOut:
    """Only a message whose handler failed (``handler-failed``); anything else is
    ``not-resendable``: its sender must send a new message. The running connector takes it
    within half its takeover time."""
    require_role(caller, OPERATORS, "resend_dead_letter", "resend a dead letter")
    view = _office(services).resend(slug, seq, actor=caller.user_id, reason=body.reason)
    return DeadLetterOut.of(view)


@router.post(
    "/{slug}/{seq}/discard",
    summary="Discard a dead letter, saying why",
    operation_id="discard_dead_letter",
    responses=_CHANGE,
)
def discard_dead_letter(
    slug: Slug, seq: Seq, body: RequiredReasonIn, services: ServicesDep, caller: Caller
) -> DeadLetterOut:
    require_role(caller, OPERATORS, "discard_dead_letter", "discard a dead letter")
    view = _office(services).discard(slug, seq, actor=caller.user_id, reason=body.reason)
    return DeadLetterOut.of(view)


__all__ = ["router"]
