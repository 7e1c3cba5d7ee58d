"""The audit log, for operators and auditors: its entries, and whether its chain verifies.

A tampered log is an answer, not a failure: ``GET /audit/verify`` says ``intact: false`` with
the first bad entry and why (as ``tabadul audit verify`` exits 1).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from governance import AuditTampered
from tabadul._access import OVERSIGHT, require_role
from tabadul.api._auth import Caller, ServicesDep
from tabadul.api._models import AuditEntryOut, OptionalQueryText
from tabadul.api._problems import problem_responses

router = APIRouter(prefix="/audit", tags=["audit"], responses=problem_responses(401, 403, 429, 503))


class AuditVerification(BaseModel):
    intact: bool
    count: int | None = Field(description="Entries checked (when intact)")
    head_hash: str | None = Field(description="Hash of the last entry (when intact)")
    last_at: str | None
    first_bad_seq: int | None = Field(description="The first entry found wrong (when not)")
    reason: str | None = Field(description="What is wrong with it (when not intact)")
    kind: str | None = Field(
        default=None, description="changed, unsigned, rollback or split-view (when not intact)"
    )
    log: str | None = Field(default=None, description="The signed head's log (None: unsigned)")
    signed_size: int = Field(default=0, description="Entries the signed head covers")
    witnessed_size: int = Field(
        default=0, description="Entries covered by the cosignatures the database keeps"
    )


@router.get("/entries", summary="Audit entries, the latest last")
def entries(
    services: ServicesDep,
    caller: Caller,
    subject: Annotated[
        OptionalQueryText, Query(description="Only about this, e.g. dataset:births-2026")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="The last N entries")] = 100,
) -> list[AuditEntryOut]:
    require_role(caller, OVERSIGHT, "read_audit", "read the audit log")
    found = services.workflow.audit.entries(subject=subject, limit=limit)
    return [AuditEntryOut.of(entry) for entry in found]


@router.get("/verify", summary="Re-hash the chain, check the tree, its signed and witnessed heads")
def verify(services: ServicesDep, caller: Caller) -> AuditVerification:
    require_role(caller, OVERSIGHT, "verify_audit", "verify the audit log")
    try:
        report = services.workflow.audit.verify()
    except AuditTampered as exc:
        return AuditVerification(
            intact=False,
            count=None,
            head_hash=None,
            last_at=None,
            first_bad_seq=exc.seq,
            reason=exc.reason,
            kind=exc.kind,
        )
    return AuditVerification(
        intact=True,
        count=report.count,
        head_hash=report.head_hash,
        last_at=report.last_at,
        first_bad_seq=None,
        reason=None,
        log=report.log_id,
        signed_size=report.signed_size,
        witnessed_size=report.witnessed.witnessed_size if report.witnessed else 0,
    )


__all__ = ["router"]
