"""``tabadul risk``: train a risk model on CSV files, score declarations, show a model.

The contract (docs/risk.md)::

    tabadul risk train FILE.csv [FILE.csv ...] --label COL --id COL [--time COL]
                       [--exclude COL ...] --model DIR [--json]
    tabadul risk score FILE.csv --model DIR --json
    tabadul risk retrain [FILE.csv ...] --model DIR [--json]

``score --json`` prints one JSON list, one object per row in the file's order:
``{"id", "score" (0..1), "flagged", "lane" (green|yellow|red), "reasons": [{"feature",
"contribution", "labels"}]}``. Bad input (no label column, an empty file, columns the model
does not know or lacks, text in a numeric column, a tampered model folder) is one coded line
(``{"ok": false, "error": ...}`` with ``--json``) and exit 2, never a traceback.

risk/ (pandas, LightGBM) is imported by the commands themselves, so that the rest of the
CLI starts without it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tabadul.cli._output import console, err_console, print_json, reporting

if TYPE_CHECKING:
    from risk import Stored

risk_app = typer.Typer(
    help="Risk scoring of declarations: train, score, show, retrain.", no_args_is_help=True
)

ModelOption = Annotated[Path, typer.Option("--model", help="The model folder.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _risk_errors(*, as_json: bool) -> AbstractContextManager[None]:
    """:func:`reporting`, with risk/'s errors (imported here, not at start-up)."""
    from risk import RiskError

    return reporting(as_json=as_json, also=(RiskError,))


@contextmanager
def _steps(title: str, *, shown: bool) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr naming the current step (on a terminal, without --json)."""
    if not shown:
        yield lambda _step: None
        return
    with err_console.status(title) as status:
        yield lambda step: status.update(f"{title}: {step}")


@risk_app.command("train")
def train_command(
    files: Annotated[list[Path], typer.Argument(metavar="FILE.csv...", help="Training rows.")],
    label: Annotated[str, typer.Option("--label", help="The 0/1 column to learn.")],
    id_column: Annotated[str, typer.Option("--id", help="The column naming each row.")],
    model_dir: ModelOption,
    time: Annotated[
        str | None, typer.Option("--time", help="The date column (rows taken in its order).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="A column not to learn from.")
    ] = None,
    categorical: Annotated[
        list[str] | None, typer.Option("--categorical", help="A numeric-looking code column.")
    ] = None,
    budget: Annotated[
        float, typer.Option(help="Share of declarations customs can inspect (red, flagged).")
    ] = 0.2,
    review: Annotated[
        float, typer.Option(help="Share whose documents are checked (yellow).")
    ] = 0.1,
    for_bus: Annotated[
        bool,
        typer.Option(
            "--for-bus",
            help="Learn only from the columns declarations on the bus carry (docs/risk.md), "
            "for the customs risk service.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Train on every column but the label, the id, the time and the excluded (types
    inferred); judge on the latest 20 % of the rows; write a new model version to DIR."""
    with _risk_errors(as_json=as_json):
        from risk import BadOption, ModelStore, infer_layout, read_tables, train
        from risk._declarations import DATE, ID, ITEM_COLUMNS

        shown = not as_json and err_console.is_terminal
        with _steps("training", shown=shown) as step:
            step("reading " + ", ".join(f.name for f in files))
            source = read_tables(files)
            excluded = list(exclude or ())
            if for_bus:
                if id_column != ID or time not in (None, DATE):
                    raise BadOption(
                        f"--for-bus reads declarations by --id {ID!r} and --time {DATE!r}"
                    )
                time = DATE
                excluded += [
                    c for c in source.frame.columns
                    if c not in ITEM_COLUMNS and c != label and c not in excluded
                ]  # fmt: skip
            layout = infer_layout(
                source.frame,
                id_column=id_column,
                label=label,
                time=time,
                exclude=excluded,
                categorical=categorical or (),
            )
            model = train(source.frame, layout, budget=budget, review=review, progress=step)
            stored = ModelStore(model_dir).save(model, training=source.as_training())
    report = _stored(stored, model_dir)
    if as_json:
        print_json({"ok": True, **report})
        return
    _print_model(report)


