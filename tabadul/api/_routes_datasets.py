"""The dataset inventory and its publication workflow.

Reads (list, detail with the current review and its PII and validation reports, history) are
for the owning agency's people, operators and auditors; to anyone else, every operation on
another agency's dataset answers what it answers for a missing one (404 unknown-dataset,
checked before anything else: :func:`tabadul._access.readable_dataset`). Each change is one
governance operation, which checks role, agency, state and four eyes. Submitting, publishing and
withdrawing go through :class:`opendata.OpenData`, the one code path for them: a submitted
CSV (multipart upload) is streamed to a temporary folder of its own
(:func:`tabadul._uploads.received_upload`, which removes it however the request ends) while
it is stored, screened, validated and submitted, and is read only from a caller the workflow
would let submit; publishing sends exactly the approved bytes to the portal; withdrawing
purges the package and records why.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from governance import Dataset, Level, Resolution, State, check_action, check_publishable, quality
from tabadul._access import OVERSIGHT, readable_dataset, require_agency
from tabadul._uploads import received_upload
from tabadul.api._auth import Caller, ServicesDep
from tabadul.api._models import (
    AuditEntryOut,
    Body,
    OptionalQueryState,
    OptionalQueryText,
    ReasonIn,
    RequiredReasonIn,
)
from tabadul.api._problems import problem_responses

router = APIRouter(
    prefix="/datasets",
    tags=["datasets"],
    responses=problem_responses(400, 401, 403, 413, 429, 503),
)
_NOT_FOUND = problem_responses(404)
_CHANGE = problem_responses(409)
_PORTAL = problem_responses(409, 502)

# governance.LANGUAGES and governance.FREQUENCIES, as types (a test keeps them equal)
Language = Literal["ar", "fr", "en"]
Frequency = Literal[
    "continuous", "daily", "weekly", "monthly", "quarterly", "yearly", "irregular", "never"
]
# The body of POST /datasets/{id}/submit, which the route reads itself (streaming the file)
_UPLOAD_FORM: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "The CSV"},
                    "reason": {"type": "string", "description": "Why, for the audit log"},
                },
                "additionalProperties": False,
            }
        }
    },
}


# ---- bodies ------------------------------------------------------------------------------


class DatasetIn(Body):
    dataset_id: str = Field(min_length=1, description="2-100 of a-z 0-9 - _ (a CKAN name)")
    title: dict[Language, str] = Field(min_length=1)
    description: dict[Language, str] = Field(min_length=1)
    source: str = Field(min_length=1, description="Where the data comes from (file, table)")
    table_schema: dict[str, JsonValue] = Field(
        description="A Frictionless Table Schema: an object with a list of named fields"
    )
    licence: str = Field(min_length=1)
    update_frequency: Frequency
    tags: list[str] = Field(default_factory=list)
    steward: str | None = Field(default=None, description="A steward of your agency (you)")
    reason: str = ""


class ClassificationIn(Body):
    level: Level
    personal_data: bool
    legal_basis: str = Field(min_length=1)
    justification: str = Field(min_length=1)


class ResolutionIn(Body):
    finding_id: str = Field(min_length=1, description="column:detector, from the PII report")
    resolution: Resolution
    reason: str = Field(min_length=1)


class ClassificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    level: Level
    personal_data: bool
    legal_basis: str
    justification: str
    classified_by: str
    publishable: bool = Field(description="PUBLIC without personal data: may be opened")


class DatasetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    dataset_id: str
    owner_agency: str
    steward: str
    title: dict[str, str]
    description: dict[str, str]
    source: str
    table_schema: dict[str, JsonValue]
    licence: str
    update_frequency: str
    tags: list[str]
    state: State
    classification: ClassificationOut | None
    content_sha256: str | None = Field(description="The bytes last submitted")
    published_sha256: str | None = Field(description="The bytes on the portal")
    publication_reference: str | None
    created_at: str
    updated_at: str


class FindingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    finding_id: str
    resolution: Resolution | None
    reason: str | None
    resolved_by: str | None
    resolved_at: str | None


class ReviewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    review_id: int
    dataset_id: str
    content_sha256: str
    submitted_by: str
    submitted_at: str
    decision: str = Field(description="open, approved, rejected or superseded")
    decided_by: str | None
    decided_at: str | None
    reason: str | None
    findings: list[FindingOut]
    unresolved: list[str] = Field(description="Findings that still block approval")
    reports: dict[str, JsonValue] = Field(
        description="What the checks found: {pii: ..., validation: ...}"
    )


class DatasetDetail(DatasetOut):
    review: ReviewOut | None = Field(description="The latest review, if ever submitted")


class SubmissionOut(BaseModel):
    dataset_id: str
    review_id: int
    sha256: str
    findings: list[str] = Field(description="PII finding ids to resolve before approval")
    pii: dict[str, JsonValue]
    validation: dict[str, JsonValue]


class PublishOut(BaseModel):
    status: Literal["created", "updated", "unchanged"]
    package_id: str
    name: str
    version: int
    sha256: str


class WithdrawOut(BaseModel):
    dataset_id: str
    package_id: str
    name: str
    version: int
    reason: str


# ---- helpers -----------------------------------------------------------------------------


def _readable(dataset_id: str, services: ServicesDep, caller: Caller) -> Dataset:
    """The dataset of the path, if ``caller`` may read it; else as unknown as a missing one."""
    return readable_dataset(services.workflow, caller, dataset_id)


ReadableDataset = Annotated[Dataset, Depends(_readable)]
# Every operation on one dataset: its dependency runs before any other work (the body of an
# upload included), and FastAPI hands the routes asking for ReadableDataset the same result.
one = APIRouter(prefix="/{dataset_id}", dependencies=[Depends(_readable)], responses=_NOT_FOUND)


# ---- reads -------------------------------------------------------------------------------


@router.get("", summary="Datasets (yours by default; operators and auditors: all)")
def list_datasets(
    services: ServicesDep,
    caller: Caller,
    state: OptionalQueryState = None,
    agency: Annotated[OptionalQueryText, Query(description="Owner agency")] = None,
) -> list[DatasetOut]:
    if not caller.roles & OVERSIGHT:
        agency = agency or caller.agency
        require_agency(caller, agency, "list_datasets")
    found = services.workflow.datasets(agency=agency, state=state)
    return [DatasetOut.model_validate(ds) for ds in found]


@one.get("", summary="A dataset and its latest review")
def get_dataset(dataset: ReadableDataset, services: ServicesDep) -> DatasetDetail:
    review = services.workflow.review(dataset.dataset_id)
    return DatasetDetail(
        **DatasetOut.model_validate(dataset).model_dump(),
        review=ReviewOut.model_validate(review) if review is not None else None,
    )


@one.get("/history", summary="A dataset's audit entries")
def history(dataset: ReadableDataset, services: ServicesDep) -> list[AuditEntryOut]:
    return [AuditEntryOut.of(entry) for entry in services.workflow.history(dataset.dataset_id)]


class CriterionOut(BaseModel):
    name: str
    met: bool
    why: str


class QualityOut(BaseModel):
    """The dataset's metadata quality: each criterion met or not with why, and the share met
    out of 100 (what the console shows and the portal's ``quality_score`` extra holds)."""

    dataset_id: str
    score: int
    criteria: list[CriterionOut]


@one.get("/quality", summary="A dataset's quality score", operation_id="get_dataset_quality")
def dataset_quality(dataset: ReadableDataset) -> QualityOut:
    return QualityOut.model_validate(quality(dataset).as_dict())


# ---- the workflow ------------------------------------------------------------------------


@router.post("", status_code=201, summary="Register a dataset", responses=problem_responses(409))
def register_dataset(body: DatasetIn, services: ServicesDep, caller: Caller) -> DatasetOut:
    registered = services.workflow.register_dataset(
        caller,
        body.dataset_id,
        # Mapping's key type is invariant: Language keys are str keys
        title=cast("dict[str, str]", body.title),
        description=cast("dict[str, str]", body.description),
        source=body.source,
        table_schema=body.table_schema,
        licence=body.licence,
        update_frequency=body.update_frequency,
        tags=body.tags,
        steward=body.steward,
        reason=body.reason,
    )
    return DatasetOut.model_validate(registered)


@one.post("/classify", summary="Classify", responses=_CHANGE)
def classify(
    dataset_id: str, body: ClassificationIn, services: ServicesDep, caller: Caller
) -> DatasetOut:
    classified = services.workflow.classify(
        caller,
        dataset_id,
        level=body.level,
        personal_data=body.personal_data,
        legal_basis=body.legal_basis,
        justification=body.justification,
    )
    return DatasetOut.model_validate(classified)


@one.post(
    "/submit",
    status_code=201,
    summary="Submit a CSV for review (screened for PII, validated)",
    responses=_CHANGE,
    openapi_extra={"requestBody": _UPLOAD_FORM},
)
async def submit(
    request: Request, dataset: ReadableDataset, services: ServicesDep, caller: Caller
) -> SubmissionOut:
    """multipart/form-data: ``file`` (the CSV, at most TABADUL_MAX_UPLOAD_BYTES) and an
    optional ``reason``. A caller the workflow would refuse is answered before the file is
    read."""
    check_action("submit_for_review", caller, dataset)
    check_publishable("submit_for_review", dataset)
    async with received_upload(
        request, services.settings, file_field="file", text_fields={"reason"}
    ) as upload:
        if upload.path is None:
            raise RequestValidationError(
                [{"loc": ("body", "file"), "msg": "a CSV file is required", "type": "missing"}]
            )
        submission = await run_in_threadpool(
            services.opendata.submit,
            caller,
            dataset.dataset_id,
            upload.path,
            reason=upload.fields.get("reason", ""),
        )
    return SubmissionOut.model_validate(submission.as_dict())


@one.post("/resolve", summary="Resolve a PII finding", responses=_CHANGE)
def resolve_finding(
    dataset_id: str, body: ResolutionIn, services: ServicesDep, caller: Caller
) -> ReviewOut:
    review = services.workflow.resolve_finding(
        caller, dataset_id, body.finding_id, resolution=body.resolution, reason=body.reason
    )
    return ReviewOut.model_validate(review)


@one.post("/approve", summary="Approve (four eyes)", responses=_CHANGE)
def approve(dataset_id: str, body: ReasonIn, services: ServicesDep, caller: Caller) -> ReviewOut:
    review = services.workflow.approve(caller, dataset_id, reason=body.reason)
    return ReviewOut.model_validate(review)


@one.post("/reject", summary="Reject (back to the steward)", responses=_CHANGE)
def reject(
    dataset_id: str, body: RequiredReasonIn, services: ServicesDep, caller: Caller
) -> ReviewOut:
    review = services.workflow.reject(caller, dataset_id, reason=body.reason)
    return ReviewOut.model_validate(review)


@one.post("/reopen", summary="Reopen a rejected dataset", responses=_CHANGE)
def reopen(
    dataset_id: str, body: RequiredReasonIn, services: ServicesDep, caller: Caller
) -> DatasetOut:
    return DatasetOut.model_validate(
        services.workflow.reopen(caller, dataset_id, reason=body.reason)
    )


@one.post(
    "/publish",
    summary="Publish the approved bytes to the portal",
    responses=_PORTAL,
)
def publish(dataset_id: str, services: ServicesDep, caller: Caller) -> PublishOut:
    return PublishOut.model_validate(services.opendata.publish(caller, dataset_id).as_dict())


@one.post(
    "/withdraw",
    summary="Withdraw from the portal for good (purge)",
    responses=_PORTAL,
)
def withdraw(
    dataset_id: str, body: RequiredReasonIn, services: ServicesDep, caller: Caller
) -> WithdrawOut:
    result = services.opendata.withdraw(caller, dataset_id, reason=body.reason)
    return WithdrawOut.model_validate(result.as_dict())


router.include_router(one)

__all__ = ["Frequency", "Language", "router"]
