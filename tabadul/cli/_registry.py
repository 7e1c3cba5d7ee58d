"""``tabadul registry``: the bus registry the signed directory is published from.

Members (``INSTANCE/CLASS/MEMBER``) own subsystems (``.../SUBSYSTEM``); a subsystem holds
certificates issued by the operator's CA, provides, publishes or accepts message types
(services), may send a type to another subsystem (grants) and receive a topic's events
(subscriptions). Only operators change the registry; every change is in the audit log.
``tabadul directory publish`` signs the result for the connectors.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from exchange import cert_from_pem
from governance import (
    RegisteredCertificate,
    ServiceRole,
    grant_dict,
    service_dict,
    subscription_dict,
)
from tabadul._services import Settings
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
    read_bytes,
)
from tabadul.cli._output import usage_error

registry_app = typer.Typer(
    help="The bus registry: members, subsystems, certificates, services, grants.",
    no_args_is_help=True,
)
member_app = typer.Typer(help="Members: ministries and agencies.", no_args_is_help=True)
subsystem_app = typer.Typer(help="Subsystems: what runs a connector.", no_args_is_help=True)
cert_app = typer.Typer(help="Subsystems' certificates.", no_args_is_help=True)
service_app = typer.Typer(help="What subsystems provide, publish or accept.", no_args_is_help=True)
grant_app = typer.Typer(help="Who may send which type to whom.", no_args_is_help=True)
subscription_app = typer.Typer(help="Who receives which topic's events.", no_args_is_help=True)
registry_app.add_typer(member_app, name="member")
registry_app.add_typer(subsystem_app, name="subsystem")
registry_app.add_typer(cert_app, name="cert")
registry_app.add_typer(service_app, name="service")
registry_app.add_typer(grant_app, name="grant")
registry_app.add_typer(subscription_app, name="subscription")

Subsystem = Annotated[
    str, typer.Argument(metavar="SUBSYSTEM", help="INSTANCE/CLASS/MEMBER/SUBSYSTEM.")
]
MessageType = Annotated[str, typer.Argument(metavar="TYPE", help="A registered message type.")]
Serial = Annotated[str, typer.Argument(metavar="SERIAL", help="The certificate's serial, hex.")]
Purpose = Annotated[
    str,
    typer.Option("--purpose", help="What it is for: a code of lower-case letters, digits and '-'."),
]
LegalBasisText = Annotated[
    str, typer.Option("--legal-basis", help="Why it is lawful, in words (required).")
]
LegalReference = Annotated[
    str, typer.Option("--legal-reference", help="Where that is written: an article, a URL.")
]
Expires = Annotated[
    datetime | None,
    typer.Option(
        "--expires",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%z"],
        help="When it ends (a date, UTC midnight, or a time with its zone; default: never).",
    ),
]


def _aware(moment: datetime | None) -> datetime | None:
    """A date given without a zone is UTC midnight."""
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


RoleOption = Annotated[
    ServiceRole,
    typer.Option("--role", help="provides (requests), publishes (events), accepts (messages)."),
]


# ---- members and subsystems ---------------------------------------------------------------


@member_app.command("add")
def member_add(
    member_id: Annotated[str, typer.Argument(metavar="MEMBER", help="INSTANCE/CLASS/MEMBER.")],
    name: Annotated[str, typer.Option("--name", help="Its display name, in any script.")],
    actor: Actor = None,
    reason: Reason = "",
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Register a member (a ministry or agency) of the bus."""
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        member = services.registry.add_member(who, member_id, name=name, reason=reason)
    done(
        as_json,
        {"member": {"member_id": member, "name": name.strip()}},
        f"[green]added[/] member {escape(member)} ({escape(name.strip())})",
    )


@member_app.command("list")
def member_list(db: Db = None, schema: DbSchema = None, as_json: Json = False) -> None:
    """List the members, by id."""
    with governance(db, schema, as_json=as_json) as services:
        members = services.registry.members()
    listed(
        as_json,
        {"members": [{"member_id": k, "name": v} for k, v in members.items()]},
        "bus members",
        ("member", "name"),
        members.items(),
        empty="no member",
    )


