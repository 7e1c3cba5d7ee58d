"""API security, over the application as it is served (uvicorn on a free port, httpx clients):
who may call which operation, what a caller without a valid token gets, how tokens expire and
are revoked, how guessing tokens is slowed down, and that a token's secret is never logged,
echoed or stored.

The authorisation matrix is built from the application's own OpenAPI document. Every
operation must be in POLICY (who may call it, read from the route code, ``tabadul.api._auth``
and governance's role checks) or in PUBLIC: a new endpoint fails
test_every_operation_is_classified until someone decides who may call it. Each operation is
then called with every credential class: none, malformed, a valid token under another scheme,
unknown, a forged secret, expired, revoked, a disabled person's, and one token per role in the
owning agency (DOUANE) and in another. Each call gets its own fresh target (a dataset in the
state the operation needs, a subsystem, a person, a token), so an allowed call is expected to
succeed, and a refused call is checked to have changed nothing (the audit log did not grow).

What the code does, and these tests pin down:

- Another agency's dataset is hidden from whoever may not read it (anyone but its agency's
  people, operators and auditors): reading or acting on one answers exactly what an unknown
  id answers, 404 ``unknown-dataset``, before the role is looked at. So does another
  person's token to anyone but its holder and operators (404 ``not-found``).
- Otherwise a wrong role is ``wrong-role`` before the agency is looked at.
- Publishing and withdrawing here stop at the dataset's state (``illegal-transition``), after
  the role and agency checks, so the portal is never reached.
- The routes outside the OpenAPI document (documentation, ``/``, the console) are classified
  in PAGES: the console's pages need a live session (the token in a cookie, checked on every
  request), its sign-in form shares the API's throttle.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi import FastAPI
from starlette.routing import Route

from exchange import CAStore, SubsystemId, cert_to_pem, format_time, utcnow
from governance import SIGN_IN_LIMIT, Role, Tokens
from tabadul._services import BadSetting, Services, Settings
from tabadul.api import RedactTokens, create_app, server_log_config
from tabadul.console import console_router
from tests.api.conftest import (
    CA_PASSPHRASE,
    CLASSIFIED_PUBLIC,
    CLOSED_URL,
    PROBLEM,
    Api,
    dataset_body,
    is_problem,
    issue_tokens,
    register_people,
)
from tests.governance.conftest import PEOPLE
from tests.support.served import Served

OWNER = "DOUANE"  # the agency owning every dataset the matrix acts on
# Beside tests/governance's PEOPLE: an operator inside the owning agency, an auditor of
# another agency, and an operator whose account is disabled once her token is issued.
EXTRA_PEOPLE = {
    "olga": ("DOUANE", ["operator"]),
    "hakim": ("MEF", ["auditor"]),
    "dora": ("DOUANE", ["operator"]),
    "dalila": ("DNUM", ["dpo"]),
}
EVERYONE = {**PEOPLE, **EXTRA_PEOPLE}
# One token per role, in the owning agency and in another.
ROLE_HOLDERS = {
    "operator of DOUANE": "olga",
    "operator of DNUM": "root",
    "steward of DOUANE": "amina",
    "steward of MEF": "yasmine",
    "approver of DOUANE": "karim",
    "approver of MEF": "omar",
    "auditor of DOUANE": "audrey",
    "auditor of MEF": "hakim",
    "data-protection officer": "dalila",
}
THIRD_PERSON = "samir"  # a DOUANE steward no credential class belongs to
CSV = b"code,rate\n0101,2.5\n0102,10\n"
LODGED = "customs.declaration-lodged"  # an event type
LOOKUP = "civil.person-lookup.request"  # a request type
UNKNOWN_TOKEN = "tbd_" + "0" * 16 + "." + "A" * 43  # well formed, never issued
PROBLEM_TYPE = "urn:tabadul:problem:"


# ---- the policy ----------------------------------------------------------------------------

ALL_ROLES = frozenset(Role)
OPERATOR = frozenset({Role.OPERATOR})
OVERSIGHT = frozenset({Role.OPERATOR, Role.AUDITOR})  # they read every agency


@dataclass(frozen=True)
class Rule:
    """Who may call: holders of one of ``roles``; with ``agency_bound``, only people of the
    dataset's agency, unless they hold one of ``anywhere``. With ``hidden``, the target is
    kept from whoever may not see it (people of the owning agency, and holders of
    ``seen_by``): they get the 404 ``hidden`` code a missing target gets."""

    roles: frozenset[Role]
    agency_bound: bool = False
    anywhere: frozenset[Role] = frozenset()
    hidden: str | None = None
    seen_by: frozenset[Role] = OVERSIGHT

    def sees(self, who: Credential) -> bool:
        return bool(who.roles & self.seen_by) or (self.agency_bound and who.agency == OWNER)

    def refusal(self, who: Credential) -> tuple[int, str] | None:
        """The (status, code) ``who`` is refused with, or None when they may call."""
        if not who.valid:
            return 401, "unauthenticated"
        if self.hidden is not None and not self.sees(who):
            return 404, self.hidden
        if not who.roles & self.roles:
            return 403, "wrong-role"
        if self.agency_bound and who.agency != OWNER and not who.roles & self.anywhere:
            return 403, "other-agency"
        return None


ANYONE = Rule(ALL_ROLES)  # any valid token (every valid holder has a role)
OVERSEERS = Rule(OVERSIGHT)
OPERATORS = Rule(OPERATOR)
STEWARDS = Rule(frozenset({Role.STEWARD}))  # registering: in one's own agency
READERS = Rule(ALL_ROLES, agency_bound=True, anywhere=OVERSIGHT)  # listing an agency's
# One dataset: to whoever may not read it, another agency's dataset is as unknown as a
# missing one.
ONE_DATASET = {"agency_bound": True, "hidden": "unknown-dataset"}
DATASET_READERS = Rule(ALL_ROLES, anywhere=OVERSIGHT, **ONE_DATASET)
OWNING_STEWARDS = Rule(frozenset({Role.STEWARD}), **ONE_DATASET)
OWNING_APPROVERS = Rule(frozenset({Role.APPROVER}), **ONE_DATASET)
PUBLISHERS = Rule(frozenset({Role.STEWARD, Role.OPERATOR}), anywhere=OPERATOR, **ONE_DATASET)
WITHDRAWERS = Rule(
    frozenset({Role.STEWARD, Role.APPROVER, Role.OPERATOR}), anywhere=OPERATOR, **ONE_DATASET
)
# Another person's token: only operators manage it; to anyone else it is as unknown as a
# token never issued.
OTHERS_TOKENS = Rule(OPERATOR, hidden="not-found", seen_by=OPERATOR)


@dataclass(frozen=True)
class Credential:
    """A class of caller: ``header`` is the Authorization value (None: none sent); ``token``
    what a console session cookie would hold; ``valid`` whether the token authenticates."""

    name: str
    header: str | None
    token: str | None = None
    valid: bool = False
    user: str | None = None
    roles: frozenset[Role] = frozenset()
    agency: str | None = None


@dataclass
class Call:
    """One request's variable parts: path parameters, query, JSON body or multipart form."""

    path: dict[str, str] = field(default_factory=dict)
    json: Any = None
    params: dict[str, str] | None = None
    files: dict[str, Any] | None = None
    data: dict[str, str] | None = None


@dataclass
class World:
    """The served application over one database: people, their tokens, a CA, a client per
    credential class; ``fresh`` names new targets."""

    app: FastAPI
    services: Services
    served: Served
    ca: CAStore
    tokens: dict[str, str]
    credentials: list[Credential]
    counter: Iterator[int] = field(default_factory=itertools.count)
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"

    def client(self, who: Credential) -> httpx.Client:
        if who.name not in self.clients:
            headers = {"Authorization": who.header} if who.header else {}
            self.clients[who.name] = self.served.client(headers=headers)
        return self.clients[who.name]

    def audit_seq(self) -> int:
        return self.services.workflow.audit.entries(limit=1)[-1].seq

    def call(self, who: Credential, method: str, template: str, call: Call) -> httpx.Response:
        return self.client(who).request(
            method,
            template.format(**call.path),
            json=call.json,
            params=call.params,
            files=call.files,
            data=call.data,
        )


