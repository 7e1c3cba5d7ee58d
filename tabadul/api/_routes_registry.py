"""The bus registry and the signed directory published from it.

Anyone holding a role reads the registry (it is what the public directory says); only
operators change it or publish (governance checks; this module checks first where it would
otherwise open the CA before governance says no). Registering a certificate checks it against
the CA certificate (``ca.pem`` of ``settings.ca_dir``); publishing signs with the CA key,
whose passphrase is read from TABADUL_CA_PASSPHRASE at the time of the call. Without a CA
folder, a CA in it or a passphrase the answer is ``ca-not-configured`` (503); a CA that cannot
be opened (e.g. a wrong passphrase) is ``ca-unavailable`` (503). ``GET /directory/latest`` needs
no token: connectors download it, and it is signed.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from fastapi import APIRouter, Response
from pydantic import AwareDatetime, BaseModel, Field

from exchange import (
    CAStore,
    ExchangeError,
    SendGrant,
    SubscribeGrant,
    cert_from_pem,
    format_time,
)
from governance import RegisteredCertificate
from tabadul._access import ANY_ROLE, OPERATORS, require_role
from tabadul._http import ApiProblem
from tabadul._services import CaUnavailable, Settings, load_ca
from tabadul.api._auth import Caller, ServicesDep
from tabadul.api._models import Body, OptionalQueryText, ReasonIn, RequiredReasonIn
from tabadul.api._problems import problem_responses

router = APIRouter(tags=["registry"], responses=problem_responses(400, 401, 403, 413, 429, 503))
public = APIRouter(tags=["registry"])
_NOT_FOUND = problem_responses(404)
_CHANGE = problem_responses(404, 409)

ServiceRole = Literal["provides", "publishes", "accepts"]


# ---- bodies ------------------------------------------------------------------------------


class MemberIn(Body):
    member_id: str = Field(min_length=1, description="INSTANCE/CLASS/MEMBER, e.g. MA/GOV/MEF")
    name: str = Field(min_length=1)
    reason: str = ""


class MemberOut(BaseModel):
    member_id: str
    name: str


class SubsystemIn(Body):
    subsystem_id: str = Field(min_length=1, description="INSTANCE/CLASS/MEMBER/SUBSYSTEM")
    reason: str = ""


class SubsystemOut(BaseModel):
    subsystem_id: str
    member_id: str


class CertificateIn(Body):
    subsystem_id: str = Field(min_length=1)
    pem: str = Field(min_length=1, description="The certificate the CA issued, in PEM")
    retire_after: AwareDatetime | None = Field(
        default=None, description="When it stops being used (key rotation)"
    )
    reason: str = ""


class RetireIn(Body):
    retire_after: AwareDatetime
    reason: str = ""


class CertificateOut(BaseModel):
    subsystem: str
    fingerprint: str
    serial: str = Field(description="Hexadecimal")
    usage: str
    not_before: str
    not_after: str
    retire_after: str | None
    revoked_at: str | None
    revoked_reason: str | None
    pem: str

    @classmethod
    def of(cls, cert: RegisteredCertificate) -> CertificateOut:
        return cls.model_validate({**cert.as_dict(), "pem": cert.pem})


class ServiceOut(BaseModel):
    subsystem_id: str
    message_type: str
    role: ServiceRole
    response_type: str | None


class ServiceKeyIn(Body):
    """Which service: a subsystem, a message type and what the subsystem does with it."""

    subsystem_id: str = Field(min_length=1)
    message_type: str = Field(min_length=1)
    role: ServiceRole = "provides"
    reason: str = ""


class ServiceIn(ServiceKeyIn):
    response_type: str | None = Field(
        default=None, description="For a provided request type: its response type"
    )


class LegalBasisOut(BaseModel):
    text: str = Field(description="Why the exchange is lawful, for people")
    reference: str = Field(description="Where it is written: a law's article, a decree, a URL")


class TermsOut(BaseModel):
    """What a grant is for, on which legal basis, until when."""

    purpose: str = Field(description="A purpose code, e.g. tax-compliance-check")
    legal_basis: LegalBasisOut
    expires: str | None = Field(description="When the grant ends (null: no end)")


class TermsIn(Body):
    purpose: str = Field(min_length=1, max_length=64, description="A purpose code")
    legal_basis: str = Field(min_length=1, max_length=2000, description="Why it is lawful")
    legal_reference: str = Field(default="", max_length=500, description="Where it is written")
    expires: AwareDatetime | None = Field(
        default=None, description="When it ends, with its time zone (default: never)"
    )
    reason: str = Field(default="", max_length=2000)


def _terms(grant: SendGrant | SubscribeGrant) -> dict[str, Any]:
    return {
        "purpose": grant.purpose,
        "legal_basis": LegalBasisOut(**grant.legal_basis.as_dict()),
        "expires": None if grant.expires is None else format_time(grant.expires),
    }


class GrantOut(TermsOut):
    sender: str
    message_type: str
    recipient: str

    @classmethod
    def of(cls, grant: SendGrant) -> GrantOut:
        return cls(
            sender=str(grant.sender),
            message_type=grant.message_type,
            recipient=str(grant.recipient),
            **_terms(grant),
        )


class GrantIn(TermsIn):
    sender: str = Field(min_length=1, max_length=260)
    message_type: str = Field(min_length=1, max_length=200)
    recipient: str = Field(min_length=1, max_length=260)


class GrantRemoveIn(Body):
    sender: str = Field(min_length=1, max_length=260)
    message_type: str = Field(min_length=1, max_length=200)
    recipient: str = Field(min_length=1, max_length=260)
    purpose: str | None = Field(
        default=None, max_length=64, description="Which grant (needed when there are several)"
    )
    reason: str = Field(default="", max_length=2000)


class SubscriptionOut(TermsOut):
    subscriber: str
    topic: str = Field(description="An event type")

    @classmethod
    def of(cls, grant: SubscribeGrant) -> SubscriptionOut:
        return cls(subscriber=str(grant.subscriber), topic=grant.topic, **_terms(grant))


class SubscriptionIn(TermsIn):
    subscriber: str = Field(min_length=1, max_length=260)
    topic: str = Field(min_length=1, max_length=200, description="An event type")


class SubscriptionRemoveIn(Body):
    subscriber: str = Field(min_length=1, max_length=260)
    topic: str = Field(min_length=1, max_length=200, description="An event type")
    reason: str = Field(default="", max_length=2000)


class PublishDirectoryIn(ReasonIn):
    valid_hours: int = Field(default=48, ge=1, le=24 * 366)


class DirectoryOut(BaseModel):
    serial: int
    instance: str
    issued: str
    expires: str
    sha256: str
    members: int
    certificates: int
    revoked: int


# ---- the CA ------------------------------------------------------------------------------


def _ca_dir(settings: Settings) -> Path:
    """The configured CA folder; ``ca-not-configured`` without one."""
    if settings.ca_dir is None:
        raise ApiProblem(503, "ca-not-configured", "no CA folder is configured (TABADUL_CA_DIR)")
    return settings.ca_dir


def _ca_certificate(settings: Settings) -> x509.Certificate:
    """The CA certificate (``ca.pem``), which needs no passphrase."""
    path = _ca_dir(settings) / "ca.pem"
    try:
        return cert_from_pem(path.read_bytes())
    except (OSError, ExchangeError) as exc:
        raise ApiProblem(503, "ca-unavailable", f"cannot read the CA certificate {path}") from exc


def _ca_store(settings: Settings) -> CAStore:
    """The CA folder, opened with the passphrase of TABADUL_CA_PASSPHRASE."""
    folder = _ca_dir(settings)
    try:
        return load_ca(folder)
    except CaUnavailable as exc:
        raise ApiProblem(503, "ca-not-configured", exc.message) from exc
    except ExchangeError as exc:
        raise ApiProblem(
            503, "ca-unavailable", f"cannot open the CA folder {folder}: {exc.message}"
        ) from exc


# ---- members and subsystems --------------------------------------------------------------


def _reader(caller: Caller) -> None:
    require_role(caller, ANY_ROLE, "read_registry", "read the registry")


@router.get("/registry/members", summary="Bus members")
def list_members(services: ServicesDep, caller: Caller) -> list[MemberOut]:
    _reader(caller)
    return [MemberOut(member_id=m, name=n) for m, n in services.registry.members().items()]


@router.post("/registry/members", status_code=201, summary="Add a member", responses=_CHANGE)
def add_member(body: MemberIn, services: ServicesDep, caller: Caller) -> MemberOut:
    member = services.registry.add_member(
        caller, body.member_id, name=body.name, reason=body.reason
    )
    return MemberOut(member_id=member, name=services.registry.members()[member])


@router.get("/registry/subsystems", summary="Bus subsystems")
def list_subsystems(services: ServicesDep, caller: Caller) -> list[SubsystemOut]:
    _reader(caller)
    return [
        SubsystemOut(subsystem_id=str(s), member_id=str(s.member_id))
        for s in services.registry.subsystems()
    ]


@router.post("/registry/subsystems", status_code=201, summary="Add a subsystem", responses=_CHANGE)
def add_subsystem(body: SubsystemIn, services: ServicesDep, caller: Caller) -> SubsystemOut:
    added = services.registry.add_subsystem(caller, body.subsystem_id, reason=body.reason)
    return SubsystemOut(subsystem_id=added, member_id=added.rsplit("/", 1)[0])


# ---- certificates ------------------------------------------------------------------------


@router.get("/registry/certificates", summary="Registered certificates")
def list_certificates(
    services: ServicesDep, caller: Caller, subsystem_id: OptionalQueryText = None
) -> list[CertificateOut]:
    _reader(caller)
    return [CertificateOut.of(c) for c in services.registry.certificates(subsystem_id)]


@router.post(
    "/registry/certificates",
    status_code=201,
    summary="Register a certificate issued by the CA",
    responses=_CHANGE,
)
def register_certificate(
    body: CertificateIn, services: ServicesDep, caller: Caller
) -> CertificateOut:
    require_role(caller, OPERATORS, "registry.register_certificate", "change the registry")
    registered = services.registry.register_certificate(
        caller,
        body.subsystem_id,
        body.pem,
        ca_certificate=_ca_certificate(services.settings),
        retire_after=body.retire_after,
        reason=body.reason,
    )
    return CertificateOut.of(registered)


@router.post(
    "/registry/certificates/{serial}/retire",
    summary="Set when a certificate stops being used",
    responses=_NOT_FOUND,
)
def retire_certificate(
    serial: str, body: RetireIn, services: ServicesDep, caller: Caller
) -> CertificateOut:
    retired = services.registry.retire_certificate(
        caller, serial, body.retire_after, reason=body.reason
    )
    return CertificateOut.of(retired)


@router.post(
    "/registry/certificates/{serial}/revoke",
    summary="Revoke a certificate (listed as revoked by the next directory)",
    responses=_NOT_FOUND,
)
def revoke_certificate(
    serial: str, body: RequiredReasonIn, services: ServicesDep, caller: Caller
) -> CertificateOut:
    return CertificateOut.of(
        services.registry.revoke_certificate(caller, serial, reason=body.reason)
    )


# ---- services, grants, subscriptions -----------------------------------------------------


@router.get("/registry/services", summary="What each subsystem provides, publishes, accepts")
def list_services(services: ServicesDep, caller: Caller) -> list[ServiceOut]:
    _reader(caller)
    return [
        ServiceOut(
            subsystem_id=str(s.subsystem),
            message_type=s.message_type,
            role=s.role,
            response_type=s.response_type,
        )
        for s in services.registry.services()
    ]


@router.post("/registry/services", status_code=201, summary="Add a service", responses=_CHANGE)
def add_service(body: ServiceIn, services: ServicesDep, caller: Caller) -> ServiceOut:
    added = services.registry.add_service(
        caller,
        body.subsystem_id,
        body.message_type,
        role=body.role,
        response_type=body.response_type,
        reason=body.reason,
    )
    return ServiceOut(
        subsystem_id=str(added.subsystem),
        message_type=added.message_type,
        role=added.role,
        response_type=added.response_type,
    )


@router.post(
    "/registry/services/remove", status_code=204, summary="Remove a service", responses=_NOT_FOUND
)
def remove_service(body: ServiceKeyIn, services: ServicesDep, caller: Caller) -> None:
    services.registry.remove_service(
        caller, body.subsystem_id, body.message_type, role=body.role, reason=body.reason
    )


@router.get("/registry/grants", summary="Who may send which type to whom")
def list_grants(services: ServicesDep, caller: Caller) -> list[GrantOut]:
    _reader(caller)
    return [GrantOut.of(g) for g in services.registry.grants()]


@router.post("/registry/grants", status_code=201, summary="Add a grant", responses=_CHANGE)
def add_grant(body: GrantIn, services: ServicesDep, caller: Caller) -> GrantOut:
    added = services.registry.add_grant(
        caller,
        body.sender,
        body.message_type,
        body.recipient,
        purpose=body.purpose,
        legal_basis=body.legal_basis,
        legal_reference=body.legal_reference,
        expires=body.expires,
        reason=body.reason,
    )
    return GrantOut.of(added)


@router.post(
    "/registry/grants/remove", status_code=204, summary="Remove a grant", responses=_NOT_FOUND
)
def remove_grant(body: GrantRemoveIn, services: ServicesDep, caller: Caller) -> None:
    services.registry.remove_grant(
        caller,
        body.sender,
        body.message_type,
        body.recipient,
        purpose=body.purpose,
        reason=body.reason,
    )


@router.get("/registry/subscriptions", summary="Who receives which events")
def list_subscriptions(services: ServicesDep, caller: Caller) -> list[SubscriptionOut]:
    _reader(caller)
    return [SubscriptionOut.of(g) for g in services.registry.subscriptions()]


@router.post(
    "/registry/subscriptions", status_code=201, summary="Add a subscription", responses=_CHANGE
)
def add_subscription(
    body: SubscriptionIn, services: ServicesDep, caller: Caller
) -> SubscriptionOut:
    added = services.registry.add_subscription(
        caller,
        body.subscriber,
        body.topic,
        purpose=body.purpose,
        legal_basis=body.legal_basis,
        legal_reference=body.legal_reference,
        expires=body.expires,
        reason=body.reason,
    )
    return SubscriptionOut.of(added)


@router.post(
    "/registry/subscriptions/remove",
    status_code=204,
    summary="Remove a subscription",
    responses=_NOT_FOUND,
)
def remove_subscription(body: SubscriptionRemoveIn, services: ServicesDep, caller: Caller) -> None:
    services.registry.remove_subscription(caller, body.subscriber, body.topic, reason=body.reason)


# ---- the directory -----------------------------------------------------------------------


@router.post(
    "/directory",
    status_code=201,
    summary="Sign the registry as the next directory (operators)",
    responses=problem_responses(409),
)
def publish_directory(
    body: PublishDirectoryIn, services: ServicesDep, caller: Caller
) -> DirectoryOut:
    require_role(caller, OPERATORS, "registry.publish_directory", "publish the directory")
    ca = _ca_store(services.settings)
    document = services.registry.publish_directory(
        caller,
        ca.ca,
        valid_for=timedelta(hours=body.valid_hours),
        instance=ca.instance,
        also_revoked=ca.revoked_serials(),
        reason=body.reason,
    )
    directory = json.loads(document)["directory"]
    return DirectoryOut(
        serial=directory["serial"],
        instance=directory["instance"],
        issued=directory["issued"],
        expires=directory["expires"],
        sha256=hashlib.sha256(document).hexdigest(),
        members=len(directory["members"]),
        certificates=len(directory["certificates"]),
        revoked=len(directory["revoked"]),
    )


@public.get(
    "/directory/latest",
    summary="The latest signed directory (no token needed)",
    response_class=Response,
    responses={
        200: {
            "description": "The signed directory, as published",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **problem_responses(404, 503),
    },
)
def latest_directory(services: ServicesDep) -> Response:
    published = services.registry.published()
    if published is None:
        raise ApiProblem(404, "no-directory", "no directory has been published yet")
    return Response(
        published.document,
        media_type="application/json",
        headers={"X-Tabadul-Directory-Serial": str(published.serial)},
    )


__all__ = ["public", "router"]
