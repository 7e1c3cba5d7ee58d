"""``tabadul dataset``: the inventory and its four-eyes review, step by step.

A steward registers a dataset (in DRAFT), classifies it, and submits a CSV file: the file
is kept by its SHA-256, validated against the dataset's Table Schema (invalid data exits 2
with each error's row and field; nothing is submitted) and screened for personal data.
Each PII finding is resolved (drop, generalise or justify), then an approver of the same
agency who took no part approves or rejects. Every step is in the audit log (``history``).
Publishing and withdrawal are ``tabadul publish`` and ``tabadul opendata``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape

from governance import FREQUENCIES, LANGUAGES, Level, Resolution, Review, State, quality
from opendata import InvalidData
from tabadul._services import Services
from tabadul.cli._common import (
    Actor,
    DataDir,
    Db,
    DbSchema,
    Json,
    Reason,
    byte_progress,
    done,
    governance,
    listed,
    need_actor,
    print_fields,
    print_ok,
    print_table,
    read_bytes,
)
from tabadul.cli._output import console, fail, print_json, usage_error

dataset_app = typer.Typer(
    help="The dataset inventory: register, classify, submit, review.", no_args_is_help=True
)

DatasetId = Annotated[str, typer.Argument(metavar="DATASET", help="The dataset's id.")]


# ---- records as data ----------------------------------------------------------------------


def _localised(**texts: str | None) -> dict[str, str]:
    """The texts given, by language."""
    return {lang: text for lang, text in texts.items() if text is not None}


def _lines(texts: Mapping[str, str]) -> str:
    return "\n".join(f"{lang}: {texts[lang]}" for lang in LANGUAGES if lang in texts)


def _table_schema(path: Path, *, as_json: bool) -> Any:
    """The parsed JSON of a Table Schema file; exits 2 (``bad-schema-file``) when it is not
    JSON. Whether it is a Table Schema is governance's to say."""
    data = read_bytes(path, "Table Schema file", as_json=as_json)
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        usage_error(
            "bad-schema-file",
            f"{path} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            as_json=as_json,
        )
    except UnicodeDecodeError:
        usage_error("bad-schema-file", f"{path} is not UTF-8 text", as_json=as_json)


def _latest_review(services: Services, dataset_id: str, *, as_json: bool) -> Review:
    """The dataset's latest review; exits 2 (``no-review``) if it was never submitted."""
    review = services.workflow.review(dataset_id)
    if review is None:
        usage_error(
            "no-review",
            f"dataset {dataset_id} was never submitted for review "
            f"(tabadul dataset submit {dataset_id} FILE)",
            as_json=as_json,
        )
    return review


# ---- the inventory --------------------------------------------------------------------