# Preparing a call: a fresh target for ``caller`` (None for the refused classes).
Prepare = Callable[[World, str | None], Call]


@dataclass(frozen=True)
class Case:
    """One way of calling an operation: who may (``rule``), the fresh target (``prepare``)
    and, when an allowed call cannot succeed here, the business refusal it gets instead."""

    rule: Rule
    prepare: Prepare
    what: str = ""
    business_refusal: str | None = None


def _dataset(world: World, state: str, findings: tuple[str, ...] = ()) -> str:
    """A new dataset of DOUANE (amina's) brought to ``state`` through governance."""
    flow = world.services.workflow
    dataset_id = world.fresh("ds-")
    flow.register_dataset("amina", **dataset_body(dataset_id))
    if state == "DRAFT":
        return dataset_id
    flow.classify("amina", dataset_id, **CLASSIFIED_PUBLIC)
    if state == "CLASSIFIED":
        return dataset_id
    digest = hashlib.sha256(dataset_id.encode()).hexdigest()
    flow.submit_for_review("amina", dataset_id, content_sha256=digest, pii_findings=findings)
    if state == "IN_REVIEW":
        return dataset_id
    assert state == "REJECTED"
    flow.reject("karim", dataset_id, reason="not yet")
    return dataset_id


def _subsystem(world: World) -> str:
    member = "MA/GOV/" + world.fresh("M")
    world.services.registry.add_member("root", member, name="A member")
    return world.services.registry.add_subsystem("root", f"{member}/APP")


def _certificate(world: World, subsystem: str) -> tuple[str, str]:
    """A certificate the CA issues for ``subsystem``: (PEM, hexadecimal serial)."""
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    cert = world.ca.issue(SubsystemId.parse(subsystem), key)
    return cert_to_pem(cert), f"{cert.serial_number:x}"


def _registered_certificate(world: World) -> str:
    subsystem = _subsystem(world)
    pem, serial = _certificate(world, subsystem)
    world.services.registry.register_certificate(
        "root", subsystem, pem, ca_certificate=world.ca.ca.certificate
    )
    return serial


def _spare_token(world: World, user: str) -> str:
    return world.services.tokens.issue("root", user, label="spare").record.token_id


def _person(world: World) -> str:
    user_id = world.fresh("person")
    world.services.workflow.register_user(
        "root", user_id, name="Victim", agency=OWNER, roles=["steward"]
    )
    return user_id


def _as_is(_world: World, _caller: str | None) -> Call:
    return Call()


def _on_dataset(state: str, findings: tuple[str, ...] = (), **body: Any) -> Prepare:
    def prepare(world: World, _caller: str | None) -> Call:
        return Call({"dataset_id": _dataset(world, state, findings)}, json=body or None)

    return prepare


def _submission(world: World, _caller: str | None) -> Call:
    return Call(
        {"dataset_id": _dataset(world, "CLASSIFIED")},
        files={"file": ("tariffs.csv", CSV, "text/csv")},
        data={"reason": "yearly update"},
    )


def _service(world: World, *, add: bool) -> Call:
    body = {"subsystem_id": _subsystem(world), "message_type": LODGED, "role": "publishes"}
    if add:
        world.services.registry.add_service("root", **body)
    return Call(json=body)


_TERMS = {"purpose": "security-test", "legal_basis": "test"}


def _grant(world: World, *, add: bool) -> Call:
    body = {"sender": _subsystem(world), "message_type": LOOKUP, "recipient": _subsystem(world)}
    if add:
        world.services.registry.add_grant("root", **body, **_TERMS)
        return Call(json=body)
    return Call(json={**body, **_TERMS})


def _subscription(world: World, *, add: bool) -> Call:
    body = {"subscriber": _subsystem(world), "topic": LODGED}
    if add:
        world.services.registry.add_subscription("root", **body, **_TERMS)
        return Call(json=body)
    return Call(json={**body, **_TERMS})


def _certificate_body(world: World, _caller: str | None) -> Call:
    subsystem = _subsystem(world)
    return Call(json={"subsystem_id": subsystem, "pem": _certificate(world, subsystem)[0]})


REASON = {"reason": "security matrix"}
_LETTER = {"slug": "MA.GOV.MEF.TAX", "seq": 1}

