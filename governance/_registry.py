"""The bus registry: who is on the bus and who may exchange what, and the signed directory
published from it.

Members (``INSTANCE/CLASS/MEMBER``) own subsystems (``INSTANCE/CLASS/MEMBER/SUBSYSTEM``);
a subsystem holds certificates issued by the operator's CA, provides request types or
publishes event types (services), may send a type to another subsystem (grants) and may
receive the events of a topic (subscriptions). Message types must be in the schema registry.

Only operators change the registry or publish. Every change writes its audit entry in the
same transaction; a refused or malformed operation changes nothing.
:meth:`Registry.publish_directory` turns the registry into a
:class:`~exchange.DirectoryDraft`, signs it with the CA and stores the signed bytes under the
next serial (strictly increasing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from cryptography import x509

from exchange import (
    PURPOSE,
    UNSPECIFIED_PURPOSE,
    CertificateAuthority,
    DirectoryDraft,
    ExchangeError,
    LegalBasis,
    MemberId,
    SchemaRef,
    SendGrant,
    Service,
    SubscribeGrant,
    SubsystemId,
    cert_from_pem,
    cert_to_pem,
    format_time,
    inspect_certificate,
    parse_time,
    sign_directory,
    utcnow,
)
from exchange.log import (
    CONSISTENCY_REPLY_TYPE,
    CONSISTENCY_TYPE,
    COSIGNATURE_TYPE,
    LOG_HEAD_TYPE,
    WITNESS_BASIS,
    WITNESS_PURPOSE,
)
from governance._audit import append_entry
from governance._db import GovernanceStore, audit_head, metadata, users
from governance._errors import AlreadyExists, InvalidInput, NotFound, UnknownUser, WrongRole
from governance._workflow import Role, User
from schemas import Kind, SchemaRegistry, default_registry

ServiceRole = Literal["provides", "publishes", "accepts"]
# What a service role needs of its message type (and of the response type, for provides).
_SERVICE_KINDS: dict[str, Kind] = {
    "provides": Kind.REQUEST,
    "publishes": Kind.EVENT,
    "accepts": Kind.MESSAGE,
}
_SUBJECT_MAX = 200  # audit_log.subject


# ---- tables (created by migration 0002) --------------------------------------------------

bus_members = sa.Table(
    "bus_members",
    metadata,
    sa.Column("member_id", sa.String(200), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(24), nullable=False),
)

bus_subsystems = sa.Table(
    "bus_subsystems",
    metadata,
    sa.Column("subsystem_id", sa.String(260), primary_key=True),
    sa.Column(
        "member_id",
        sa.String(200),
        sa.ForeignKey("bus_members.member_id"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", sa.String(24), nullable=False),
)

bus_certificates = sa.Table(
    "bus_certificates",
    metadata,
    # sha256:<hex> of the DER
    sa.Column("fingerprint", sa.String(71), primary_key=True),
    sa.Column(
        "subsystem_id",
        sa.String(260),
        sa.ForeignKey("bus_subsystems.subsystem_id"),
        nullable=False,
        index=True,
    ),
    # lower-case hex (X.509 serials reach 159 bits: no integer column holds them)
    sa.Column("serial", sa.String(40), nullable=False, unique=True),
    # signing or encryption
    sa.Column("usage", sa.String(16), nullable=False),
    sa.Column("not_before", sa.String(24), nullable=False),
    sa.Column("not_after", sa.String(24), nullable=False),
    sa.Column("retire_after", sa.String(24), nullable=True),
    sa.Column("pem", sa.Text, nullable=False),
    sa.Column("revoked_at", sa.String(24), nullable=True),
    sa.Column("revoked_reason", sa.Text, nullable=True),
    sa.Column("created_at", sa.String(24), nullable=False),
)

bus_services = sa.Table(
    "bus_services",
    metadata,
    sa.Column(
        "subsystem_id",
        sa.String(260),
        sa.ForeignKey("bus_subsystems.subsystem_id"),
        primary_key=True,
    ),
    sa.Column("message_type", sa.String(200), primary_key=True),
    # provides, publishes, accepts
    sa.Column("role", sa.String(16), primary_key=True),
    sa.Column("response_type", sa.String(200), nullable=True),
)


def _terms() -> list[sa.Column[Any]]:
    """A grant's legal basis and expiry (its purpose is part of a send grant's key)."""
    return [
        sa.Column("legal_basis", sa.Text, nullable=False, server_default=""),
        sa.Column("legal_reference", sa.Text, nullable=False, server_default=""),
        sa.Column("expires", sa.String(24), nullable=True),
    ]


bus_grants = sa.Table(
    "bus_send_grants",
    metadata,
    sa.Column(
        "sender", sa.String(260), sa.ForeignKey("bus_subsystems.subsystem_id"), primary_key=True
    ),
    sa.Column("message_type", sa.String(200), primary_key=True),
    sa.Column(
        "recipient",
        sa.String(260),
        sa.ForeignKey("bus_subsystems.subsystem_id"),
        primary_key=True,
    ),
    sa.Column("purpose", sa.String(64), primary_key=True),
    *_terms(),
)

bus_subscriptions = sa.Table(
    "bus_subscriptions",
    metadata,
    sa.Column(
        "subscriber",
        sa.String(260),
        sa.ForeignKey("bus_subsystems.subsystem_id"),
        primary_key=True,
    ),
    sa.Column("topic", sa.String(200), primary_key=True),
    sa.Column("purpose", sa.String(64), nullable=False, server_default=UNSPECIFIED_PURPOSE),
    *_terms(),
)

bus_directories = sa.Table(
    "bus_directories",
    metadata,
    sa.Column("serial", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("issued", sa.String(24), nullable=False),
    sa.Column("expires", sa.String(24), nullable=False),
    sa.Column("published_by", sa.String(64), nullable=False),
    # SHA-256 (hex) of the document
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("document", sa.LargeBinary, nullable=False),
)

# Errors: the codes of governance._errors (every error class is drawn there), with messages
# that name what is unknown or wrong: NotFound (not-found) for unknown members, subsystems,
# message types, certificates and entries to remove; InvalidInput (invalid-input) for
# malformed ids, wrong kinds of type and certificates that do not check.

# ---- records -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisteredCertificate:
    subsystem: SubsystemId
    fingerprint: str
    serial: int
    usage: str
    not_before: str
    not_after: str
    retire_after: str | None
    revoked_at: str | None
    revoked_reason: str | None
    pem: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "subsystem": str(self.subsystem),
            "fingerprint": self.fingerprint,
            "serial": f"{self.serial:x}",
            "usage": self.usage,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "retire_after": self.retire_after,
            "revoked_at": self.revoked_at,
            "revoked_reason": self.revoked_reason,
        }


@dataclass(frozen=True, slots=True)
class PublishedDirectory:
    serial: int
    issued: str
    expires: str
    published_by: str
    sha256: str
    document: bytes


# ---- the registry ------------------------------------------------------------------------


class Registry:
    """The bus registry over one governance store.

    Operations take the acting user (a :class:`~governance.User` or a user id; roles are
    read from the database): only operators may change the registry or publish
    (:class:`~governance.WrongRole` otherwise, :class:`~governance.UnknownUser` for nobody).
    """

    def __init__(
        self,
        store: GovernanceStore,
        *,
        clock: Callable[[], datetime] = utcnow,
        schemas: SchemaRegistry | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._schemas = schemas or default_registry()

    # ---- members and subsystems -----------------------------------------------------------

    def add_member(self, actor: User | str, member_id: str, *, name: str, reason: str = "") -> str:
        """Register a member ``INSTANCE/CLASS/MEMBER`` with its display name."""
        member = str(_member(member_id))
        display = _text(name, "the member's name")
        now = self._now()
        with self._changing("add_member", actor, "add a bus member") as (conn, by):
            if _exists(conn, bus_members, bus_members.c.member_id == member):
                raise AlreadyExists(f"member {member} is already registered")
            conn.execute(
                bus_members.insert(),
                {"member_id": member, "name": display, "created_at": format_time(now)},
            )
            _audit(conn, by, "bus.member.add", f"member:{member}", reason, {"name": display}, now)
        return member

    def add_subsystem(self, actor: User | str, subsystem_id: str, *, reason: str = "") -> str:
        """Register a subsystem of an already registered member."""
        subsystem = _subsystem(subsystem_id)
        now = self._now()
        with self._changing("add_subsystem", actor, "add a bus subsystem") as (conn, by):
            member = str(subsystem.member_id)
            if not _exists(conn, bus_members, bus_members.c.member_id == member):
                raise NotFound(
                    f"subsystem {subsystem} belongs to member {member}, which is not registered"
                )
            if _exists(conn, bus_subsystems, bus_subsystems.c.subsystem_id == str(subsystem)):
                raise AlreadyExists(f"subsystem {subsystem} is already registered")
            conn.execute(
                bus_subsystems.insert(),
                {
                    "subsystem_id": str(subsystem),
                    "member_id": member,
                    "created_at": format_time(now),
                },
            )
            _audit(conn, by, "bus.subsystem.add", f"subsystem:{subsystem}", reason, {}, now)
        return str(subsystem)

    def members(self) -> dict[str, str]:
        with self._store.transaction("read the bus members") as conn:
            rows = conn.execute(sa.select(bus_members).order_by(bus_members.c.member_id)).all()
        return {row.member_id: row.name for row in rows}

    def subsystems(self) -> list[SubsystemId]:
        with self._store.transaction("read the bus subsystems") as conn:
            rows = conn.execute(sa.select(bus_subsystems.c.subsystem_id)).all()
        return sorted(SubsystemId.parse(row.subsystem_id) for row in rows)

    # ---- certificates ---------------------------------------------------------------------

    def register_certificate(  # noqa: PLR0913 - keyword-only: each names a field
        self,
        actor: User | str,
        subsystem_id: str,
        pem: str | bytes,
        *,
        ca_certificate: x509.Certificate,
        retire_after: datetime | None = None,
        reason: str = "",
    ) -> RegisteredCertificate:
        """Register a certificate of ``subsystem_id``, checked against ``ca_certificate``:
        issued by it, a subsystem certificate whose subject is ``subsystem_id``."""
        subsystem = _subsystem(subsystem_id)
        try:
            cert = cert_from_pem(pem)
            info = inspect_certificate(cert, ca_certificate)
        except ExchangeError as exc:
            raise InvalidInput(f"the certificate does not check: {exc.message}") from exc
        if info.subsystem != subsystem:
            raise InvalidInput(
                f"certificate serial {info.serial:x} is for {info.subsystem}, not {subsystem}"
            )
        retire = _aware(retire_after, "retire_after") if retire_after is not None else None
        now = self._now()
        record = RegisteredCertificate(
            subsystem=subsystem,
            fingerprint=info.fingerprint,
            serial=info.serial,
            usage=info.usage,
            not_before=format_time(info.not_before),
            not_after=format_time(info.not_after),
            retire_after=format_time(retire) if retire else None,
            revoked_at=None,
            revoked_reason=None,
            pem=cert_to_pem(cert),
        )
        with self._changing("register_certificate", actor, "register a certificate") as (
            conn,
            by,
        ):
            self._need_subsystem(conn, subsystem)
            if _exists(conn, bus_certificates, bus_certificates.c.fingerprint == info.fingerprint):
                raise AlreadyExists(f"certificate {info.fingerprint} is already registered")
            if _exists(conn, bus_certificates, bus_certificates.c.serial == f"{info.serial:x}"):
                raise AlreadyExists(f"a certificate with serial {info.serial:x} is registered")
            conn.execute(
                bus_certificates.insert(),
                {
                    "fingerprint": record.fingerprint,
                    "subsystem_id": str(subsystem),
                    "serial": f"{record.serial:x}",
                    "usage": record.usage,
                    "not_before": record.not_before,
                    "not_after": record.not_after,
                    "retire_after": record.retire_after,
                    "pem": record.pem,
                    "revoked_at": None,
                    "revoked_reason": None,
                    "created_at": format_time(now),
                },
            )
            _audit(
                conn,
                by,
                "bus.certificate.register",
                f"certificate:{record.fingerprint}",
                reason,
                record.as_dict(),
                now,
            )
        return record

    def retire_certificate(
        self, actor: User | str, serial: int | str, retire_after: datetime, *, reason: str = ""
    ) -> RegisteredCertificate:
        """Set when a certificate stops being used (key rotation): its effective end."""
        retire = format_time(_aware(retire_after, "retire_after"))
        key = _serial(serial)
        now = self._now()
        with self._changing("retire_certificate", actor, "retire a certificate") as (conn, by):
            cert = self._certificate(conn, key)
            conn.execute(
                bus_certificates.update()
                .where(bus_certificates.c.serial == f"{key:x}")
                .values(retire_after=retire)
            )
            _audit(
                conn,
                by,
                "bus.certificate.retire",
                f"certificate:{cert.fingerprint}",
                reason,
                {"serial": f"{key:x}", "from": cert.retire_after, "to": retire},
                now,
            )
            return self._certificate(conn, key)

    def revoke_certificate(
        self, actor: User | str, serial: int | str, *, reason: str
    ) -> RegisteredCertificate:
        """Mark a registered certificate revoked (by serial: an int or hex text); the next
        published directory lists its serial as revoked."""
        why = _text(reason, "a reason")
        key = _serial(serial)
        now = self._now()
        with self._changing("revoke_certificate", actor, "revoke a certificate") as (conn, by):
            cert = self._certificate(conn, key)
            if cert.revoked_at is not None:
                raise InvalidInput(f"certificate {key:x} is already revoked ({cert.revoked_at})")
            conn.execute(
                bus_certificates.update()
                .where(bus_certificates.c.serial == f"{key:x}")
                .values(revoked_at=format_time(now), revoked_reason=why)
            )
            _audit(
                conn,
                by,
                "bus.certificate.revoke",
                f"certificate:{cert.fingerprint}",
                why,
                {"serial": f"{key:x}", "subsystem": str(cert.subsystem)},
                now,
            )
            return self._certificate(conn, key)

    def certificates(self, subsystem_id: str | None = None) -> list[RegisteredCertificate]:
        query = sa.select(bus_certificates).order_by(
            bus_certificates.c.subsystem_id, bus_certificates.c.not_before
        )
        if subsystem_id is not None:
            query = query.where(bus_certificates.c.subsystem_id == str(_subsystem(subsystem_id)))
        with self._store.transaction("read the bus certificates") as conn:
            return [_cert(row) for row in conn.execute(query).all()]

    # ---- services, grants, subscriptions ------------------------------------------------

    def add_service(  # noqa: PLR0913 - keyword-only: each names a field
        self,
        actor: User | str,
        subsystem_id: str,
        message_type: str,
        *,
        role: ServiceRole = "provides",
        response_type: str | None = None,
        reason: str = "",
    ) -> Service:
        """Declare that ``subsystem_id`` provides the request type ``message_type`` (answered
        with ``response_type``), publishes the event type, or accepts the message type."""
        if role not in _SERVICE_KINDS:
            raise InvalidInput(
                f"service role must be one of {sorted(_SERVICE_KINDS)}, not {role!r}"
            )
        subsystem = _subsystem(subsystem_id)
        self._need_type(message_type, _SERVICE_KINDS[role])
        if role == "provides":
            if response_type is None:
                raise InvalidInput(
                    f"a provided request type ({message_type}) needs its response type"
                )
            self._need_type(response_type, Kind.RESPONSE)
        elif response_type is not None:
            raise InvalidInput(f"only provided request types have a response type, not {role}")
        service = Service(subsystem, message_type, role, response_type)
        now = self._now()
        with self._changing("add_service", actor, "add a service") as (conn, by):
            self._need_subsystem(conn, subsystem)
            key = _service_key(service)
            if _exists(conn, bus_services, key):
                raise AlreadyExists(f"{subsystem} already {role} {message_type}")
            conn.execute(
                bus_services.insert(),
                {
                    "subsystem_id": str(subsystem),
                    "message_type": message_type,
                    "role": role,
                    "response_type": response_type,
                },
            )
            _audit(
                conn,
                by,
                "bus.service.add",
                f"subsystem:{subsystem}",
                reason,
                service_dict(service),
                now,
            )
        return service

    def remove_service(
        self,
        actor: User | str,
        subsystem_id: str,
        message_type: str,
        *,
        role: ServiceRole = "provides",
        reason: str = "",
    ) -> None:
        subsystem = _subsystem(subsystem_id)
        service = Service(subsystem, message_type, role)
        now = self._now()
        with self._changing("remove_service", actor, "remove a service") as (conn, by):
            if conn.execute(bus_services.delete().where(_service_key(service))).rowcount != 1:
                raise NotFound(f"{subsystem} has no service {role} {message_type}")
            _audit(
                conn,
                by,
                "bus.service.remove",
                f"subsystem:{subsystem}",
                reason,
                service_dict(service),
                now,
            )

    def add_grant(  # noqa: PLR0913 - keyword-only: the grant's terms
        self,
        actor: User | str,
        sender: str,
        message_type: str,
        recipient: str,
        *,
        purpose: str,
        legal_basis: str,
        legal_reference: str = "",
        expires: datetime | None = None,
        reason: str = "",
    ) -> SendGrant:
        """Allow ``sender`` to send ``message_type`` to ``recipient`` for ``purpose`` (a
        code), on ``legal_basis`` (the text, and a citable ``legal_reference``), until
        ``expires`` (``None``: no end). Each purpose is a grant of its own."""
        now = self._now()
        grant = SendGrant(
            _subsystem(sender),
            message_type,
            _subsystem(recipient),
            *_grant_terms(purpose, legal_basis, legal_reference, expires, now),
        )
        self._need_type(message_type)
        with self._changing("add_grant", actor, "add a grant") as (conn, by):
            self._need_subsystem(conn, grant.sender)
            self._need_subsystem(conn, grant.recipient)
            if _exists(conn, bus_grants, _grant_key(grant)):
                raise AlreadyExists(
                    f"{sender} may already send {message_type} to {recipient} for {grant.purpose}"
                )
            conn.execute(
                bus_grants.insert(),
                {
                    "sender": str(grant.sender),
                    "message_type": message_type,
                    "recipient": str(grant.recipient),
                    **_terms_row(grant.purpose, grant.legal_basis, grant.expires),
                },
            )
            _audit(
                conn,
                by,
                "bus.grant.add",
                f"subsystem:{grant.sender}",
                reason,
                grant_dict(grant),
                now,
            )
        return grant

    def remove_grant(  # noqa: PLR0913 - keyword-only: which grant
        self,
        actor: User | str,
        sender: str,
        message_type: str,
        recipient: str,
        *,
        purpose: str | None = None,
        reason: str = "",
    ) -> None:
        """Remove the grant for ``purpose``; without one, the only grant of ``sender`` for
        ``message_type`` to ``recipient`` (several purposes: :class:`InvalidInput`)."""
        now = self._now()
        key = (_subsystem(sender), message_type, _subsystem(recipient))
        with self._changing("remove_grant", actor, "remove a grant") as (conn, by):
            found = [
                g
                for g in self._read_grants(conn)
                if (g.sender, g.message_type, g.recipient) == key and purpose in (None, g.purpose)
            ]
            if not found:
                what = f" for {purpose}" if purpose else ""
                raise NotFound(f"{sender} has no grant to send {message_type} to {recipient}{what}")
            if len(found) > 1:
                purposes = ", ".join(g.purpose for g in found)
                raise InvalidInput(f"say which purpose to remove: {purposes}")
            grant = found[0]
            conn.execute(bus_grants.delete().where(_grant_key(grant)))
            _audit(
                conn,
                by,
                "bus.grant.remove",
                f"subsystem:{grant.sender}",
                reason,
                grant_dict(grant),
                now,
            )

    def add_subscription(  # noqa: PLR0913 - keyword-only: the subscription's terms
        self,
        actor: User | str,
        subscriber: str,
        topic: str,
        *,
        purpose: str,
        legal_basis: str,
        legal_reference: str = "",
        expires: datetime | None = None,
        reason: str = "",
    ) -> SubscribeGrant:
        """Allow ``subscriber`` to receive the events of ``topic`` (an event type), for
        ``purpose`` on ``legal_basis``, until ``expires``."""
        now = self._now()
        grant = SubscribeGrant(
            _subsystem(subscriber),
            topic,
            *_grant_terms(purpose, legal_basis, legal_reference, expires, now),
        )
        self._need_type(topic, Kind.EVENT)
        with self._changing("add_subscription", actor, "add a subscription") as (conn, by):
            self._need_subsystem(conn, grant.subscriber)
            if _exists(conn, bus_subscriptions, _subscription_key(grant)):
                raise AlreadyExists(f"{subscriber} is already subscribed to {topic}")
            conn.execute(
                bus_subscriptions.insert(),
                {
                    "subscriber": str(grant.subscriber),
                    "topic": topic,
                    **_terms_row(grant.purpose, grant.legal_basis, grant.expires),
                },
            )
            _audit(
                conn,
                by,
                "bus.subscription.add",
                f"subsystem:{grant.subscriber}",
                reason,
                subscription_dict(grant),
                now,
            )
        return grant

    def remove_subscription(
        self, actor: User | str, subscriber: str, topic: str, *, reason: str = ""
    ) -> None:
        grant = SubscribeGrant(_subsystem(subscriber), topic)
        now = self._now()
        with self._changing("remove_subscription", actor, "remove a subscription") as (conn, by):
            if (
                conn.execute(bus_subscriptions.delete().where(_subscription_key(grant))).rowcount
                != 1
            ):
                raise NotFound(f"{subscriber} is not subscribed to {topic}")
            _audit(
                conn,
                by,
                "bus.subscription.remove",
                f"subsystem:{grant.subscriber}",
                reason,
                {"subscriber": str(grant.subscriber), "topic": topic},
                now,
            )

    def enable_witnessing(
        self,
        actor: User | str,
        subsystems: Sequence[str],
        *,
        legal_basis: str = WITNESS_BASIS.text,
        legal_reference: str = WITNESS_BASIS.reference,
        reason: str = "",
    ) -> int:
        """Let ``subsystems`` witness each other's logs (protocol.md, "Witnessed heads"):
        each publishes its log heads, answers consistency requests, accepts cosignatures and
        subscribes to the heads; each may ask every other for proofs and send it
        cosignatures (grants for the ``log-witnessing`` purpose). What is already there is
        kept; returns how many entries were added (each audited like any registry change)."""
        if len(set(subsystems)) < 2:
            raise InvalidInput("witnessing needs at least two subsystems")
        added = 0

        def attempt(change: Callable[..., object], *args: str, **options: Any) -> None:
            nonlocal added
            try:
                change(actor, *args, reason=reason, **options)
            except AlreadyExists:
                return
            added += 1

        terms: dict[str, Any] = {
            "purpose": WITNESS_PURPOSE,
            "legal_basis": legal_basis,
            "legal_reference": legal_reference,
        }
        for subsystem in subsystems:
            attempt(self.add_service, subsystem, LOG_HEAD_TYPE, role="publishes")
            attempt(
                self.add_service,
                subsystem,
                CONSISTENCY_TYPE,
                role="provides",
                response_type=CONSISTENCY_REPLY_TYPE,
            )
            attempt(self.add_service, subsystem, COSIGNATURE_TYPE, role="accepts")
            attempt(self.add_subscription, subsystem, LOG_HEAD_TYPE, **terms)
            for keeper in subsystems:
                if keeper != subsystem:
                    attempt(self.add_grant, subsystem, CONSISTENCY_TYPE, keeper, **terms)
                    attempt(self.add_grant, subsystem, COSIGNATURE_TYPE, keeper, **terms)
        return added

    def services(self) -> list[Service]:
        with self._store.transaction("read the bus services") as conn:
            rows = conn.execute(sa.select(bus_services)).all()
        found = [
            Service(SubsystemId.parse(r.subsystem_id), r.message_type, r.role, r.response_type)
            for r in rows
        ]
        return sorted(found, key=lambda s: (s.subsystem, s.message_type, s.role))

    def grants(self) -> list[SendGrant]:
        with self._store.transaction("read the bus grants") as conn:
            return self._read_grants(conn)

    def subscriptions(self) -> list[SubscribeGrant]:
        with self._store.transaction("read the bus subscriptions") as conn:
            return self._read_subscriptions(conn)

    @staticmethod
    def _read_grants(conn: sa.Connection) -> list[SendGrant]:
        found = [
            SendGrant(
                SubsystemId.parse(r.sender),
                r.message_type,
                SubsystemId.parse(r.recipient),
                *_row_terms(r),
            )
            for r in conn.execute(sa.select(bus_grants))
        ]
        return sorted(found, key=lambda g: (g.sender, g.message_type, g.recipient, g.purpose))

    @staticmethod
    def _read_subscriptions(conn: sa.Connection) -> list[SubscribeGrant]:
        found = [
            SubscribeGrant(SubsystemId.parse(r.subscriber), r.topic, *_row_terms(r))
            for r in conn.execute(sa.select(bus_subscriptions))
        ]
        return sorted(found, key=lambda g: (g.subscriber, g.topic))

    # ---- the directory ------------------------------------------------------------------

    def publish_directory(  # noqa: PLR0913 - keyword-only: each names a field
        self,
        actor: User | str,
        ca: CertificateAuthority,
        *,
        valid_for: timedelta = timedelta(days=2),
        instance: str | None = None,
        also_revoked: Iterable[int] = (),
        reason: str = "",
    ) -> bytes:
        """Sign the registry as a directory with the next serial, store it and return it.

        ``instance`` defaults to the one the CA's name gives (``Tabadul Root CA MA``);
        ``also_revoked`` adds serials revoked outside the registry (e.g. the CA folder's).
        Refused with :class:`~governance.InvalidInput` if a registered certificate was not issued
        by ``ca`` (connectors would reject the whole directory).
        """
        if valid_for <= timedelta(0):
            raise InvalidInput("valid_for must be a positive duration")
        bus_instance = instance or _ca_instance(ca)
        extra = sorted({_serial(s) for s in also_revoked})
        now = self._now()
        with self._changing("publish_directory", actor, "publish the directory") as (conn, by):
            # Serialise publishers (PostgreSQL): the audit head is what every writer locks.
            conn.execute(
                sa.select(audit_head.c.seq).where(audit_head.c.id == 1).with_for_update()
            ).one()
            last = conn.execute(sa.select(sa.func.max(bus_directories.c.serial))).scalar_one()
            serial = int(last or 0) + 1
            draft = self._draft(conn, bus_instance, serial, ca, extra)
            expires = now + valid_for
            document = sign_directory(draft, ca, issued=now, expires=expires)
            digest = hashlib.sha256(document).hexdigest()
            conn.execute(
                bus_directories.insert(),
                {
                    "serial": serial,
                    "issued": format_time(now),
                    "expires": format_time(expires),
                    "published_by": by,
                    "sha256": digest,
                    "document": document,
                },
            )
            _audit(
                conn,
                by,
                "directory.publish",
                f"directory:{serial}",
                reason,
                {
                    "serial": serial,
                    "instance": bus_instance,
                    "ca": ca.fingerprint,
                    "issued": format_time(now),
                    "expires": format_time(expires),
                    "members": len(draft.members),
                    "certificates": len(draft.certificates),
                    "services": len(draft.services),
                    "grants": len(draft.send_grants),
                    "subscriptions": len(draft.subscribe_grants),
                    "revoked": sorted(f"{s:x}" for s in draft.revoked_serials),
                },
                now,
                content=digest,
            )
        return document

    def latest_directory(self) -> bytes | None:
        """The last published directory's bytes (None before the first publication)."""
        found = self.published()
        return found.document if found else None

    def published(self, serial: int | None = None) -> PublishedDirectory | None:
        """A published directory (the latest when ``serial`` is None), or None."""
        query = sa.select(bus_directories)
        if serial is None:
            query = query.order_by(bus_directories.c.serial.desc()).limit(1)
        else:
            query = query.where(bus_directories.c.serial == serial)
        with self._store.transaction("read the published directory") as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return PublishedDirectory(
            serial=int(row.serial),
            issued=row.issued,
            expires=row.expires,
            published_by=row.published_by,
            sha256=row.sha256,
            document=bytes(row.document),
        )

    # ---- internals ----------------------------------------------------------------------

    def _draft(
        self,
        conn: sa.Connection,
        instance: str,
        serial: int,
        ca: CertificateAuthority,
        extra_revoked: list[int],
    ) -> DirectoryDraft:
        draft = DirectoryDraft(instance, serial)
        for row in conn.execute(sa.select(bus_members).order_by(bus_members.c.member_id)):
            if MemberId.parse(row.member_id).instance != instance:
                raise InvalidInput(
                    f"member {row.member_id} is not of instance {instance}: "
                    "a directory serves one instance"
                )
            draft.members[row.member_id] = row.name
        revoked = set(extra_revoked)
        query = sa.select(bus_certificates).order_by(
            bus_certificates.c.subsystem_id,
            bus_certificates.c.not_before,
            bus_certificates.c.serial,
        )
        for row in conn.execute(query):
            cert = cert_from_pem(row.pem)
            try:
                inspect_certificate(cert, ca.certificate)
            except ExchangeError as exc:
                raise InvalidInput(
                    f"registered certificate {row.serial} of {row.subsystem_id} does not check "
                    f"against this CA: {exc.message}"
                ) from exc
            retire = parse_time(row.retire_after, "retire_after") if row.retire_after else None
            draft.certificates.append((cert, retire))
            if row.revoked_at is not None:
                revoked.add(int(row.serial, 16))
        draft.revoked_serials = sorted(revoked)
        draft.services = [
            Service(SubsystemId.parse(r.subsystem_id), r.message_type, r.role, r.response_type)
            for r in conn.execute(
                sa.select(bus_services).order_by(
                    bus_services.c.subsystem_id, bus_services.c.message_type, bus_services.c.role
                )
            )
        ]
        draft.send_grants = self._read_grants(conn)
        draft.subscribe_grants = self._read_subscriptions(conn)
        draft.schemas = [
            SchemaRef(e.type, e.version, e.digest, e.classification.value)
            for e in self._schemas.entries()
        ]
        return draft

    def _now(self) -> datetime:
        """The clock's time at the stored (millisecond) precision."""
        return datetime.fromisoformat(format_time(self._clock()))

    @contextmanager
    def _changing(
        self, action: str, actor: User | str, what: str
    ) -> Iterator[tuple[sa.Connection, str]]:
        """A transaction whose actor is checked to be an operator first."""
        with self._store.transaction(what) as conn:
            user_id = actor.user_id if isinstance(actor, User) else actor
            row = conn.execute(sa.select(users).where(users.c.user_id == user_id)).first()
            if row is None:
                raise UnknownUser(f"no user {user_id!r} is registered")
            roles = {Role(r) for r in row.roles}
            if Role.OPERATOR not in roles:
                held = ", ".join(sorted(roles)) or "no role"
                raise WrongRole(
                    f"{user_id} ({held}) may not {what}: only an operator may",
                    action=f"registry.{action}",
                )
            yield conn, user_id

    def _need_subsystem(self, conn: sa.Connection, subsystem: SubsystemId) -> None:
        if not _exists(conn, bus_subsystems, bus_subsystems.c.subsystem_id == str(subsystem)):
            raise NotFound(f"subsystem {subsystem} is not registered")

    def _need_type(self, message_type: str, kind: Kind | None = None) -> None:
        if not isinstance(message_type, str) or message_type not in self._schemas:
            raise NotFound(f"message type {message_type!r} is not in the schema registry")
        found = self._schemas.latest(message_type).kind
        if kind is not None and found != kind:
            raise InvalidInput(f"{message_type} is a {found.value} type, not a {kind.value} type")

    def _certificate(self, conn: sa.Connection, serial: int) -> RegisteredCertificate:
        row = conn.execute(
            sa.select(bus_certificates).where(bus_certificates.c.serial == f"{serial:x}")
        ).first()
        if row is None:
            raise NotFound(f"no certificate with serial {serial:x} is registered")
        return _cert(row)


# ---- helpers -----------------------------------------------------------------------------


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} must be given (a non-empty text)")
    return value.strip()