@dataset_app.command("register")
def register(
    dataset_id: DatasetId,
    source: Annotated[str, typer.Option("--source", help="Where the data comes from.")],
    schema_file: Annotated[
        Path, typer.Option("--schema-file", help="The data's Table Schema (a JSON file).")
    ],
    licence: Annotated[str, typer.Option("--licence", help="e.g. ODbL-1.0, CC-BY-4.0.")],
    frequency: Annotated[
        str,
        typer.Option("--frequency", help=f"How often it is updated: {', '.join(FREQUENCIES)}."),
    ],
    title_fr: Annotated[str | None, typer.Option("--title-fr", help="Title in French.")] = None,
    title_ar: Annotated[str | None, typer.Option("--title-ar", help="Title in Arabic.")] = None,
    title_en: Annotated[str | None, typer.Option("--title-en", help="Title in English.")] = None,
    description_fr: Annotated[
        str | None, typer.Option("--description-fr", help="Description in French.")
    ] = None,
    description_ar: Annotated[
        str | None, typer.Option("--description-ar", help="Description in Arabic.")
    ] = None,
    description_en: Annotated[
        str | None, typer.Option("--description-en", help="Description in English.")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="A keyword; repeat for several.")
    ] = None,
    steward: Annotated[
        str | None,
        typer.Option("--steward", help="Its steward, of your agency (default: yourself)."),
    ] = None,
    actor: Actor = None,
    reason: Reason = "",
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Register a dataset of your agency, in DRAFT (stewards only).

    Give a title and a description in at least one language (ar, fr, en).
    """
    who = need_actor(actor, as_json=as_json)
    table_schema = _table_schema(schema_file, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        ds = services.workflow.register_dataset(
            who,
            dataset_id,
            title=_localised(fr=title_fr, ar=title_ar, en=title_en),
            description=_localised(fr=description_fr, ar=description_ar, en=description_en),
            source=source,
            table_schema=table_schema,
            licence=licence,
            update_frequency=frequency,
            tags=tag or [],
            steward=steward,
            reason=reason,
        )
    done(
        as_json,
        {"dataset": ds.as_dict()},
        f"[green]registered[/] {escape(ds.dataset_id)} ({ds.state}), owned by "
        f"{escape(ds.owner_agency)}, steward {escape(ds.steward)}",
    )


@dataset_app.command("list")
def list_datasets(
    agency: Annotated[str | None, typer.Option("--agency", help="Only this agency's.")] = None,
    state: Annotated[State | None, typer.Option("--state", help="Only in this state.")] = None,
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """List datasets, by id, with their state and classification."""
    with governance(db, schema, as_json=as_json) as services:
        found = services.workflow.datasets(agency=agency, state=state)
    listed(
        as_json,
        {"datasets": [ds.as_dict() for ds in found]},
        "datasets",
        ("dataset", "title", "agency", "steward", "state", "classification"),
        (
            (
                ds.dataset_id,
                _lines(ds.title),
                ds.owner_agency,
                ds.steward,
                ds.state,
                ds.classification.level if ds.classification else None,
            )
            for ds in found
        ),
        empty="no dataset matches",
    )


@dataset_app.command("quality")
def quality_command(
    dataset_id: DatasetId, db: Db = None, schema: DbSchema = None, as_json: Json = False
) -> None:
    """Show a dataset's metadata quality: each criterion met or not with why, and the score."""
    with governance(db, schema, as_json=as_json) as services:
        report = quality(services.workflow.dataset(dataset_id))
    listed(
        as_json,
        report.as_dict(),
        f"dataset {dataset_id}: quality {report.score} / 100",
        ("criterion", "met", "why"),
        ((c.name, "yes" if c.met else "NO", c.why) for c in report.criteria),
        empty="no criteria",
    )


@dataset_app.command("show")
def show(
    dataset_id: DatasetId, db: Db = None, schema: DbSchema = None, as_json: Json = False
) -> None:
    """Show one dataset: its description, schema, classification, state and latest review."""
    with governance(db, schema, as_json=as_json) as services:
        ds = services.workflow.dataset(dataset_id)
        review = services.workflow.review(dataset_id)
    if as_json:
        print_ok({"dataset": ds.as_dict(), "review": None if review is None else review.as_dict()})
        return
    c = ds.classification
    fields = [f"{f['name']} ({f.get('type', 'any')})" for f in ds.table_schema["fields"]]
    print_fields(
        f"dataset {ds.dataset_id}",
        (
            ("title", _lines(ds.title)),
            ("description", _lines(ds.description)),
            ("state", ds.state),
            ("agency", ds.owner_agency),
            ("steward", ds.steward),
            ("source", ds.source),
            ("fields", fields),
            ("licence", ds.licence),
            ("frequency", ds.update_frequency),
            ("tags", ds.tags),
            ("classification", c and f"{c.level} by {c.classified_by}: {c.justification}"),
            ("personal data", c and ("yes" if c.personal_data else "no")),
            ("legal basis", c and c.legal_basis),
            ("submitted sha256", ds.content_sha256),
            ("published", ds.publication_reference),
            ("review", review and _review_line(review)),
            ("updated", ds.updated_at),
        ),
    )


def _review_line(review: Review) -> str:
    open_findings = len(review.unresolved)
    return (
        f"#{review.review_id} {review.decision}, submitted by {review.submitted_by} at "
        f"{review.submitted_at}, {len(review.findings)} PII finding(s), {open_findings} open"
    )


# ---- the workflow ---------------------------------------------------------------------