POLICY: dict[tuple[str, str], tuple[Case, ...]] = {
    # ---- people and tokens (tabadul/api/_routes_users.py, governance Tokens) ----
    ("GET", "/me"): (Case(ANYONE, _as_is),),
    ("GET", "/users"): (Case(OVERSEERS, _as_is),),
    ("POST", "/users"): (
        Case(
            OPERATORS,
            lambda w, _c: Call(
                json={"user_id": w.fresh("new"), "name": "N", "agency": OWNER, "roles": ["steward"]}
            ),
        ),
    ),
    ("GET", "/users/{user_id}"): (
        Case(ANYONE, lambda _w, c: Call({"user_id": c or THIRD_PERSON}), "oneself"),
        Case(OVERSEERS, lambda _w, _c: Call({"user_id": THIRD_PERSON}), "another person"),
    ),
    ("PUT", "/users/{user_id}/roles"): (
        Case(
            OPERATORS,
            lambda w, _c: Call({"user_id": _person(w)}, {"roles": ["approver"], **REASON}),
        ),
    ),
    ("POST", "/tokens"): (
        Case(ANYONE, lambda _w, _c: Call(json={"label": "mine"}), "for oneself"),
        Case(
            OPERATORS,
            lambda _w, _c: Call(json={"label": "theirs", "user_id": THIRD_PERSON}),
            "for another person",
        ),
    ),
    ("GET", "/tokens"): (
        Case(ANYONE, _as_is, "one's own"),
        Case(OVERSEERS, lambda _w, _c: Call(params={"user_id": THIRD_PERSON}), "another's"),
    ),
    ("POST", "/tokens/{token_id}/revoke"): (
        Case(
            ANYONE,
            lambda w, c: Call({"token_id": _spare_token(w, c or THIRD_PERSON)}, REASON),
            "one's own",
        ),
        Case(
            OTHERS_TOKENS,
            lambda w, _c: Call({"token_id": _spare_token(w, THIRD_PERSON)}, REASON),
            "another's",
        ),
    ),
    # ---- datasets (tabadul/api/_routes_datasets.py, governance ROLES and check_action) ----
    ("GET", "/datasets"): (
        Case(ANYONE, _as_is, "one's own agency's"),
        Case(READERS, lambda _w, _c: Call(params={"agency": OWNER}), "the owning agency's"),
    ),
    ("POST", "/datasets"): (
        Case(STEWARDS, lambda w, _c: Call(json=dataset_body(w.fresh("new-")))),
    ),
    ("GET", "/datasets/{dataset_id}"): (Case(DATASET_READERS, _on_dataset("IN_REVIEW")),),
    ("GET", "/datasets/{dataset_id}/history"): (Case(DATASET_READERS, _on_dataset("DRAFT")),),
    ("GET", "/datasets/{dataset_id}/quality"): (Case(DATASET_READERS, _on_dataset("DRAFT")),),
    ("POST", "/datasets/{dataset_id}/classify"): (
        Case(OWNING_STEWARDS, _on_dataset("DRAFT", **CLASSIFIED_PUBLIC)),
    ),
    ("POST", "/datasets/{dataset_id}/submit"): (Case(OWNING_STEWARDS, _submission),),
    ("POST", "/datasets/{dataset_id}/resolve"): (
        Case(
            OWNING_STEWARDS,
            _on_dataset(
                "IN_REVIEW",
                ("code:phone",),
                finding_id="code:phone",
                resolution="justify",
                reason="tariff codes, not phone numbers",
            ),
        ),
    ),
    ("POST", "/datasets/{dataset_id}/approve"): (
        Case(OWNING_APPROVERS, _on_dataset("IN_REVIEW", reason="checked")),
    ),
    ("POST", "/datasets/{dataset_id}/reject"): (
        Case(OWNING_APPROVERS, _on_dataset("IN_REVIEW", **REASON)),
    ),
    ("POST", "/datasets/{dataset_id}/reopen"): (
        Case(OWNING_STEWARDS, _on_dataset("REJECTED", **REASON)),
    ),
    # not approved: refused by its state, after the role and agency checks, before the portal
    ("POST", "/datasets/{dataset_id}/publish"): (
        Case(PUBLISHERS, _on_dataset("IN_REVIEW"), business_refusal="illegal-transition"),
    ),
    ("POST", "/datasets/{dataset_id}/withdraw"): (
        Case(
            WITHDRAWERS,
            _on_dataset("CLASSIFIED", **REASON),
            business_refusal="illegal-transition",
        ),
    ),
    # ---- the registry (tabadul/api/_routes_registry.py, governance Registry._changing) ----
    ("GET", "/registry/members"): (Case(ANYONE, _as_is),),
    ("POST", "/registry/members"): (
        Case(
            OPERATORS, lambda w, _c: Call(json={"member_id": "MA/GOV/" + w.fresh("N"), "name": "N"})
        ),
    ),
    ("GET", "/registry/subsystems"): (Case(ANYONE, _as_is),),
    ("POST", "/registry/subsystems"): (
        Case(OPERATORS, lambda w, _c: Call(json={"subsystem_id": _subsystem(w) + "2"})),
    ),
    ("GET", "/registry/certificates"): (Case(ANYONE, _as_is),),
    ("POST", "/registry/certificates"): (Case(OPERATORS, _certificate_body),),
    ("POST", "/registry/certificates/{serial}/retire"): (
        Case(
            OPERATORS,
            lambda w, _c: Call(
                {"serial": _registered_certificate(w)}, {"retire_after": "2030-01-01T00:00:00Z"}
            ),
        ),
    ),
    ("POST", "/registry/certificates/{serial}/revoke"): (
        Case(OPERATORS, lambda w, _c: Call({"serial": _registered_certificate(w)}, REASON)),
    ),
    ("GET", "/registry/services"): (Case(ANYONE, _as_is),),
    ("POST", "/registry/services"): (Case(OPERATORS, lambda w, _c: _service(w, add=False)),),
    ("POST", "/registry/services/remove"): (Case(OPERATORS, lambda w, _c: _service(w, add=True)),),
    ("GET", "/registry/grants"): (Case(ANYONE, _as_is),),
    ("POST", "/registry/grants"): (Case(OPERATORS, lambda w, _c: _grant(w, add=False)),),
    ("POST", "/registry/grants/remove"): (Case(OPERATORS, lambda w, _c: _grant(w, add=True)),),
    ("GET", "/registry/subscriptions"): (Case(ANYONE, _as_is),),
    ("POST", "/registry/subscriptions"): (
        Case(OPERATORS, lambda w, _c: _subscription(w, add=False)),
    ),
    ("POST", "/registry/subscriptions/remove"): (
        Case(OPERATORS, lambda w, _c: _subscription(w, add=True)),
    ),
    ("POST", "/directory"): (Case(OPERATORS, lambda _w, _c: Call(json={"valid_hours": 1})),),
    # ---- the audit log and the traffic (tabadul/api/_routes_audit.py, _routes_traffic.py) ----
    ("GET", "/audit/entries"): (Case(OVERSEERS, _as_is),),
    ("GET", "/audit/verify"): (Case(OVERSEERS, _as_is),),
    ("GET", "/traffic"): (Case(OVERSEERS, _as_is),),
    # ---- dead letters (tabadul/api/_routes_dead_letters.py): no connector is managed here,
    # so an allowed call on one dead letter finds no connector of that slug
    ("GET", "/v1/dead-letters"): (Case(OVERSEERS, _as_is),),
    ("GET", "/v1/dead-letters/{slug}/{seq}"): (
        Case(OVERSEERS, lambda _w, _c: Call(_LETTER), business_refusal="unknown-connector"),
    ),
    ("POST", "/v1/dead-letters/{slug}/{seq}/resend"): (
        Case(
            OPERATORS, lambda _w, _c: Call(_LETTER, json={}), business_refusal="unknown-connector"
        ),
    ),
    ("POST", "/v1/dead-letters/{slug}/{seq}/discard"): (
        Case(
            OPERATORS,
            lambda _w, _c: Call(_LETTER, json=REASON),
            business_refusal="unknown-connector",
        ),
    ),
    # ---- data subjects (tabadul/api/_routes_subjects.py) ----
    ("GET", "/v1/subjects/{subject_id}/accesses"): (
        Case(
            Rule(frozenset({Role.OPERATOR, Role.DPO})),
            lambda _w, _c: Call({"subject_id": "BE123456"}),
        ),
    ),
}
# Operations anyone may call, with or without a token, and why.
PUBLIC = {
    ("GET", "/directory/latest"): "connectors download it; it is signed by the CA",
}
# Routes outside the OpenAPI document. public: anyone; sign-in: the console's sign-in form;
# session: a console page that needs a live session (the API token in its cookie).
PAGES = {
    ("GET", "/"): "public",
    ("GET", "/openapi.json"): "public",
    ("GET", "/docs"): "public",
    ("GET", "/docs/oauth2-redirect"): "public",
    ("GET", "/redoc"): "public",
    ("GET", "/console/"): "session",
    ("GET", "/console/static/{name}"): "public",
    ("GET", "/console/signin"): "public",
    ("POST", "/console/signin"): "sign-in",
    ("POST", "/console/signout"): "session",
    ("GET", "/console/datasets"): "session",
    ("GET", "/console/datasets/{dataset_id}"): "session",
    ("POST", "/console/datasets/{dataset_id}/classify"): "session",
    ("POST", "/console/datasets/{dataset_id}/submit"): "session",
    ("POST", "/console/datasets/{dataset_id}/resolve"): "session",
    ("POST", "/console/datasets/{dataset_id}/approve"): "session",
    ("POST", "/console/datasets/{dataset_id}/reject"): "session",
    ("POST", "/console/datasets/{dataset_id}/reopen"): "session",
    ("POST", "/console/datasets/{dataset_id}/publish"): "session",
    ("POST", "/console/datasets/{dataset_id}/withdraw"): "session",
    ("GET", "/console/audit"): "session",
    ("GET", "/console/traffic"): "session",
    ("GET", "/console/dead-letters"): "session",
    ("GET", "/console/dead-letters/{slug}/{seq}"): "session",
    ("POST", "/console/dead-letters/{slug}/{seq}/payload"): "session",
    ("POST", "/console/dead-letters/{slug}/{seq}/resend"): "session",
    ("POST", "/console/dead-letters/{slug}/{seq}/discard"): "session",
}
# The console's pages for operators and auditors only; the others are for anyone with a role.
CONSOLE_OVERSIGHT = {
    "/console/audit",
    "/console/traffic",
    "/console/dead-letters",
    "/console/dead-letters/{slug}/{seq}",
}


# ---- the matrix's world ----------------------------------------------------------------------


def _token_id(token: str) -> str:
    return token.removeprefix("tbd_").split(".")[0]