def _member(text: object) -> MemberId:
    if not isinstance(text, str):
        raise InvalidInput(f"member id must be INSTANCE/CLASS/MEMBER, got {text!r}")
    try:
        return MemberId.parse(text)
    except ExchangeError as exc:
        raise InvalidInput(exc.message) from exc


def _subsystem(text: object) -> SubsystemId:
    try:
        return SubsystemId.parse(text)  # type: ignore[arg-type]  # checked by parse
    except ExchangeError as exc:
        raise InvalidInput(exc.message) from exc


def _serial(value: object) -> int:
    """A certificate serial from an int or hex text (``0x`` prefix allowed)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        text = value.strip().lower().removeprefix("0x")
        try:
            serial = int(text, 16)
        except ValueError:
            serial = 0
        if serial > 0:
            return serial
    raise InvalidInput(f"a certificate serial must be a positive integer or hex, got {value!r}")


def _aware(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(f"{what} must be a timezone-aware datetime")
    return datetime.fromisoformat(format_time(value))


def _ca_instance(ca: CertificateAuthority) -> str:
    names = ca.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    name = str(names[0].value) if len(names) == 1 else ""
    prefix = "Tabadul Root CA "
    if not name.startswith(prefix) or not name[len(prefix) :].strip():
        raise InvalidInput(f"cannot tell the instance from the CA's name {name!r}; pass instance=")
    return name[len(prefix) :].strip()


def _exists(conn: sa.Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> bool:
    return (
        conn.execute(sa.select(sa.literal(1)).select_from(table).where(where)).first() is not None
    )


def _service_key(service: Service) -> sa.ColumnElement[bool]:
    return sa.and_(
        bus_services.c.subsystem_id == str(service.subsystem),
        bus_services.c.message_type == service.message_type,
        bus_services.c.role == service.role,
    )


def _grant_key(grant: SendGrant) -> sa.ColumnElement[bool]:
    return sa.and_(
        bus_grants.c.sender == str(grant.sender),
        bus_grants.c.message_type == grant.message_type,
        bus_grants.c.recipient == str(grant.recipient),
        bus_grants.c.purpose == grant.purpose,
    )


_LEGAL_BASIS_MAX = 2000
_LEGAL_REFERENCE_MAX = 500


def _grant_terms(
    purpose: object, legal_basis: object, reference: object, expires: object, now: datetime
) -> tuple[str, LegalBasis, datetime | None]:
    """Checked terms of a new grant: a purpose code, a stated legal basis, an end in the
    future (or none). :class:`InvalidInput` names what is wrong."""
    if not isinstance(purpose, str) or not PURPOSE.match(purpose):
        raise InvalidInput(
            f"purpose {purpose!r} must be a code of lower-case letters, digits and '-' "
            "(at most 64, starting with a letter), e.g. tax-compliance-check"
        )
    text = _text(legal_basis, "the grant's legal basis")
    if len(text) > _LEGAL_BASIS_MAX:
        raise InvalidInput(f"the legal basis is at most {_LEGAL_BASIS_MAX} characters")
    if not isinstance(reference, str) or len(reference) > _LEGAL_REFERENCE_MAX:
        raise InvalidInput(f"the legal reference is a text of at most {_LEGAL_REFERENCE_MAX}")
    if expires is not None and (not isinstance(expires, datetime) or expires.tzinfo is None):
        raise InvalidInput("a grant's expiry is a time with its time zone")
    if expires is not None and expires <= now:
        raise InvalidInput(f"a grant's expiry must be in the future, not {format_time(expires)}")
    ends = None if expires is None else datetime.fromisoformat(format_time(expires))
    return purpose, LegalBasis(text, reference.strip()), ends


def _terms_row(purpose: str, basis: LegalBasis, expires: datetime | None) -> dict[str, Any]:
    return {
        "purpose": purpose,
        "legal_basis": basis.text,
        "legal_reference": basis.reference,
        "expires": None if expires is None else format_time(expires),
    }


def _row_terms(row: sa.Row[Any]) -> tuple[str, LegalBasis, datetime | None]:
    expires = None if row.expires is None else parse_time(row.expires, "grant expires")
    return row.purpose, LegalBasis(row.legal_basis, row.legal_reference), expires


def _terms_dict(purpose: str, basis: LegalBasis, expires: datetime | None) -> dict[str, Any]:
    return {
        "purpose": purpose,
        "legal_basis": basis.as_dict(),
        "expires": None if expires is None else format_time(expires),
    }


def _subscription_key(grant: SubscribeGrant) -> sa.ColumnElement[bool]:
    return sa.and_(
        bus_subscriptions.c.subscriber == str(grant.subscriber),
        bus_subscriptions.c.topic == grant.topic,
    )


def service_dict(service: Service) -> dict[str, Any]:
    """A service as JSON (the CLI's output and the audit log's details)."""
    return {
        "subsystem": str(service.subsystem),
        "type": service.message_type,
        "role": service.role,
        "response_type": service.response_type,
    }


def subscription_dict(grant: SubscribeGrant) -> dict[str, Any]:
    """A subscription as JSON (the CLI's output and the audit log's details)."""
    return {
        "subscriber": str(grant.subscriber),
        "topic": grant.topic,
        **_terms_dict(grant.purpose, grant.legal_basis, grant.expires),
    }


def grant_dict(grant: SendGrant) -> dict[str, Any]:
    """A send grant as JSON (the CLI's output and the audit log's details)."""
    return {
        "sender": str(grant.sender),
        "type": grant.message_type,
        "recipient": str(grant.recipient),
        **_terms_dict(grant.purpose, grant.legal_basis, grant.expires),
    }


def _cert(row: sa.Row[Any]) -> RegisteredCertificate:
    return RegisteredCertificate(
        subsystem=SubsystemId.parse(row.subsystem_id),
        fingerprint=row.fingerprint,
        serial=int(row.serial, 16),
        usage=row.usage,
        not_before=row.not_before,
        not_after=row.not_after,
        retire_after=row.retire_after,
        revoked_at=row.revoked_at,
        revoked_reason=row.revoked_reason,
        pem=row.pem,
    )


def _audit(  # noqa: PLR0913, PLR0917 - the entry's fields, in order
    conn: sa.Connection,
    actor: str,
    action: str,
    subject: str,
    reason: str,
    details: dict[str, Any],
    at: datetime,
    content: str | None = None,
) -> None:
    append_entry(
        conn,
        actor=actor,
        action=action,
        subject=subject[:_SUBJECT_MAX],
        reason=reason,
        content_sha256=content,
        details=details,
        at=at,
    )
