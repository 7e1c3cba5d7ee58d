"""``tabadul dead-letter list|show|resend|discard``: what an agency's connector refused or could
not handle, read from its database after taking in what waits in its dead-letter queue (the
connector may be running). A message whose handler failed goes back to the handler after a fix
(``resend``); anything else only its sender can make right, with a new message: discard it,
saying why. Each action is recorded with its actor and reason."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape

from connectors import (
    ConnectorError,
    DeadLetterDesk,
    DeadLetterView,
    UnknownDeadLetter,
    dead_letter_desk,
)
from connectors._config import load_config
from tabadul.cli._common import (
    Actor,
    Json,
    done,
    listed,
    need_actor,
    print_fields,
    print_ok,
    print_table,
)
from tabadul.cli._output import console, err_console, not_found, reporting

dead_letter_app = typer.Typer(
    help="The dead letters of a connector: list, show, resend after a fix, discard.",
    no_args_is_help=True,
)

Config = Annotated[Path, typer.Option("--config", "-c", help="The connector's TOML configuration.")]
Seq = Annotated[int, typer.Argument(metavar="N", help="The dead letter's number.", min=1)]


@contextmanager
def _desk(config: Path, *, as_json: bool) -> Iterator[DeadLetterDesk]:
    with reporting(as_json=as_json, also=(ConnectorError,)):
        try:
            with dead_letter_desk(load_config(config)) as desk:
                yield desk
        except UnknownDeadLetter as exc:
            not_found(exc.code, exc.message, as_json=as_json)


@dead_letter_app.command("list")
def list_dead_letters(
    config: Config,
    state: Annotated[
        Literal["waiting", "resent", "discarded"] | None,
        typer.Option("--state", help="Only those in this state."),
    ] = None,
    after: Annotated[int, typer.Option("--after", help="Those numbered after N.", min=0)] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    as_json: Json = False,
) -> None:
    """List the dead letters, oldest first."""
    with _desk(config, as_json=as_json) as desk:
        page = desk.list(state=state, after=after, limit=limit)
    if page.queue_error and not as_json:
        err_console.print(
            f"[yellow]the dead-letter queue was not read[/]: {escape(page.queue_error)}; "
            "what was kept before is listed",
            highlight=False,
        )
    listed(
        as_json,
        page.as_dict(),
        "dead letters",
        ("n", "state", "code", "type", "sender", "arrived", "resendable"),
        (_row(v.summary()) for v in page.letters),
        empty="no dead letters",
    )
    if page.next_after is not None and not as_json:
        console.print(f"more: --after {page.next_after}", highlight=False)


def _row(summary: dict[str, object]) -> tuple[object, ...]:
    names = ("seq", "state", "code", "type", "sender", "arrived")
    return (*(summary[n] for n in names), "yes" if summary["resendable"] else "no")


@dead_letter_app.command("show")
def show(
    seq: Seq,
    config: Config,
    payload: Annotated[
        bool, typer.Option("--payload", help="Show the payload too (never an encrypted one).")
    ] = False,
    as_json: Json = False,
) -> None:
    """Show dead letter N: its header as sent, code, reason, what was done with it."""
    with _desk(config, as_json=as_json) as desk:
        view = desk.show(seq, payload=payload)
    if as_json:
        print_ok(view.as_dict())
        return
    _print(view, payload=payload)


@dead_letter_app.command("resend")
def resend(
    seq: Seq,
    config: Config,
    actor: Actor = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "",
    as_json: Json = False,
) -> None:
    """Give the message of dead letter N to its handler again, once the handler is fixed."""
    who = need_actor(actor, as_json=as_json)
    with _desk(config, as_json=as_json) as desk:
        view = desk.resend(seq, actor=who, reason=reason)
    done(
        as_json,
        view.as_dict(),
        f"dead letter {seq} resent: message {escape(view.message_id)} goes to its handler again",
    )


@dead_letter_app.command("discard")
def discard(
    seq: Seq,
    config: Config,
    reason: Annotated[str, typer.Option("--reason", help="Why (required, recorded).")],
    actor: Actor = None,
    as_json: Json = False,
) -> None:
    """Discard dead letter N, saying why."""
    who = need_actor(actor, as_json=as_json)
    with _desk(config, as_json=as_json) as desk:
        view = desk.discard(seq, actor=who, reason=reason)
    done(as_json, view.as_dict(), f"dead letter {seq} discarded")


def _print(view: DeadLetterView, *, payload: bool) -> None:
    header = view.header or {}
    fields: list[tuple[str, object]] = [
        ("message", view.message_id),
        ("state", view.state),
        ("code", view.code),
        ("reason", view.reason),
        ("arrived", view.arrived),
        ("size", f"{view.size} bytes"),
        ("resendable", "yes" if view.resendable else "no"),
    ]
    if view.unreadable:
        fields.append(("unreadable", view.unreadable))
    fields += [(f"header.{k}", v) for k, v in header.items()]
    if payload:
        shown = view.payload_note or view.payload
        fields.append(("payload", shown))
    print_fields(f"dead letter {view.seq}", fields)
    print_table(
        "actions",
        ("action", "actor", "reason", "at"),
        ((a.action, a.actor, a.reason, a.at) for a in view.actions),
        empty="nothing done with it yet",
    )