def _refused_credentials(services: Services, tokens: dict[str, str]) -> list[Credential]:
    """Every way of not being authenticated; where a token is involved, an operator's."""
    store = services.store
    olga = tokens["olga"]
    two_days_ago = utcnow() - timedelta(days=2)
    expired = (
        Tokens(store, clock=lambda: two_days_ago)
        .issue("root", "olga", label="expired", ttl=timedelta(days=1))
        .token
    )
    revoked = services.tokens.issue("root", "olga", label="revoked").token
    services.tokens.revoke("root", _token_id(revoked), reason="laptop lost")
    disabled = tokens["dora"]
    services.workflow.set_roles("root", "dora", [], reason="left the platform team")
    forged = f"tbd_{_token_id(olga)}." + "B" * 43
    return [
        Credential("no token", None),
        Credential("malformed token", "Bearer not-a-token", "not-a-token"),
        Credential("a valid token under another scheme", f"Basic {olga}"),
        Credential("unknown token", f"Bearer {UNKNOWN_TOKEN}", UNKNOWN_TOKEN),
        Credential("forged secret", f"Bearer {forged}", forged),
        Credential("expired token", f"Bearer {expired}", expired),
        Credential("revoked token", f"Bearer {revoked}", revoked),
        Credential("disabled person", f"Bearer {disabled}", disabled),
    ]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The application with its console, over a fresh database and a CA, with the people of
    EVERYONE and the credentials of every class. Throttling is off here (a limit no test
    reaches): the refused classes fail on purpose, hundreds of times; it has its own tests."""
    root = tmp_path_factory.mktemp("matrix")
    with ExitStack() as stack:
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        patch.setenv("TABADUL_CA_PASSPHRASE", CA_PASSPHRASE)
        ca = CAStore.init(root / "ca", "MA", CA_PASSPHRASE.encode())
        settings = Settings(
            governance_db=str(root / "governance.sqlite"),
            data_dir=root / "data",
            ckan_url=CLOSED_URL,
            ca_dir=root / "ca",
            sign_in_limit=1_000_000,
        )
        services = Services.open(settings)
        stack.callback(services.close)
        register_people(services, EVERYONE)
        tokens = issue_tokens(services, EVERYONE)
        credentials = _refused_credentials(services, tokens)
        for name, user in ROLE_HOLDERS.items():
            agency, roles = EVERYONE[user]
            credentials.append(
                Credential(
                    name,
                    f"Bearer {tokens[user]}",
                    tokens[user],
                    valid=True,
                    user=user,
                    roles=frozenset(Role(r) for r in roles),
                    agency=agency,
                )
            )
        app = create_app(services)
        served = Served(app)
        stack.callback(served.close)
        made = World(app, services, served, ca, tokens, credentials)
        operator = next(c for c in credentials if c.user == "root")
        published = made.client(operator).post("/directory", json={})
        assert published.status_code == 201, published.text
        yield made


def _check(response: httpx.Response, refusal: tuple[int, str] | None, business: str | None):
    """What is wrong with ``response`` (None: nothing), given the expected refusal, or None
    for an allowed call (which succeeds, or gets the ``business`` refusal)."""
    if refusal is not None:
        return _refused_wrongly(response, *refusal)
    status, text = response.status_code, response.text[:300]
    if business is None:
        return None if 200 <= status < 300 else f"allowed, but {status}: {text}"
    code = response.json().get("code") if response.headers.get("content-type") == PROBLEM else None
    if status in {401, 403} or code != business:
        return f"allowed, expected {business}, got {status} {code}: {text}"
    return None


def _refused_wrongly(response: httpx.Response, status: int, code: str) -> str | None:
    """What is wrong with ``response`` as the problem document of ``status`` and ``code``;
    a 401 also names the scheme to use."""
    got, text = response.status_code, response.text[:300]
    if got != status or response.headers.get("content-type") != PROBLEM:
        return f"expected {status} {code}, got {got}: {text}"
    body = response.json()
    if (body.get("status"), body.get("code"), body.get("type")) != (
        status,
        code,
        PROBLEM_TYPE + code,
    ):
        return f"expected {status} {code}, got {got} {body.get('code')}: {text}"
    if status == 401 and not response.headers.get("www-authenticate", "").startswith("Bearer"):
        return "a 401 without WWW-Authenticate: Bearer"
    return None


def _declared_path_parameters(document: dict[str, Any], method: str, template: str) -> set[str]:
    operation = document["paths"][template][method.lower()]
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}


# ---- the matrix --------------------------------------------------------------------------------


def test_every_operation_is_classified(world):
    """Every operation of the OpenAPI document is in POLICY or PUBLIC (a new endpoint must be
    classified), nothing stale is left there, and the document announces 401/403/429 for the
    protected operations and no 401 for the public ones, and 400/413/422 for every body."""
    document = world.app.openapi()
    operations = _operations(document)
    assert operations - POLICY.keys() - PUBLIC.keys() == set(), "unclassified operations"
    assert (POLICY.keys() | PUBLIC.keys()) - operations == set(), "operations that are gone"
    assert not POLICY.keys() & PUBLIC.keys()
    for method, path in operations:
        documented = set(document["paths"][path][method.lower()]["responses"])
        if (method, path) in PUBLIC:
            assert "401" not in documented, (method, path)
        else:
            assert {"401", "403", "429"} <= documented, (method, path)
        if "requestBody" in document["paths"][path][method.lower()]:
            assert {"400", "413", "422"} <= documented, (method, path)  # the body's limits


@pytest.mark.parametrize("operation", sorted(POLICY), ids=" ".join)
def test_authorisation_matrix(world, operation):
    """Each credential class gets what the policy says: the refused classes 401
    unauthenticated (with WWW-Authenticate), a wrong role 403 wrong-role, another agency 403
    other-agency, and nothing changes; an allowed caller succeeds (or, where the setting
    cannot let it, gets the stated business refusal, never 401/403)."""
    method, template = operation
    declared = _declared_path_parameters(world.app.openapi(), method, template)
    failures = []
    calls = 0
    for case in POLICY[operation]:
        shared = case.prepare(world, None)
        for who in world.credentials:
            call = case.prepare(world, who.user) if who.valid else shared
            assert set(call.path) == declared, (case.what, sorted(call.path), sorted(declared))
            before = world.audit_seq()
            response = world.call(who, method, template, call)
            calls += 1
            refusal = case.rule.refusal(who)
            wrong = _check(response, refusal, case.business_refusal)
            if wrong is None and refusal is not None and world.audit_seq() != before:
                wrong = "refused, yet the audit log grew: something changed"
            if wrong is not None:
                failures.append(f"{case.what or 'call'} as {who.name}: {wrong}")
    assert calls == len(POLICY[operation]) * len(world.credentials) == len(POLICY[operation]) * 17
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("operation", sorted(PUBLIC), ids=" ".join)
def test_public_operations_answer_every_caller(world, operation):
    """A public operation answers with or without a token, a good one or a bad one."""
    method, path = operation
    for who in world.credentials:
        response = world.client(who).request(method, path)
        assert response.status_code == 200, (who.name, response.text)
        assert response.headers["content-type"] == "application/json"
        assert int(response.headers["x-tabadul-directory-serial"]) >= 1


MISSING = "no-such-dataset"


def _as_missing(response: httpx.Response, dataset_id: str) -> tuple[int, str | None, str]:
    """What a probe can compare: the status, the content type and the body, with the id
    asked for replaced by MISSING."""
    return (
        response.status_code,
        response.headers.get("content-type"),
        response.text.replace(dataset_id, MISSING),
    )


def test_another_agencys_dataset_answers_as_a_missing_one(world):
    """On every operation taking a dataset id, someone who may not read a dataset (another
    agency's steward or approver) gets exactly what an unknown id gets: 404 unknown-dataset,
    the same body but for the id, whatever the dataset's state and whatever the body sent;
    nothing changes. Operators and auditors read every agency's, and get its real state."""
    document = world.app.openapi()
    operations = sorted(op for op in _operations(document) if "{dataset_id}" in op[1])
    assert len(operations) == 11
    outsiders = [
        c for c in world.credentials if c.valid and c.agency != OWNER and not c.roles & OVERSIGHT
    ]
    assert {c.user for c in outsiders} == {"yasmine", "omar", "dalila"}
    compared = 0
    for method, template in operations:
        for case in POLICY[(method, template)]:
            for state in ("DRAFT", "IN_REVIEW"):
                call = case.prepare(world, None)
                existing = call.path["dataset_id"] = _dataset(world, state)
                missing = dataclasses.replace(call, path={"dataset_id": MISSING})
                for who in outsiders:
                    before = world.audit_seq()
                    probe = world.call(who, method, template, call)
                    assert world.audit_seq() == before, (method, template, who.name)
                    unknown = world.call(who, method, template, missing)
                    assert _as_missing(probe, existing) == _as_missing(unknown, MISSING)
                    is_problem(probe, 404, "unknown-dataset")
                    compared += 1
    assert compared == 11 * 2 * len(outsiders)
    root = world.client(next(c for c in world.credentials if c.user == "root"))
    assert root.get(f"/datasets/{_dataset(world, 'DRAFT')}").status_code == 200


def test_the_console_shows_another_agencys_dataset_as_a_missing_one(world):
    """In the console too: another agency's dataset page, and every form posted on it,
    answers what an unknown id answers (a 404 page after the same flash), and changes
    nothing."""
    holders = {c.user: c for c in world.credentials if c.valid}
    browser = world.served.client(follow_redirects=True)
    signed_in = browser.post("/console/signin", data={"token": holders["yasmine"].token})
    assert signed_in.status_code == 200
    csrf = _console_csrf(browser)
    posts = [
        template
        for (method, template), kind in PAGES.items()
        if method == "POST" and "{dataset_id}" in template
    ]
    assert len(posts) == 8
    for state in ("DRAFT", "IN_REVIEW"):
        existing = _dataset(world, state)
        for template in ["/console/datasets/{dataset_id}", *posts]:
            answers = []
            for dataset_id in (existing, MISSING):
                before = world.audit_seq()
                url = template.format(dataset_id=dataset_id)
                if template.endswith("}"):
                    answer = browser.get(url)
                else:
                    form = {"csrf": csrf, "reason": "probe", "level": "PUBLIC", "finding": "a:b"}
                    answer = browser.post(url, data=form)
                assert world.audit_seq() == before, (url, state)
                answers.append(_as_missing(answer, dataset_id))
            assert answers[0] == answers[1], (template, state)
            assert answers[0][0] == 404, (template, state)
            assert 'data-code="unknown-dataset"' in answers[0][2], (template, state)


def _console_csrf(browser: httpx.Client) -> str:
    html = browser.get("/console/datasets").text
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def _texts(value: Any, path: str) -> Iterator[tuple[str, list[str | int]]]:
    """(path, keys) of every text in a JSON value, keys being how to reach it."""
    stack: list[tuple[Any, str, list[str | int]]] = [(value, path, [])]
    while stack:
        item, where, keys = stack.pop()
        if isinstance(item, str):
            yield where, keys
        elif isinstance(item, dict):
            stack += [(v, f"{where}.{k}", [*keys, k]) for k, v in item.items()]
        elif isinstance(item, list):
            stack += [(v, f"{where}.{i}", [*keys, i]) for i, v in enumerate(item)]


def _replaced(value: Any, keys: list[str | int], text: str) -> Any:
    if not keys:
        return text
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[keys[0]] = _replaced(value[keys[0]], keys[1:], text)  # type: ignore[index]
    return copy


def _declared_texts(document: dict[str, Any], method: str, template: str) -> set[str]:
    """The text members an operation's JSON or form body declares at its top level."""
    operation = document["paths"][template][method.lower()]
    content = operation.get("requestBody", {}).get("content", {})
    found = set()
    for media in content.values():
        schema = media["schema"]
        if "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        for name, member in schema.get("properties", {}).items():
            kinds = [member, *member.get("anyOf", [])]
            if any(k.get("type") == "string" and "format" not in k for k in kinds):
                found.add(name)
    return found


def test_every_text_of_every_request_body_is_limited(world):
    """For every operation taking a body, each text of a body that would succeed (however
    deep: titles per language, tags, Table Schema names...) and each text member it may
    have, one character longer than TABADUL_MAX_FIELD_CHARS, is refused with 422
    field-too-long naming it, from a caller allowed to call, and nothing changes."""
    limit = world.services.settings.max_field_chars
    long_text = "ت" * (limit + 1)
    document = world.app.openapi()
    checked = set()
    for (method, template), cases in POLICY.items():
        for case in cases:
            who = next(c for c in world.credentials if c.valid and case.rule.refusal(c) is None)
            call = case.prepare(world, who.user)
            declared = _declared_texts(document, method, template)
            variants: list[tuple[str, Call]] = []
            if call.data is not None or call.files is not None:
                for name in declared | set(call.data or {}):
                    data = {**(call.data or {}), name: long_text}
                    variants.append((f"body.{name}", dataclasses.replace(call, data=data)))
            elif call.json is not None or declared:
                body = call.json or {}
                variants += [
                    (path, dataclasses.replace(call, json=_replaced(body, keys, long_text)))
                    for path, keys in _texts(body, "body")
                ]
                variants += [
                    (f"body.{name}", dataclasses.replace(call, json={**body, name: long_text}))
                    for name in declared - set(body)
                ]
            for path, variant in variants:
                before = world.audit_seq()
                response = world.call(who, method, template, variant)
                problem = is_problem(response, 422, "field-too-long")
                assert [e["path"] for e in problem["errors"]] == [path], (method, template)
                assert long_text not in response.text
                assert world.audit_seq() == before, (method, template, path)
                checked.add((method, template))
    with_bodies = {(m, t) for (m, t) in POLICY if "requestBody" in document["paths"][t][m.lower()]}
    assert checked == with_bodies
    assert len(with_bodies) == 26


# ---- the routes outside the OpenAPI document -------------------------------------------------


def _pages(world: World) -> set[tuple[str, str]]:
    """The application's own routes outside the document (documentation, ``/``) and the
    console's, as mounted under /console."""
    described = _operations(world.app.openapi())
    found = {
        (method, route.path)
        for route in world.app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD" and (method, route.path) not in described
    }
    console = console_router(world.services)
    found |= {
        (method, "/console" + route.path)
        for route in console.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    return found


def test_every_page_is_classified(world):
    """Every route outside the document is listed in PAGES as public or needing a session."""
    assert _pages(world) == set(PAGES)


def test_public_pages_need_no_token(world):
    """The documentation, the redirect at / and the console's sign-in page and stylesheet
    answer a caller without any credential."""
    nobody = world.served.client()
    for (method, template), kind in PAGES.items():
        if kind != "public":
            continue
        response = nobody.request(method, template.format(name="console.css"))
        assert response.status_code in {200, 307}, (template, response.status_code)
        if response.status_code == 307:
            assert (template, response.headers["location"]) == ("/", "/console/")


def test_console_pages_need_a_live_session(world):
    """Without a session cookie, or with one holding a refused token (malformed, unknown,
    forged, expired, revoked, a disabled person's), every console page sends the browser to
    the sign-in page and changes nothing; the sign-in form refuses those tokens with 401 and
    sets no session. A live session reaches the pages; the audit and traffic pages only for
    operators and auditors."""
    dataset_id = _dataset(world, "IN_REVIEW")
    browser = world.served.client()
    refused = [c for c in world.credentials if not c.valid and (c.token or c.header is None)]
    assert len(refused) == 7
    checked = 0
    for (method, template), kind in PAGES.items():
        if kind != "session":
            continue
        url = template.format(dataset_id=dataset_id, slug="MA.GOV.MEF.TAX", seq=1)
        for who in refused:
            before = world.audit_seq()
            cookie = {"Cookie": f"tabadul_console={who.token}"} if who.token else {}
            form = {"csrf": "x", "reason": "r"} if method == "POST" else None
            response = browser.request(method, url, headers=cookie, data=form)
            browser.cookies.clear()
            assert response.status_code == 303, (method, url, who.name, response.status_code)
            assert response.headers["location"].startswith("/console/signin"), (url, who.name)
            assert world.audit_seq() == before, (method, url, who.name)
            checked += 1
    assert checked == 7 * sum(kind == "session" for kind in PAGES.values())

    for who in refused:
        response = browser.post("/console/signin", data={"token": who.token or ""})
        assert response.status_code == 401, who.name
        assert "tabadul_console" not in response.cookies
        browser.cookies.clear()

    holders = {c.user: c for c in world.credentials if c.valid}
    for user in ("amina", "karim", "audrey", "root"):
        token = holders[user].token
        signed_in = browser.post("/console/signin", data={"token": token}, follow_redirects=False)
        assert signed_in.status_code == 303, user
        assert "tabadul_console" in signed_in.cookies
        for (method, template), kind in PAGES.items():
            if kind != "session" or method != "GET":
                continue
            url = template.format(dataset_id=dataset_id, slug="MA.GOV.MEF.TAX", seq=1)
            response = browser.get(url, follow_redirects=False)
            oversight = holders[user].roles & OVERSIGHT
            if template in CONSOLE_OVERSIGHT and not oversight:
                assert response.status_code == 403, (user, template)
            elif "{slug}" in template:  # no connector is managed here
                assert response.status_code == 404, (user, template, response.status_code)
            elif template == "/console/":
                assert response.headers["location"] == "/console/datasets", user
            else:
                assert response.status_code == 200, (user, template, response.status_code)
        browser.cookies.clear()


def test_the_console_shows_people_only_their_agencys_datasets(world):
    """As the API: a steward or approver of another agency sees none of DOUANE's datasets in
    the list (whatever the agency filter asks) and its page is the unknown dataset's 404;
    operators and auditors of any agency read it."""
    dataset_id = _dataset(world, "IN_REVIEW")
    holders = {c.user: c for c in world.credentials if c.valid}
    browser = world.served.client()
    for user, may_read in (("yasmine", False), ("omar", False), ("hakim", True), ("root", True)):
        signed_in = browser.post("/console/signin", data={"token": holders[user].token})
        assert signed_in.status_code in {200, 303}, user
        for query in ("", "?agency=", f"?agency={OWNER}"):
            listing = browser.get(f"/console/datasets{query}")
            assert listing.status_code == 200, (user, query)
            assert (dataset_id in listing.text) is may_read, (user, query)
        page = browser.get(f"/console/datasets/{dataset_id}")
        if may_read:
            assert page.status_code == 200, user
        else:
            assert page.status_code == 404, user
            assert 'data-code="unknown-dataset"' in page.text, user
        browser.cookies.clear()


def test_the_server_log_masks_a_token_in_a_url():
    """`tabadul api serve` runs uvicorn with a filter on every handler: a token pasted into a
    query string reaches the access log with its secret masked, its id kept."""
    token = UNKNOWN_TOKEN
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/me?token={token}", "1.1", 422), None,
    )  # fmt: skip
    assert RedactTokens().filter(record)
    line = record.getMessage()
    assert _secret(token) not in line
    assert f"tbd_{_token_id(token)}.***" in line
    config = server_log_config()
    assert config["handlers"], config
    assert all(h["filters"] == ["redact_tokens"] for h in config["handlers"].values())
    assert config["root"]["handlers"] == ["default"]  # the application's own loggers too
    error = ValueError(f"refused {token}")
    failure = logging.LogRecord(
        "tabadul", logging.ERROR, __file__, 1, "x", (), (ValueError, error, None)
    )
    assert RedactTokens().filter(failure)
    assert failure.exc_text is not None
    assert _secret(token) not in failure.exc_text


# ---- a served API per test, for the throttle, expiry, revocation and secrets ------------------


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """Serve the application (with its console) over a fresh database with PEOPLE and a token
    each; keyword arguments change the settings (throttling at its default)."""
    opened: list[tuple[Api, Services]] = []

    def make(**changes: Any) -> Api:
        settings = Settings(
            governance_db=str(tmp_path / f"governance.{len(opened)}.sqlite"),
            data_dir=tmp_path / "data",
            ckan_url=CLOSED_URL,
            **changes,
        )
        services = Services.open(settings)
        register_people(services, PEOPLE)
        api = Api(Served(create_app(services)), services, issue_tokens(services, PEOPLE))
        opened.append((api, services))
        return api

    yield make
    for api, services in opened:
        api.served.close()
        services.close()


class Clock:
    """A clock that stands still until moved (whole seconds, so expiry times are exact)."""

    def __init__(self) -> None:
        self.now = utcnow().replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


def _with_clock(api: Api, **options: Any) -> Clock:
    """Give the served application token checks that read ``Clock`` (the API and the console
    look ``services.tokens`` up on every request)."""
    clock = Clock()
    api.services.tokens = Tokens(api.services.store, clock=clock, **options)
    return clock


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---- expiry and revocation ---------------------------------------------------------------------


def test_a_token_works_until_it_expires_then_is_refused(serve):
    """A token issued for a day works up to its last second and is a 401 naming the expiry
    from then on, on the same connection; lifetimes are 30 days by default, 1 to 366."""
    api = serve()
    clock = _with_clock(api)
    issued = api("amina").post("/tokens", json={"label": "one day", "ttl_days": 1})
    assert issued.status_code == 201, issued.text
    token, record = issued.json()["token"], issued.json()["record"]
    assert record["expires_at"] == format_time(clock.now + timedelta(days=1))
    holder = api.served.client(headers=_bearer(token))
    assert holder.get("/me").json()["user_id"] == "amina"
    clock.now += timedelta(days=1, seconds=-1)
    assert holder.get("/datasets").status_code == 200
    clock.now += timedelta(seconds=1)
    for path in ("/me", "/datasets", "/tokens"):
        response = holder.get(path)
        body = is_problem(response, 401, "unauthenticated")
        assert "expired" in body["detail"]
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert api("amina").get("/me").status_code == 200  # her other token lives on

    # issued with a token that outlives them both (a minted token dies with its parent)
    year = api.services.tokens.issue("amina", "amina", label="a year", ttl=timedelta(days=366))
    issuer = api.served.client(headers=_bearer(year.token))
    default = issuer.post("/tokens", json={"label": "default"}).json()["record"]
    assert default["expires_at"] == format_time(clock.now + timedelta(days=30))
    for days in (0, 367):
        refused = issuer.post("/tokens", json={"label": "x", "ttl_days": days})
        is_problem(refused, 422, "invalid-request")


def test_a_token_minted_with_a_leaked_token_dies_with_it(serve):
    """A token issued through the API with a token expires no later than that token, however
    long it asks to live, and is revoked with it, transitively: a leaked one-day token cannot
    mint a token that outlives it or its revocation. Its record names its parent."""
    api = serve()
    clock = _with_clock(api)
    day = api("amina").post("/tokens", json={"label": "one day", "ttl_days": 1}).json()
    leaked = api.served.client(headers=_bearer(day["token"]))
    minted = leaked.post("/tokens", json={"label": "a year", "ttl_days": 366})
    assert minted.status_code == 201, minted.text
    record = minted.json()["record"]
    assert record["expires_at"] == day["record"]["expires_at"]
    assert record["parent_token_id"] == day["record"]["token_id"]
    assert day["record"]["parent_token_id"] == _token_id(api.tokens["amina"])
    child = api.served.client(headers=_bearer(minted.json()["token"]))
    grandchild_token = child.post("/tokens", json={"label": "again", "ttl_days": 366}).json()
    grandchild = api.served.client(headers=_bearer(grandchild_token["token"]))
    assert grandchild.get("/me").json()["user_id"] == "amina"

    clock.now += timedelta(days=1)
    for holder in (leaked, child, grandchild):
        assert "expired" in is_problem(holder.get("/me"), 401, "unauthenticated")["detail"]
    clock.now -= timedelta(days=1)
    revoked = api("amina").post(
        f"/tokens/{day['record']['token_id']}/revoke", json={"reason": "leaked"}
    )
    assert revoked.status_code == 200
    for holder in (leaked, child, grandchild):
        assert "revoked" in is_problem(holder.get("/me"), 401, "unauthenticated")["detail"]
    listed = {t["token_id"]: t for t in api("amina").get("/tokens").json()}
    for issued in (minted.json(), grandchild_token):
        assert listed[issued["record"]["token_id"]]["revoked_at"] is not None
    assert api("amina").get("/me").status_code == 200  # the token that minted the leaked one


def test_revocation_and_disabling_take_effect_at_the_next_request(serve):
    """A revoked token is refused at its very next request, on the connection it used; the
    holder's other tokens live on; only the holder or an operator revokes. Taking every role
    away revokes the person's tokens at once, and giving one back does not revive them."""
    api = serve()
    second = api("amina").post("/tokens", json={"label": "laptop"}).json()
    holder = api.served.client(headers=_bearer(second["token"]))
    assert holder.get("/me").status_code == 200
    token_id = second["record"]["token_id"]

    refused = api("karim").post(f"/tokens/{token_id}/revoke", json={"reason": "not mine"})
    is_problem(refused, 404, "not-found")  # not his to know of
    assert holder.get("/me").status_code == 200

    revoked = api("amina").post(f"/tokens/{token_id}/revoke", json={"reason": "laptop lost"})
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    body = is_problem(holder.get("/me"), 401, "unauthenticated")
    assert "revoked" in body["detail"]
    is_problem(
        holder.post(f"/tokens/{token_id}/revoke", json={"reason": "again"}), 401, "unauthenticated"
    )
    assert api("amina").get("/me").status_code == 200
    again = api("amina").post(f"/tokens/{token_id}/revoke", json={"reason": "twice"})
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]

    by_operator = api("root").post(
        f"/tokens/{_token_id(api.tokens['karim'])}/revoke", json={"reason": "left"}
    )
    assert by_operator.status_code == 200
    is_problem(api("karim").get("/me"), 401, "unauthenticated")

    assert api("samir").get("/me").status_code == 200
    off = api("root").put("/users/samir/roles", json={"roles": [], "reason": "on leave"})
    assert off.json()["roles"] == []
    body = is_problem(api("samir").get("/me"), 401, "unauthenticated")
    assert "revoked" in body["detail"]
    api("root").put("/users/samir/roles", json={"roles": ["steward"], "reason": "back"})
    is_problem(api("samir").get("/me"), 401, "unauthenticated")