@subsystem_app.command("add")
def subsystem_add(
    subsystem_id: Subsystem,
    actor: Actor = None,
    reason: Reason = "",
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Register a subsystem of a registered member."""
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        subsystem = services.registry.add_subsystem(who, subsystem_id, reason=reason)
    done(as_json, {"subsystem": subsystem}, f"[green]added[/] subsystem {escape(subsystem)}")


@subsystem_app.command("list")
def subsystem_list(db: Db = None, schema: DbSchema = None, as_json: Json = False) -> None:
    """List the subsystems with their member."""
    with governance(db, schema, as_json=as_json) as services:
        found = services.registry.subsystems()
    listed(
        as_json,
        {"subsystems": [str(s) for s in found]},
        "bus subsystems",
        ("subsystem", "member"),
        ((s, s.member_id) for s in found),
        empty="no subsystem",
    )


# ---- certificates ---------------------------------------------------------------------


def _moment(text: str, option: str, *, as_json: bool) -> datetime:
    """An ISO 8601 time with its zone; exits 2 (``bad-time``) otherwise."""
    try:
        moment: datetime | None = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        usage_error(
            "bad-time",
            f"{option} must be an ISO 8601 time with its zone, e.g. 2026-12-01T00:00:00Z; "
            f"got {text!r}",
            as_json=as_json,
        )
    return moment


def _ca_pem(ca: Path | None, *, as_json: bool) -> bytes:
    """The CA certificate: --ca, else ca.pem in $TABADUL_CA_DIR; exits 2 without either."""
    if ca is None:
        ca_dir = Settings.from_env().ca_dir
        if ca_dir is None:
            usage_error(
                "no-ca", "give the CA certificate with --ca, or set TABADUL_CA_DIR", as_json=as_json
            )
        ca = ca_dir / "ca.pem"
    return read_bytes(ca, "CA certificate", as_json=as_json)


def _certificate_row(c: RegisteredCertificate) -> tuple[object, ...]:
    status = f"revoked {c.revoked_at}" if c.revoked_at else "valid"
    return (f"{c.serial:x}", c.subsystem, c.usage, c.not_after, c.retire_after, status)


@cert_app.command("register")
def cert_register(
    subsystem_id: Subsystem,
    pem_file: Annotated[Path, typer.Argument(metavar="PEM_FILE", help="The certificate (PEM).")],
    ca: Annotated[
        Path | None,
        typer.Option(
            "--ca",
            help="The CA certificate it must be issued by (default: $TABADUL_CA_DIR/ca.pem).",
            show_default=False,
        ),
    ] = None,
    retire_after: Annotated[
        str | None,
        typer.Option("--retire-after", help="When it stops being used (ISO 8601, with zone)."),
    ] = None,
    actor: Actor = None,
    reason: Reason = "",
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Register a certificate of SUBSYSTEM, checked against the CA.

    It must be issued by the CA, for that subsystem.
    """
    who = need_actor(actor, as_json=as_json)
    retire = (
        None if retire_after is None else _moment(retire_after, "--retire-after", as_json=as_json)
    )
    pem = read_bytes(pem_file, "certificate", as_json=as_json)
    ca_pem = _ca_pem(ca, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        cert = services.registry.register_certificate(
            who,
            subsystem_id,
            pem,
            ca_certificate=cert_from_pem(ca_pem),
            retire_after=retire,
            reason=reason,
        )
    done(
        as_json,
        {"certificate": cert.as_dict()},
        escape(
            f"registered {cert.usage} certificate {cert.serial:x} of {cert.subsystem}, "
            f"valid until {cert.not_after}"
        ),
    )


@cert_app.command("retire")
def cert_retire(
    serial: Serial,
    after: Annotated[
        str, typer.Option("--after", help="When it stops being used (ISO 8601, with zone).")
    ],
    actor: Actor = None,
    reason: Reason = "",
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Set when a certificate stops being used (key rotation): its effective end."""
    who = need_actor(actor, as_json=as_json)
    moment = _moment(after, "--after", as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        cert = services.registry.retire_certificate(who, serial, moment, reason=reason)
    done(
        as_json,
        {"certificate": cert.as_dict()},
        escape(
            f"certificate {cert.serial:x} of {cert.subsystem} retires after {cert.retire_after}"
        ),
    )


@cert_app.command("revoke")
def cert_revoke(
    serial: Serial,
    reason: Reason,
    actor: Actor = None,
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Revoke a registered certificate; the next published directory lists it as revoked."""
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        cert = services.registry.revoke_certificate(who, serial, reason=reason)
    done(
        as_json,
        {"certificate": cert.as_dict()},
        "[yellow]revoked[/] "
        + escape(f"{cert.usage} certificate {cert.serial:x} of {cert.subsystem}"),
    )


@cert_app.command("list")
def cert_list(
    subsystem_id: Annotated[
        str | None, typer.Option("--subsystem", help="Only this subsystem's.")
    ] = None,
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """List registered certificates, by subsystem, oldest first."""
    with governance(db, schema, as_json=as_json) as services:
        found = services.registry.certificates(subsystem_id)
    listed(
        as_json,
        {"certificates": [c.as_dict() for c in found]},
        "bus certificates",
        ("serial", "subsystem", "usage", "not after", "retire after", "status"),
        (_certificate_row(c) for c in found),
        empty="no certificate",
    )


# ---- services, grants, subscriptions --------------------------------------------------


@service_app.command("add")
def service_add(
    subsystem_id: Subsystem,
    message_type: MessageType,
    role: RoleOption = "provides",
    response_type: Annotated[
        str | None,
        typer.Option("--response-type", help="The response type of a provided request type."),
    ] = None,
    actor: Actor = None,
    reason: Reason = "",
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Declare a service of SUBSYSTEM.

    It provides a request type (answered with --response-type), publishes an event type,
    or accepts a message type.
    """
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        service = services.registry.add_service(
            who, subsystem_id, message_type, role=role, response_type=response_type, reason=reason
        )
    done(
        as_json,
        {"service": service_dict(service)},
        escape(f"{service.subsystem} now {role} {message_type}"),
    )


@service_app.command("remove")
def service_remove(
    subsystem_id: Subsystem,
    message_type: MessageType,
    role: RoleOption = "provides",
    actor: Actor = None,
    reason: Reason = "",
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Withdraw a service of SUBSYSTEM."""
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        services.registry.remove_service(who, subsystem_id, message_type, role=role, reason=reason)
    done(
        as_json,
        {"removed": {"subsystem": subsystem_id, "type": message_type, "role": role}},
        escape(f"{subsystem_id} no longer {role} {message_type}"),
    )


@service_app.command("list")
def service_list(db: Db = None, schema: DbSchema = None, as_json: Json = False) -> None:
    """List the services, by subsystem."""
    with governance(db, schema, as_json=as_json) as services:
        found = services.registry.services()
    listed(
        as_json,
        {"services": [service_dict(s) for s in found]},
        "bus services",
        ("subsystem", "role", "type", "response type"),
        ((s.subsystem, s.role, s.message_type, s.response_type) for s in found),
        empty="no service",
    )


Sender = Annotated[str, typer.Argument(metavar="SENDER", help="The sending subsystem.")]
Recipient = Annotated[str, typer.Argument(metavar="RECIPIENT", help="The receiving subsystem.")]


@grant_app.command("add")
def grant_add(
    sender: Sender,
    message_type: MessageType,
    recipient: Recipient,
    purpose: Purpose,
    legal_basis: LegalBasisText,
    legal_reference: LegalReference = "",
    expires: Expires = None,
    actor: Actor = None,
    reason: Reason = "",
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Allow SENDER to send TYPE to RECIPIENT for a purpose, on a legal basis."""
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        grant = services.registry.add_grant(
            who,
            sender,
            message_type,
            recipient,
            purpose=purpose,
            legal_basis=legal_basis,
            legal_reference=legal_reference,
            expires=_aware(expires),
            reason=reason,
        )
    done(
        as_json,
        {"grant": grant_dict(grant)},
        escape(
            f"{grant.sender} may now send {message_type} to {grant.recipient} for {grant.purpose}"
        ),
    )


@grant_app.command("remove")
def grant_remove(
    sender: Sender,
    message_type: MessageType,
    recipient: Recipient,
    purpose: Annotated[
        str | None, typer.Option("--purpose", help="Which grant, when there are several.")
    ] = None,
    actor: Actor = None,
    reason: Reason = "",
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Take back SENDER's grant to send TYPE to RECIPIENT."""
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        services.registry.remove_grant(
            who, sender, message_type, recipient, purpose=purpose, reason=reason
        )
    done(
        as_json,
        {
            "removed": {
                "sender": sender,
                "type": message_type,
                "recipient": recipient,
                "purpose": purpose,
            }
        },
        escape(f"{sender} may no longer send {message_type} to {recipient}"),
    )


@grant_app.command("list")
def grant_list(db: Db = None, schema: DbSchema = None, as_json: Json = False) -> None:
    """List the send grants, by sender."""
    with governance(db, schema, as_json=as_json) as services:
        found = services.registry.grants()
    listed(
        as_json,
        {"grants": [grant_dict(g) for g in found]},
        "bus grants",
        ("sender", "type", "recipient", "purpose", "legal basis", "expires"),
        (
            (
                g.sender,
                g.message_type,
                g.recipient,
                g.purpose,
                g.legal_basis.reference or g.legal_basis.text,
                g.expires,
            )
            for g in found
        ),
        empty="no grant",
    )


Subscriber = Annotated[str, typer.Argument(metavar="SUBSCRIBER", help="The subsystem.")]
Topic = Annotated[str, typer.Argument(metavar="TOPIC", help="An event type.")]


@subscription_app.command("add")
def subscription_add(
    subscriber: Subscriber,
    topic: Topic,
    purpose: Purpose,
    legal_basis: LegalBasisText,
    legal_reference: LegalReference = "",
    expires: Expires = None,
    actor: Actor = None,
    reason: Reason = "",
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Let SUBSCRIBER receive the events of TOPIC for a purpose, on a legal basis."""
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        grant = services.registry.add_subscription(
            who,
            subscriber,
            topic,
            purpose=purpose,
            legal_basis=legal_basis,
            legal_reference=legal_reference,
            expires=_aware(expires),
            reason=reason,
        )
    done(
        as_json,
        {"subscription": subscription_dict(grant)},
        escape(f"{grant.subscriber} now receives {topic}"),
    )


@subscription_app.command("remove")
def subscription_remove(
    subscriber: Subscriber,
    topic: Topic,
    actor: Actor = None,
    reason: Reason = "",
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Stop SUBSCRIBER receiving the events of TOPIC."""
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        services.registry.remove_subscription(who, subscriber, topic, reason=reason)
    done(
        as_json,
        {"removed": {"subscriber": subscriber, "topic": topic}},
        escape(f"{subscriber} no longer receives {topic}"),
    )


@subscription_app.command("list")
def subscription_list(db: Db = None, schema: DbSchema = None, as_json: Json = False) -> None:
    """List the subscriptions, by subscriber."""
    with governance(db, schema, as_json=as_json) as services:
        found = services.registry.subscriptions()
    listed(
        as_json,
        {"subscriptions": [subscription_dict(g) for g in found]},
        "bus subscriptions",
        ("subscriber", "topic", "purpose", "expires"),
        ((g.subscriber, g.topic, g.purpose, g.expires) for g in found),
        empty="no subscription",
    )


@registry_app.command("witnessing")
def witnessing(
    subsystems: Annotated[
        list[str],
        typer.Argument(metavar="SUBSYSTEM...", help="The subsystems that witness each other."),
    ],
    actor: Actor = None,
    reason: Reason = "",
    db: Db = None,
    schema: DbSchema = None,
    as_json: Json = False,
) -> None:
    """Let SUBSYSTEMs witness each other's logs: services, subscriptions and grants for the
    log-witnessing purpose (what is there already is kept)."""
    who = need_actor(actor, as_json=as_json)
    with governance(db, schema, as_json=as_json) as services:
        added = services.registry.enable_witnessing(who, subsystems, reason=reason)
    done(
        as_json,
        {"added": added, "subsystems": subsystems},
        escape(f"{len(subsystems)} subsystems witness each other ({added} registry entries added)"),
    )
