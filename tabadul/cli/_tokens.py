"""``tabadul token``: API tokens for the management API and the console.

People issue and revoke their own tokens, operators anyone's. A token's secret is printed
once, when it is issued; Tabadul keeps only its hash, so a lost secret means a new token.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.markup import escape

from exchange import format_time, utcnow
from governance import DEFAULT_TTL, MAX_TTL, ApiToken
from tabadul.cli._common import (
    Actor,
    Db,
    DbSchema,
    Json,
    Reason,
    done,
    governance,
    listed,
    need_actor,
    print_ok,
)
from tabadul.cli._output import console, err_console, usage_error

token_app = typer.Typer(help="API tokens (the secret is shown once).", no_args_is_help=True)


@token_app.command("issue")
def issue(
    label: Annotated[str, typer.Option("--label", help="What the token is for, e.g. console.")],
    user_id: Annotated[
        str | None,
        typer.Argument(metavar="[USER_ID]", help="Whose token (default: the actor's own)."),
    ] = None,
    days: Annotated[
        int, typer.Option("--days", help=f"Days until it expires (1 to {MAX_TTL.days}).")
    ] = DEFAULT_TTL.days,
    actor: Actor = None,
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Issue an API token and print its secret, once.

    People issue their own tokens, operators anyone's. Store the secret at once: only its
    hash is kept, it cannot be shown again.
    """
    who = need_actor(actor, as_json=as_json)
    if not 1 <= days <= MAX_TTL.days:  # Tokens.issue's rule, before a timedelta can overflow
        usage_error(
            "invalid-input",
            f"--days {days}: a token lives 1 to {MAX_TTL.days} days",
            as_json=as_json,
        )
    with governance(db, schema, as_json=as_json) as services:
        issued = services.tokens.issue(who, user_id or who, label=label, ttl=timedelta(days=days))
    record = issued.record
    if as_json:
        print_ok({"token": record.as_dict(), "secret": issued.token})
        return
    err_console.print(
        escape(
            f"issued token {record.token_id} to {record.user_id} ({record.label}), "
            f"expires {record.expires_at}; the secret below is shown once, store it now:"
        ),
        highlight=False,
    )
    console.print(issued.token, highlight=False, markup=False, soft_wrap=True)


def _status(token: ApiToken, now: str) -> str:
    """``revoked``, ``expired`` or ``active`` (wire timestamps compare as text)."""
    if token.revoked_at is not None:
        return "revoked"
    return "expired" if token.expires_at <= now else "active"


@token_app.command("list")
def list_tokens(
    user_id: Annotated[str | None, typer.Option("--user", help="Only this person's.")] = None,
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """List tokens (never their secrets), oldest first, with whether each still works."""
    with governance(db, schema, as_json=as_json) as services:
        found = services.tokens.tokens(user_id)
    now = format_time(utcnow())
    listed(
        as_json,
        {"tokens": [{**t.as_dict(), "status": _status(t, now)} for t in found]},
        "API tokens",
        ("token", "user", "label", "status", "issued by", "created", "expires", "last used"),
        (
            (
                t.token_id,
                t.user_id,
                t.label,
                _status(t, now),
                t.created_by,
                t.created_at,
                t.expires_at,
                t.last_used_at,
            )
            for t in found
        ),
        empty="no API token",
    )


@token_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(metavar="TOKEN_ID", help="The token's id.")],
    reason: Reason,
    actor: Actor = None,
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Revoke an API token: it stops working at once.

    Its holder or an operator may revoke it; revoking twice changes nothing.
    """
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        record = services.tokens.revoke(who, token_id, reason=reason)
    done(
        as_json,
        {"token": record.as_dict()},
        escape(f"revoked token {record.token_id} of {record.user_id} at {record.revoked_at}"),
    )