# ---- throttling sign-in attempts ---------------------------------------------------------------


def test_a_client_guessing_tokens_is_made_to_wait(serve):
    """SIGN_IN_LIMIT - 1 failures let a client in; the next failure makes every call of
    that client, with a good token too, a 429 too-many-attempts with Retry-After (the wait
    left in the window, also in the problem) on the API and on the console's sign-in form,
    without the token being checked or the wait growing. Another client is not affected.
    When the window has passed, the client is let in again."""
    api = serve()
    clock = _with_clock(api)
    here = api.served.client()
    there = api.served.client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    good = api.tokens["amina"]
    guesses = ["not-a-token", UNKNOWN_TOKEN, f"tbd_{_token_id(good)}." + "C" * 43]
    for attempt in range(SIGN_IN_LIMIT - 1):
        refused = here.get("/me", headers=_bearer(guesses[attempt % len(guesses)]))
        is_problem(refused, 401, "unauthenticated")
    assert here.get("/me", headers=_bearer(good)).status_code == 200
    is_problem(here.get("/me", headers=_bearer(UNKNOWN_TOKEN)), 401, "unauthenticated")

    for token in (good, UNKNOWN_TOKEN):
        response = here.get("/me", headers=_bearer(token))
        body = is_problem(response, 429, "too-many-attempts")
        assert response.headers["retry-after"] == "60"
        assert body["retry_after"] == 60
        assert "www-authenticate" not in response.headers
    page = here.post("/console/signin", data={"token": good}, follow_redirects=False)
    assert page.status_code == 429
    assert page.headers["retry-after"] == "60"
    assert 'data-code="too-many-attempts"' in page.text
    assert "tabadul_console" not in page.cookies

    assert there.get("/me", headers=_bearer(good)).json()["user_id"] == "amina"
    signed_in = there.post("/console/signin", data={"token": good}, follow_redirects=False)
    assert signed_in.status_code == 303
    assert "tabadul_console" in signed_in.cookies

    clock.now += timedelta(seconds=59)
    response = here.get("/me", headers=_bearer(good))
    is_problem(response, 429, "too-many-attempts")
    assert response.headers["retry-after"] == "1"
    clock.now += timedelta(seconds=1)
    assert here.get("/me", headers=_bearer(good)).json()["user_id"] == "amina"
    page = here.post("/console/signin", data={"token": good}, follow_redirects=False)
    assert page.status_code == 303