@dataset_app.command("classify")
def classify(
    dataset_id: DatasetId,
    level: Annotated[Level, typer.Option("--level", help="Classification level.")],
    personal_data: Annotated[
        bool,
        typer.Option("--personal-data/--no-personal-data", help="Whether it holds personal data."),
    ],
    legal_basis: Annotated[
        str, typer.Option("--legal-basis", help="The law that allows keeping or opening it.")
    ],
    justification: Annotated[
        str, typer.Option("--justification", help="Why this level (kept in the audit log).")
    ],
    actor: Actor = None,
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Classify a dataset of your agency (stewards).

    It may be classified again until it is submitted. Only PUBLIC data without personal
    data can be submitted for publication.
    """
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        ds = services.workflow.classify(
            who,
            dataset_id,
            level=level,
            personal_data=personal_data,
            legal_basis=legal_basis,
            justification=justification,
        )
    personal = "with personal data" if personal_data else "no personal data"
    done(
        as_json,
        {"dataset": ds.as_dict()},
        f"[green]classified[/] {escape(ds.dataset_id)} {level}, {personal} ({ds.state})",
    )


@dataset_app.command("submit")
def submit(
    dataset_id: DatasetId,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The CSV file (UTF-8, header).")],
    actor: Actor = None,
    reason: Reason = "",
    data_dir: DataDir = None,
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Submit a CSV file for review (stewards): store, validate, screen.

    FILE is stored by its SHA-256, validated against the dataset's Table Schema and
    screened for personal data. Invalid data exits 2 with each error's row and field, and
    nothing is submitted; each PII finding must then be resolved before approval.
    """
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json, data_dir=data_dir) as services:
        try:
            with byte_progress(
                f"storing {file.name}", f"validating and screening {file.name}", enabled=not as_json
            ) as progress:
                submission = services.opendata.submit(
                    who, dataset_id, file, reason=reason, progress=progress
                )
        except InvalidData as exc:
            _refuse_invalid(exc, as_json=as_json)
    review = submission.review
    if as_json:
        print_ok({**submission.as_dict(), "review": review.as_dict()})
        return
    _print_pii(submission.pii.as_dict())
    _print_validation(submission.validation.as_dict())
    console.print(
        f"[green]submitted[/] {escape(dataset_id)} for review #{review.review_id} "
        f"(sha256 {review.content_sha256[:12]}…): {_to_resolve(review)}",
        highlight=False,
    )


def _refuse_invalid(exc: InvalidData, *, as_json: bool) -> NoReturn:
    """Print every validation error (row, field, message) and exit 2."""
    if as_json:
        print_json({"ok": False, "error": {**exc.as_dict(), "validation": exc.report.as_dict()}})
        raise typer.Exit(2)
    _print_validation(exc.report.as_dict())
    fail(exc)


def _to_resolve(review: Review) -> str:
    if not review.unresolved:
        return "nothing to resolve, ready for an approver"
    return escape(
        f"{len(review.unresolved)} PII finding(s) to resolve before approval: "
        + ", ".join(review.unresolved)
    )


def _print_pii(pii: Mapping[str, Any]) -> None:
    """The PII screening report (as stored with the review): one row per finding."""
    if not pii:
        console.print("no PII screening report was kept with this review")
        return
    findings = pii.get("findings", [])
    scanned = f"{pii.get('rows_scanned', 0):,} rows screened"
    if not findings:
        console.print(f"[green]no PII found[/] ({scanned})", highlight=False)
        return
    print_table(
        f"PII: {len(findings)} finding(s), {scanned}",
        ("finding", "severity", "share", "cells", "rows"),
        (
            (
                f["id"],
                f["severity"],
                f"{f['share']:.1%}" if f["source"] == "values" else "header",
                f["matches"],
                f["rows"],
            )
            for f in findings
        ),
        empty="",
    )


def _print_validation(validation: Mapping[str, Any]) -> None:
    """The Frictionless report: its verdict, and each error with its row and field."""
    if not validation:
        console.print("no validation report was kept with this review")
        return
    rows = validation.get("rows", 0)
    if validation.get("valid"):
        console.print(f"[green]valid[/]: {rows:,} rows match the Table Schema", highlight=False)
        return
    errors = validation.get("errors", [])
    print_table(
        f"invalid: {len(errors)} error(s) in {rows:,} rows",
        ("row", "field", "error", "message"),
        ((e["row"], e["field"], e["code"], e["message"]) for e in errors),
        empty="",
    )


@dataset_app.command("findings")
def findings(
    dataset_id: DatasetId, db: Db = None, schema: DbSchema = None, as_json: Json = False
) -> None:
    """List the PII findings of the latest review and how each was resolved."""
    with governance(db, schema, as_json=as_json) as services:
        review = _latest_review(services, dataset_id, as_json=as_json)
    screened = {f["id"]: f for f in review.reports.get("pii", {}).get("findings", [])}
    listed(
        as_json,
        {
            "review_id": review.review_id,
            "findings": [
                {**screened.get(f.finding_id, {}), **finding}
                for f, finding in zip(review.findings, review.as_dict()["findings"], strict=True)
            ],
        },
        f"PII findings of {dataset_id}, review #{review.review_id} ({review.decision})",
        ("finding", "severity", "cells", "rows", "resolution", "by", "reason"),
        (
            (
                f.finding_id,
                screened.get(f.finding_id, {}).get("severity"),
                screened.get(f.finding_id, {}).get("matches"),
                screened.get(f.finding_id, {}).get("rows"),
                f.resolution or "open",
                f.resolved_by,
                f.reason,
            )
            for f in review.findings
        ),
        empty=f"review #{review.review_id} of {dataset_id} has no PII finding",
    )


