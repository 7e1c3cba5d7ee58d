"""``tabadul user``: register people, change their roles, and read who is who.

Only operators register people and change roles. The very first user of an empty database
registers alone (no actor) and must be an operator; ``user add`` is also the one command that
creates the governance database when it does not exist yet.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from governance import Role, User
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
    print_fields,
    print_ok,
)
from tabadul.cli._output import usage_error

user_app = typer.Typer(help="People: their agency and their roles.", no_args_is_help=True)

UserId = Annotated[str, typer.Argument(metavar="USER_ID", help="The person's user id.")]
Roles = Annotated[
    list[Role] | None, typer.Option("--role", help="A role; repeat the option for several.")
]


def _described(user: User) -> str:
    roles = ", ".join(sorted(user.roles)) or "no role"
    return escape(f"{user.user_id} ({user.name}, {user.agency}: {roles})")


@user_app.command("add")
def add(
    user_id: UserId,
    name: Annotated[str, typer.Option("--name", help="Full name, in any script.")],
    agency: Annotated[str, typer.Option("--agency", help="Agency code in capitals, e.g. DOUANE.")],
    role: Roles = None,
    actor: Actor = None,
    reason: Reason = "",
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Register a person with their agency and roles (operators only).

    Without an actor, only the first user of an empty database may register, and must be
    an operator; the database is created if needed.
    """
    with governance(db, schema, as_json=as_json, create=True) as services:
        user = services.workflow.register_user(
            actor, user_id, name=name, agency=agency, roles=role or [], reason=reason
        )
    done(as_json, {"user": user.as_dict()}, f"[green]registered[/] {_described(user)}")


@user_app.command("roles")
def roles(
    user_id: UserId,
    reason: Reason,
    role: Roles = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Take every role away (instead of --role).")
    ] = False,
    actor: Actor = None,
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Replace a person's roles (operators only).

    The new roles are the --role options given; --clear takes every role away.
    """
    if bool(role) == clear:
        usage_error("roles", "give the new roles with --role, or --clear for none", as_json=as_json)
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        user = services.workflow.set_roles(who, user_id, role or [], reason=reason)
    done(as_json, {"user": user.as_dict()}, f"[green]roles set[/]: {_described(user)}")


@user_app.command("list")
def list_users(
    agency: Annotated[str | None, typer.Option("--agency", help="Only this agency's.")] = None,
    role: Annotated[Role | None, typer.Option("--role", help="Only who holds this role.")] = None,
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """List registered people, by user id."""
    with governance(db, schema, as_json=as_json) as services:
        found = services.workflow.users(agency=agency, role=role)
    listed(
        as_json,
        {"users": [u.as_dict() for u in found]},
        "users",
        ("user", "name", "agency", "roles"),
        ((u.user_id, u.name, u.agency, u.roles) for u in found),
        empty="no user matches",
    )


@user_app.command("show")
def show(user_id: UserId, db: Db = None, schema: DbSchema = None, as_json: Json = False) -> None:
    """Show one person: name, agency and roles."""
    with governance(db, schema, as_json=as_json) as services:
        user = services.workflow.user(user_id)
    if as_json:
        print_ok({"user": user.as_dict()})
        return
    print_fields(
        f"user {user.user_id}",
        (("name", user.name), ("agency", user.agency), ("roles", user.roles or "no role")),
    )