def test_api_and_console_failures_count_together(serve):
    """Failures at the API and at the console's sign-in form add up for one client: half
    and half make both refuse it."""
    api = serve()
    client = api.served.client()
    for attempt in range(SIGN_IN_LIMIT):
        if attempt % 2:
            assert client.post("/console/signin", data={"token": UNKNOWN_TOKEN}).status_code == 401
        else:
            is_problem(client.get("/me", headers=_bearer(UNKNOWN_TOKEN)), 401, "unauthenticated")
    good = api.tokens["karim"]
    is_problem(client.get("/me", headers=_bearer(good)), 429, "too-many-attempts")
    assert client.post("/console/signin", data={"token": good}).status_code == 429


def test_the_limit_comes_from_the_settings(serve):
    """TABADUL_SIGN_IN_LIMIT (Settings.sign_in_limit) sets how many failures are let through."""
    api = serve(sign_in_limit=3)
    client = api.served.client()
    for _ in range(3):
        is_problem(client.get("/me", headers=_bearer(UNKNOWN_TOKEN)), 401, "unauthenticated")
    is_problem(client.get("/me", headers=_bearer(api.tokens["amina"])), 429, "too-many-attempts")


def test_wrong_tokens_in_the_console_session_cookie_are_counted(serve):
    """A client that puts guessed tokens in the console's session cookie instead of the
    sign-in form is counted as it would be there (and with its API failures): after the limit
    every console page and the API answer it 429 too-many-attempts with Retry-After, the
    right session included, while another client is not affected."""
    api = serve()
    here = api.served.client()
    there = api.served.client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    good = api.tokens["amina"]
    guesses = [UNKNOWN_TOKEN, "not-a-token", f"tbd_{_token_id(good)}." + "D" * 43]
    for attempt in range(SIGN_IN_LIMIT):
        cookie = {"Cookie": f"tabadul_console={guesses[attempt % len(guesses)]}"}
        page = here.get("/console/datasets", headers=cookie)
        assert page.status_code == 303, attempt
        assert page.headers["location"].startswith("/console/signin")
    for path in ("/console/datasets", "/console/audit", f"/console/datasets/{'x' * 8}"):
        page = here.get(path, headers={"Cookie": f"tabadul_console={good}"})
        assert page.status_code == 429, path
        assert page.headers["retry-after"] == "60"
        assert 'data-code="too-many-attempts"' in page.text
    is_problem(here.get("/me", headers=_bearer(good)), 429, "too-many-attempts")
    page = there.get("/console/datasets", headers={"Cookie": f"tabadul_console={good}"})
    assert page.status_code == 200