@dataset_app.command("resolve")
def resolve(
    dataset_id: DatasetId,
    finding_id: Annotated[
        str, typer.Argument(metavar="FINDING", help="The finding's id (column:detector).")
    ],
    resolution: Annotated[Resolution, typer.Option("--resolution", help="What was done.")],
    reason: Reason,
    actor: Actor = None,
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Resolve one PII finding of the open review (stewards).

    The column was dropped or generalised, or keeping it is justified. Whoever resolves a
    finding may not approve the dataset.
    """
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        review = services.workflow.resolve_finding(
            who, dataset_id, finding_id, resolution=resolution, reason=reason
        )
    done(
        as_json,
        {"review": review.as_dict()},
        f"[green]resolved[/] {escape(finding_id)} ({resolution}): {_to_resolve(review)}",
    )


@dataset_app.command("approve")
def approve(
    dataset_id: DatasetId,
    actor: Actor = None,
    reason: Reason = "",
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Approve the reviewed bytes for publication (approvers, four eyes).

    Only an approver of the dataset's agency who neither classified it, submitted it nor
    resolved one of its findings may approve, once every finding is resolved.
    """
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        review = services.workflow.approve(who, dataset_id, reason=reason)
    done(
        as_json,
        {"review": review.as_dict()},
        f"[green]approved[/] {escape(dataset_id)}, review #{review.review_id} "
        f"(sha256 {review.content_sha256[:12]}…): ready to publish",
    )


@dataset_app.command("reject")
def reject(
    dataset_id: DatasetId,
    reason: Reason,
    actor: Actor = None,
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Send the dataset back to its steward (approvers of its agency).

    `tabadul dataset reopen` then takes it back to DRAFT.
    """
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        review = services.workflow.reject(who, dataset_id, reason=reason)
    done(
        as_json,
        {"review": review.as_dict()},
        f"[yellow]rejected[/] {escape(dataset_id)}, review #{review.review_id}: {escape(reason)}",
    )


@dataset_app.command("reopen")
def reopen(
    dataset_id: DatasetId,
    reason: Reason,
    actor: Actor = None,
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Take a rejected dataset back to DRAFT to rework it (stewards of its agency)."""
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        ds = services.workflow.reopen(who, dataset_id, reason=reason)
    done(
        as_json,
        {"dataset": ds.as_dict()},
        f"[green]reopened[/] {escape(ds.dataset_id)} ({ds.state})",
    )


# ---- what happened --------------------------------------------------------------------


@dataset_app.command("history")
def history(
    dataset_id: DatasetId, db: Db = None, schema: DbSchema = None, as_json: Json = False
) -> None:
    """The dataset's audit entries, oldest first: who did what, when and why."""
    with governance(db, schema, as_json=as_json) as services:
        services.workflow.dataset(dataset_id)  # an unknown dataset is an error, not no history
        entries = services.workflow.history(dataset_id)
    listed(
        as_json,
        {"entries": [e.as_dict() for e in entries]},
        f"history of {dataset_id}",
        ("seq", "at", "actor", "action", "state", "reason", "sha256"),
        (
            (
                e.seq,
                e.at,
                e.actor,
                e.action,
                e.details.get("to"),
                e.reason or None,
                e.content_sha256 and e.content_sha256[:12],
            )
            for e in entries
        ),
        empty=f"no audit entry about {dataset_id}",
    )


@dataset_app.command("reports")
def reports(
    dataset_id: DatasetId, db: Db = None, schema: DbSchema = None, as_json: Json = False
) -> None:
    """The checks' reports kept with the latest review: PII screening and validation."""
    with governance(db, schema, as_json=as_json) as services:
        review = _latest_review(services, dataset_id, as_json=as_json)
    if as_json:
        print_ok({"review_id": review.review_id, "reports": dict(review.reports)})
        return
    console.print(escape(f"{dataset_id}, review {_review_line(review)}"), highlight=False)
    _print_pii(review.reports.get("pii", {}))
    _print_validation(review.reports.get("validation", {}))
