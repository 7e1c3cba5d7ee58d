"""Who consulted a data subject's records (for a citizen portal, or the data-protection
officer): ``GET /v1/subjects/{subject_id}/accesses``, for operators and data-protection
officers. The identifier is hashed with the deployment's key before any holder is asked; it
is never stored."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from governance import Role
from tabadul._access import require_role
from tabadul._subjects import MAX_SUBJECT_ID, consultations
from tabadul.api._auth import Caller, ServicesDep
from tabadul.api._problems import problem_responses

router = APIRouter(tags=["data subjects"], responses=problem_responses(401, 403, 429, 503))
READERS = frozenset({Role.OPERATOR, Role.DPO})


class LegalBasisOut(BaseModel):
    text: str
    reference: str


class AccessOut(BaseModel):
    """One consultation: when, which holder answered whom, for what, on which basis."""

    at: str
    holder: str = Field(description="The subsystem holding the record")
    requester: str = Field(description="The subsystem that asked")
    message_type: str
    purpose: str
    legal_basis: LegalBasisOut
    message_id: str = Field(description="The request's id (its evidence is in both logs)")
    outcome: str = Field(description="answered, or the refusal's code")


class UnavailableOut(BaseModel):
    source: str
    code: str
    message: str


class AccessesOut(BaseModel):
    accesses: list[AccessOut]
    unavailable: list[UnavailableOut] = Field(description="Holders that could not be read")


@router.get(
    "/v1/subjects/{subject_id}/accesses",
    summary="Who consulted a data subject's records, and why",
    operation_id="list_subject_accesses",
)
def subject_accesses(
    subject_id: Annotated[str, Path(min_length=1, max_length=MAX_SUBJECT_ID)],
    services: ServicesDep,
    caller: Caller,
) -> AccessesOut:
    require_role(caller, READERS, "read_subject_accesses", "read who consulted a person's data")
    found = consultations(subject_id, services.settings.access_logs)
    return AccessesOut.model_validate(found.as_dict())
