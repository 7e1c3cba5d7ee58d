"""``tabadul dataset derive``: make a publishable file by dropping or generalising personal
columns (or making their formula cells text), record its lineage, and (with ``--submit``) put
it under review, where the derivation resolves the findings its operations remove."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from governance import (
    ColumnOp,
    Drop,
    GeneraliseDateToYear,
    GeneraliseToPrefix,
    GeneraliseToRange,
    InvalidInput,
    NeutraliseFormulas,
    derive_csv,
    record_derivation,
)
from tabadul.cli._common import (
    Actor,
    DataDir,
    Db,
    DbSchema,
    Json,
    Reason,
    governance,
    need_actor,
)
from tabadul.cli._datasets import DatasetId
from tabadul.cli._output import console, print_json

_Columns = Annotated[list[str] | None, typer.Option(help="A column; repeat for several.")]


def _sized(spec: str, what: str) -> tuple[str, int]:
    """``COLUMN:N`` as its column and positive size."""
    column, _, size = spec.rpartition(":")
    if not column or not size.isdigit() or int(size) < 1:
        raise InvalidInput(f"{what} takes COLUMN:N with N a positive whole number, not {spec!r}")
    return column, int(size)


def plan_of(
    drop: list[str],
    year: list[str],
    ranges: list[str],
    prefix: list[str],
    neutralise: list[str],
) -> list[ColumnOp]:
    """The column operations the options ask for, in that order."""
    plan: list[ColumnOp] = [Drop(c) for c in drop]
    plan += [GeneraliseDateToYear(c) for c in year]
    plan += [GeneraliseToRange(*_sized(s, "--range")) for s in ranges]
    plan += [GeneraliseToPrefix(*_sized(s, "--prefix")) for s in prefix]
    plan += [NeutraliseFormulas(c) for c in neutralise]
    if not plan:
        raise InvalidInput("say what to derive: --drop, --year, --range, --prefix or --neutralise")
    return plan


def derive(
    dataset_id: DatasetId,
    source: Annotated[Path, typer.Argument(help="The original CSV file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the result.")],
    reason: Reason,
    drop: _Columns = None,
    year: Annotated[
        list[str] | None, typer.Option(help="A YYYY-MM-DD column cut to its year.")
    ] = None,
    ranges: Annotated[
        list[str] | None,
        typer.Option("--range", help="COLUMN:STEP, an amount cut to a range of that width."),
    ] = None,
    prefix: Annotated[
        list[str] | None, typer.Option(help="COLUMN:N, only the first N characters kept.")
    ] = None,
    neutralise: Annotated[
        list[str] | None,
        typer.Option(help="A column whose formula cells (=, +, -, @) are made text with '."),
    ] = None,
    submit: Annotated[
        bool, typer.Option("--submit", help="Submit the result for review, then record.")
    ] = False,
    actor: Actor = None,
    db: Db = None,
    schema: DbSchema = None,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Write SOURCE without its personal columns (dropped or generalised) or with their formula
    cells made text to OUTPUT, and record the lineage. With --submit the result goes to review
    first, and the derivation resolves the findings its operations remove."""
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json, data_dir=data_dir) as services:
        plan = plan_of(drop or [], year or [], ranges or [], prefix or [], neutralise or [])
        result = derive_csv(source, output, plan, limits=services.settings.table_limits)
        if submit:
            services.opendata.submit(who, dataset_id, output, reason=reason)
        recorded = record_derivation(services.store, who, dataset_id, result, reason=reason)
        review = services.workflow.review(dataset_id)
        unresolved = list(review.unresolved) if review and submit else []
    if as_json:
        print_json(
            {
                "ok": True,
                "derivation": recorded.derivation_id,
                "rows": result.rows,
                "columns": list(result.columns),
                "sha256": result.target_sha256,
                "emptied": result.emptied,
                "resolved": list(recorded.resolved),
                "unresolved": unresolved,
            }
        )
        return
    console.print(
        f"derived {escape(str(output))}: {result.rows} rows, columns "
        f"{escape(', '.join(result.columns))} (SHA-256 {result.target_sha256[:12]}…)",
        highlight=False,
        soft_wrap=True,
    )
    if submit:
        left = ", ".join(unresolved) or "none"
        console.print(
            f"submitted for review; resolved by the derivation: "
            f"{escape(', '.join(recorded.resolved) or 'none')}; still to resolve: {escape(left)}",
            highlight=False,
            soft_wrap=True,
        )