def test_forwarded_addresses_are_believed_only_from_trusted_proxies(serve):
    """By default no X-Forwarded-For is believed: a client rotating it is one client. With
    trusted_proxies (TABADUL_TRUSTED_PROXIES, addresses or networks), a trusted proxy's
    X-Forwarded-For names the client (so each forwarded client is counted on its own) and its
    X-Forwarded-Proto makes the console's session cookie Secure; from any other address the
    headers change nothing."""

    def rotate(client: httpx.Client, prefix: str) -> list[int]:
        return [
            client.get(
                "/me",
                headers={**_bearer(UNKNOWN_TOKEN), "X-Forwarded-For": f"{prefix}.{n + 1}"},
            ).status_code
            for n in range(SIGN_IN_LIMIT + 1)
        ]

    default = serve()
    assert rotate(default.served.client(), "198.51.100") == [401] * SIGN_IN_LIMIT + [429]

    api = serve(trusted_proxies=("127.0.0.0/30",))
    proxy = api.served.client()
    assert rotate(proxy, "198.51.100") == [401] * (SIGN_IN_LIMIT + 1)
    one = {"X-Forwarded-For": "203.0.113.7, 127.0.0.1"}  # the client, then an inner proxy
    for _ in range(SIGN_IN_LIMIT):
        proxy.get("/me", headers={**_bearer(UNKNOWN_TOKEN), **one})
    is_problem(proxy.get("/me", headers={**_bearer(api.tokens["amina"]), **one}), 429,
               "too-many-attempts")  # fmt: skip
    assert proxy.get("/me", headers=_bearer(api.tokens["amina"])).status_code == 200
    signed_in = proxy.post(
        "/console/signin",
        data={"token": api.tokens["amina"]},
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.8"},
    )
    assert signed_in.status_code == 303
    assert "secure" in signed_in.headers["set-cookie"].lower()

    outsider = api.served.client(transport=httpx.HTTPTransport(local_address="127.0.0.9"))
    assert rotate(outsider, "192.0.2") == [401] * SIGN_IN_LIMIT + [429]


