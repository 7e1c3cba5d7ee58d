"""The local API's dead-letter endpoints (see :mod:`connectors._dead_letters`): list, show
(the payload only when asked for, never an encrypted one), resend to the handler after a fix,
discard with a reason. Each action names its actor; the token's holder is the agency's
operator, so the API trusts the name it gives."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.params import Depends
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from connectors._dead_letters import MAX_REASON, DeadLetterDesk, DeadLetterView
from exchange import SubsystemId

Seq = Annotated[int, Path(ge=1, description="The dead letter's number at this subsystem")]


class ActionOut(BaseModel):
    action: str
    actor: str
    reason: str
    at: str


class DeadLetterSummary(BaseModel):
    seq: int
    message_id: str
    code: str = Field(description="The reject code (broker-<reason> if the broker put it there)")
    reason: str
    arrived: str
    state: Literal["waiting", "resent", "discarded"]
    type: str | None
    kind: str | None
    sender: str | None
    encrypted: bool
    resendable: bool = Field(description="Whether resend would give it to the handler again")


class DeadLetterOut(DeadLetterSummary):
    size: int
    header: dict[str, JsonValue] | None = Field(description="As sent; null if not an envelope")
    unreadable: str | None = Field(description="Why the bytes are not an envelope")
    payload: JsonValue = Field(description="Only when asked for, and never if encrypted")
    payload_note: str | None = Field(description="Why the payload is not shown")
    actions: list[ActionOut]

    @classmethod
    def of(cls, view: DeadLetterView) -> DeadLetterOut:
        return cls.model_validate(view.as_dict())


class DeadLettersOut(BaseModel):
    subsystem: str
    dead_letters: list[DeadLetterSummary]
    queue_error: str | None = Field(
        description="Why the dead-letter queue could not be read now (what was kept is listed)"
    )
    next_after: int | None = Field(description="Pass as `after` for the next page")


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor: str = Field(min_length=1, max_length=200, description="Who does it (recorded)")
    reason: str = Field(default="", max_length=MAX_REASON, description="Why (required to discard)")


def dead_letter_router(
    me: SubsystemId,
    desk: DeadLetterDesk,
    guard: list[Depends],
    problems: dict[int | str, dict[str, Any]],
    changes: dict[int | str, dict[str, Any]],
) -> APIRouter:
    """The endpoints on ``desk``, each behind ``guard``; ``problems`` documents what every
    one may answer, ``changes`` what those on one dead letter add (404, 409)."""
    one = {**problems, **changes}
    router = APIRouter(prefix="/dead-letters", tags=["dead letters"], dependencies=guard)

    @router.get("", responses=problems, operation_id="list_dead_letters")
    def list_dead_letters(
        state: Literal["waiting", "resent", "discarded"] | None = None,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> DeadLettersOut:
        """What this subsystem refused or could not handle, oldest first (what waits in the
        dead-letter queue is taken into the connector's database first)."""
        page = desk.list(state=state, after=after, limit=limit)
        return DeadLettersOut.model_validate({"subsystem": str(me), **page.as_dict()})

    @router.get("/{seq}", responses=one, operation_id="show_dead_letter")
    def show_dead_letter(seq: Seq, *, payload: bool = False) -> DeadLetterOut:
        """One dead letter: its header as sent, code, reason, and what was done with it; its
        payload with ``payload=true``, unless encrypted."""
        return DeadLetterOut.of(desk.show(seq, payload=payload))

    @router.post("/{seq}/resend", responses=one, operation_id="resend_dead_letter")
    def resend_dead_letter(seq: Seq, body: ActionIn) -> DeadLetterOut:
        """Give a message whose handler failed to the handler again (after a fix). Anything
        else is refused with ``not-resendable``: only its sender can send a new message."""
        return DeadLetterOut.of(desk.resend(seq, actor=body.actor, reason=body.reason))

    @router.post("/{seq}/discard", responses=one, operation_id="discard_dead_letter")
    def discard_dead_letter(seq: Seq, body: ActionIn) -> DeadLetterOut:
        """Discard a waiting dead letter, saying why."""
        return DeadLetterOut.of(desk.discard(seq, actor=body.actor, reason=body.reason))

    return router


__all__ = ["dead_letter_router"]