@risk_app.command("retrain")
def retrain_command(
    model_dir: ModelOption,
    files: Annotated[
        list[Path] | None,
        typer.Argument(metavar="[FILE.csv...]", help="Base rows (the earlier training files)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Train a new version of the risk service's model from FILEs and the inspection results
    it kept; make it current only if it does as well or better than the current one on the
    inspected declarations the current one assessed."""
    with _risk_errors(as_json=as_json):
        from risk import OUTCOMES, ModelStore, Outcomes, read_tables, retrain

        shown = not as_json and err_console.is_terminal
        outcomes = Outcomes(model_dir / OUTCOMES)
        try:
            with _steps("retraining", shown=shown) as step:
                base = read_tables(files) if files else None
                done = retrain(ModelStore(model_dir), outcomes, base, progress=step)
        finally:
            outcomes.close()
    report = done.as_dict()
    if as_json:
        print_json({"ok": True, **report})
        return
    judged = f"on the {done.judged_rows} inspected rows model {done.previous} assessed"
    for name in ("current", "challenger"):
        figures = report[name]
        console.print(
            f"  {name:<10}  AUC {figures['auc']:.3f}  precision top 5 % "
            f"{figures['precision_top5']:.3f}  ({judged})",
            highlight=False,
        )
    if done.replaced:
        console.print(f"version {done.version} is current (replaces {done.previous})")
    else:
        console.print(f"the challenger is worse: version {done.previous} stays current")


@risk_app.command("score")
def score_command(
    file: Annotated[Path, typer.Argument(metavar="FILE.csv", help="Rows to score.")],
    model_dir: ModelOption,
    as_json: JsonOption = False,
) -> None:
    """Score each row of FILE with the current model of DIR: score, lane, top reasons."""
    with _risk_errors(as_json=as_json):
        from risk import ModelStore, read_tables

        stored = ModelStore(model_dir).load()
        assessments = stored.model.score(read_tables([file]).frame)
    if as_json:
        json.dump(assessments, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    table = Table(title=f"{escape(file.name)}: {len(assessments):,} rows, model {stored.version}")
    for column in ("id", "score", "lane", "top reasons"):
        table.add_column(column)
    for a in assessments:
        reasons = "; ".join(
            f"{r['labels']['en']} {r['contribution']:+.2f}" for r in a["reasons"][:3]
        )
        table.add_row(
            escape(str(a["id"])),
            f"{a['score']:.3f}",
            f"[{a['lane']}]{a['lane']}[/]",  # the lanes are rich colour names
            escape(reasons),
        )
    console.print(table)


@risk_app.command("show")
def show_command(model_dir: ModelOption, as_json: JsonOption = False) -> None:
    """The current model of DIR, checked: version, digest, figures, features, data."""
    with _risk_errors(as_json=as_json):
        from risk import ModelStore

        stored = ModelStore(model_dir).load()
    report = _stored(stored, model_dir)
    if as_json:
        print_json({"ok": True, **report})
        return
    _print_model(report)


def _stored(stored: Stored, model_dir: Path) -> dict[str, Any]:
    manifest = stored.manifest
    return {
        "model": str(model_dir),
        "version": stored.version,
        "digest": stored.digest,
        "metrics": manifest["metrics"],
        "lanes": {
            "budget": stored.model.lanes.budget,
            "review": stored.model.lanes.review,
            "red_from": round(stored.model.lanes.red, 6),
            "yellow_from": round(stored.model.lanes.yellow, 6),
        },
        "layout": stored.model.layout.as_dict(),
        "features": list(stored.model.features),
        "training": manifest["training"],
        "libraries": manifest["libraries"],
    }


def _print_model(report: dict[str, Any]) -> None:
    metrics = report["metrics"]
    console.print(
        f"model [bold]{escape(report['model'])}[/] version {report['version']} "
        f"({report['digest']})",
        highlight=False,
    )
    table = Table(title="on the latest 20 % of the rows, never seen while fitting")
    for column in ("AUC", "precision in the top 5 %", "macro-F1 of the flags", "rows", "frauds"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{metrics['auc']:.3f}",
        f"{metrics['precision_top5']:.3f}",
        f"{metrics['macro_f1']:.3f}",
        f"{metrics['holdout_rows']:,}",
        f"{metrics['holdout_frauds']:,}",
    )
    console.print(table)
    lanes = report["lanes"]
    console.print(
        f"lanes: red (flagged) for the top {lanes['budget']:.0%} (score ≥ {lanes['red_from']:.3f}),"
        f" yellow for the next {lanes['review']:.0%}; {len(report['features'])} features",
        highlight=False,
    )


payments_app = typer.Typer(
    help="The treasury's anomaly score of payments: train on a payment history, retrain from "
    "the verdicts of tax.",
    no_args_is_help=True,
)
risk_app.add_typer(payments_app, name="payments")


@payments_app.command("train")
def payments_train_command(
    model_dir: ModelOption,
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="[HISTORY.csv...]",
            help="Payments executed (the columns of the treasury's sample payments); the "
            "sample's fictitious six months when none is given.",
        ),
    ] = None,
    budget: Annotated[
        float, typer.Option(help="Share of payments the analysts can review (flagged).")
    ] = 0.02,
    as_json: JsonOption = False,
) -> None:
    """Keep the payments in DIR's ledger and fit a new anomaly model on the whole ledger
    (less the payments of confirmed alerts); make it current."""
    with _risk_errors(as_json=as_json):
        from connectors.ministries import treasury
        from risk import Payment, read_payments, train_from

        source = None
        if files:
            payments, source = read_payments(files)
        else:
            payments = [Payment.from_payload(p) for p in treasury.payment_history()]
        with _steps("training", shown=not as_json and err_console.is_terminal) as step:
            step(f"{len(payments):,} payments")
            known = treasury.payee_registry().known_since
            stored = train_from(model_dir, payments, known, budget=budget, files=source)
    report = {
        "model": str(model_dir),
        "version": stored.version,
        "digest": stored.digest,
        "threshold": round(stored.model.threshold, 6),
        "budget": stored.model.budget,
        "rows": stored.model.rows,
        "training": stored.manifest["training"],
    }
    if as_json:
        print_json({"ok": True, **report})
        return
    console.print(
        f"payment model {escape(str(model_dir))} version {stored.version} ({stored.digest}): "
        f"fitted on {stored.model.rows:,} payments; flags from score "
        f"{stored.model.threshold:.3f} (the top {stored.model.budget:.0%})",
        highlight=False,
    )


@payments_app.command("retrain")
def payments_retrain_command(model_dir: ModelOption, as_json: JsonOption = False) -> None:
    """Fit a new version on DIR's ledger less the confirmed payments; make it current unless
    it ranks confirmed above dismissed alerts worse than the current version."""
    with _risk_errors(as_json=as_json):
        from risk import retrain_payments
        from tabadul._risk_service import payment_risk

        risk = payment_risk(model_dir)
        try:
            done = retrain_payments(risk)
        finally:
            risk.close()
    if as_json:
        print_json({"ok": True, **done.as_dict()})
        return
    if done.current_auc is not None and done.candidate_auc is not None:
        console.print(
            f"  on {done.judged} judged alerts: AUC current {done.current_auc:.3f}, "
            f"candidate {done.candidate_auc:.3f}",
            highlight=False,
        )
    else:
        console.print(f"  {done.judged} judged alerts, not of both kinds: nothing to compare")
    if done.replaced:
        console.print(
            f"version {done.version} is current (replaces {done.previous}; fitted on "
            f"{done.rows:,} payments, {done.left_out} confirmed left out)"
        )
    else:
        console.print(f"the candidate ranks worse: version {done.previous} stays current")