def test_trusted_proxies_must_be_addresses(tmp_path):
    """TABADUL_TRUSTED_PROXIES is a comma-separated list of addresses or networks; anything
    else is refused when the settings are read, naming the entry."""
    env = {"TABADUL_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16 ,::1"}
    assert Settings.from_env(env).trusted_proxies == ("10.0.0.1", "192.168.0.0/16", "::1")
    assert Settings.from_env({}).trusted_proxies == ()
    with pytest.raises(BadSetting, match=r"not 'proxy\.example'"):
        Settings.from_env({"TABADUL_TRUSTED_PROXIES": "10.0.0.1,proxy.example"})


# ---- no secrets in logs, answers or the database -----------------------------------------------


@pytest.fixture
def logged_api(serve, caplog: pytest.LogCaptureFixture) -> Iterator[Api]:
    """A served application whose every log record from DEBUG up is captured, uvicorn's
    access log included. Served turns that log off (uvicorn's Config empties its handlers and
    stops its propagation), so the capture is attached to it directly, after serving and
    before the test's connections are opened (uvicorn decides per connection)."""
    caplog.set_level(logging.DEBUG)
    api = serve()
    access = logging.getLogger("uvicorn.access")
    access.addHandler(caplog.handler)
    yield api
    access.removeHandler(caplog.handler)


def _logged(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    """What the process logged and printed, but the test's own HTTP clients' records (on the
    main thread: httpcore logs the response headers it receives, the console's session cookie
    among them; the server runs in other threads)."""
    client_side = ("httpx", "httpcore")
    records = [
        r
        for r in caplog.records
        if not (r.name.startswith(client_side) and r.threadName == "MainThread")
    ]
    assert any(r.name == "uvicorn.access" for r in records), "the access log was not captured"
    handler = caplog.handler
    texts = [handler.format(r) for r in records]
    return "\n".join([*texts, *capfd.readouterr()])


def _secret(token: str) -> str:
    return token.split(".")[1]


def test_a_token_secret_is_shown_once_and_never_logged_nor_echoed(logged_api, caplog, capfd):
    """Issuing, using (API and console), mistyping, sending under another scheme or where
    it does not belong, listing, revoking and using when revoked: the secret appears in the
    answer to POST /tokens and in the console's HttpOnly session cookie only, never in a log
    record (the server's access log included), the process's output, another answer's body
    or headers, or the audit log."""
    api = logged_api
    answers: list[httpx.Response] = []

    def keep(response: httpx.Response) -> None:
        response.read()
        answers.append(response)

    hooks = {"response": [keep]}
    root = api.served.client(headers=_bearer(api.tokens["root"]), event_hooks=hooks)
    client = api.served.client(event_hooks=hooks)
    issued = root.post("/tokens", json={"label": "scripts", "user_id": "amina"})
    assert issued.status_code == 201
    token = issued.json()["token"]
    typo = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert client.get("/me", headers=_bearer(token)).status_code == 200
    for header in (f"Bearer {typo}", f"Bearer {token} extra", f"Basic {token}"):
        is_problem(client.get("/me", headers={"Authorization": header}), 401, "unauthenticated")
    signed_in = client.post("/console/signin", data={"token": token}, follow_redirects=False)
    assert signed_in.status_code == 303
    assert client.get("/console/datasets").status_code == 200
    client.cookies.clear()
    assert client.post("/console/signin", data={"token": typo}).status_code == 401
    is_problem(root.post("/tokens", json={"label": "x", "token": token}), 422, "invalid-request")
    assert root.get("/tokens", params={"user_id": "amina"}).status_code == 200
    token_id = issued.json()["record"]["token_id"]
    assert root.post(f"/tokens/{token_id}/revoke", json={"reason": "rotated"}).status_code == 200
    is_problem(client.get("/me", headers=_bearer(token)), 401, "unauthenticated")
    assert client.post("/console/signin", data={"token": token}).status_code == 401
    audit = root.get("/audit/entries")
    assert {"token.issue", "token.revoke"} <= {e["action"] for e in audit.json()}

    logged = _logged(caplog, capfd)
    assert f"/tokens/{token_id}/revoke" in logged  # the access log, read
    for text in (token, _secret(token), _secret(typo)):
        assert text not in logged
    assert [a for a in answers if _secret(token) in a.text] == [issued]
    assert not [a for a in answers if _secret(typo) in a.text]
    cookies = [(a, v) for a in answers for k, v in a.headers.multi_items() if k == "set-cookie"]
    holding = [(a, v) for a, v in cookies if _secret(token) in v]
    assert [a for a, _ in holding] == [signed_in]
    assert holding[0][1].startswith("tabadul_console=")
    assert "HttpOnly" in holding[0][1]
    for answer in answers:
        headers = [v for k, v in answer.headers.multi_items() if k != "set-cookie"]
        assert not any(_secret(token) in v or _secret(typo) in v for v in headers)


def test_a_token_where_it_does_not_belong_is_refused_without_being_echoed(serve):
    """A token sent as a body member or a query parameter is an invalid request whose
    errors name the member, never its value. (Not logged here: uvicorn's access log, which
    `tabadul api serve` leaves on, records a URL with its query string.)"""
    api = serve()
    token = api.tokens["amina"]
    for response in (
        api("amina").post("/tokens", json={"label": "x", "token": token}),
        api("amina").get("/tokens", params={"token": token}),
        api().get("/me", params={"access_token": token}),
    ):
        body = is_problem(response, 422, "invalid-request")
        assert body["errors"][0]["path"] in {"body.token", "query.token", "query.access_token"}
        assert _secret(token) not in response.text


def test_only_the_hash_of_a_secret_is_stored(serve):
    """The token's row holds the SHA-256 of its secret and nothing else of it; no file of
    the database (the write-ahead log included) holds the secret."""
    api = serve()
    issued = api("root").post("/tokens", json={"label": "scripts", "user_id": "amina"}).json()
    token_id, secret = issued["record"]["token_id"], _secret(issued["token"])
    assert api.served.client(headers=_bearer(issued["token"])).get("/me").status_code == 200
    with api.services.store.transaction("read the stored token") as conn:
        row = conn.execute(
            sa.text("SELECT * FROM api_tokens WHERE token_id = :i"), {"i": token_id}
        ).one()
    assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in str(value) for value in row)
    database = Path(api.services.settings.governance_db)
    files = list(database.parent.glob(database.name + "*"))
    assert database in files
    stored = b"".join(path.read_bytes() for path in files)
    assert row.secret_sha256.encode() in stored  # what is looked for is readable there
    assert secret.encode() not in stored


def test_a_database_failure_while_checking_a_token_is_logged_without_it(logged_api, caplog, capfd):
    """When the database fails while a valid token is checked, the API answers 503 store
    with a fixed text and the console an error page; the server's log has the failure (the
    driver's message with its SQL and parameters), without the token's secret."""
    api = logged_api
    token = api.tokens["karim"]
    client = api.served.client()
    assert client.get("/me", headers=_bearer(token)).status_code == 200
    with api.services.store.transaction("hide the tokens") as conn:
        conn.execute(sa.text("ALTER TABLE api_tokens RENAME TO api_tokens_away"))
    response = client.get("/me", headers=_bearer(token))
    body = is_problem(response, 503, "store")
    assert "api_tokens" not in body["detail"]
    assert _secret(token) not in response.text
    page = client.post("/console/signin", data={"token": token})
    assert page.status_code == 503
    assert _secret(token) not in page.text
    assert "api_tokens" not in page.text  # the SQL is for the log, not for the page
    assert 'data-code="store"' in page.text

    logged = _logged(caplog, capfd)
    assert "governance database failure" in logged
    assert "no such table: api_tokens" in logged
    assert _token_id(token) in logged  # the parameters are logged: the id, not the secret
    assert token not in logged
    assert _secret(token) not in logged
