"""Who is calling, and what they may read.

Every endpoint but ``GET /directory/latest`` needs ``Authorization: Bearer tbd_<id>.<secret>``,
an API token checked by :meth:`governance.Tokens.authenticate`; a missing, malformed, unknown,
expired or revoked token is ``unauthenticated`` (401). The token is never logged nor echoed.

Governance decides on every change (roles, agency, four eyes) and raises its own refusals.
The API adds the rules for what governance only reads:

=============================== =============================================================
what                            who
=============================== =============================================================
the registry (members...)       anyone holding a role (it is in the public directory anyway)
a dataset, its review, history  people of the owning agency; operators and auditors: all
the audit log, traffic, users   operators and auditors
a user, a user's tokens         that user; operators and auditors
=============================== =============================================================

A user without any role (how an operator disables someone) can only see ``/me`` and their
own tokens.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from governance import OtherAgency, Role, Unauthenticated, User, WrongRole
from tabadul._services import Services

ANY_ROLE = frozenset(Role)
OVERSIGHT = frozenset({Role.OPERATOR, Role.AUDITOR})  # read everything, every agency
OPERATORS = frozenset({Role.OPERATOR})

_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="ApiToken",
    description="A Tabadul API token: `Authorization: Bearer tbd_<id>.<secret>`",
)


def get_services(request: Request) -> Services:
    """The services the application was created with."""
    return cast("Services", request.app.state.services)


ServicesDep = Annotated[Services, Depends(get_services)]


def current_user(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> User:
    """The holder of the request's bearer token; :class:`Unauthenticated` otherwise, and
    :class:`TooManyAttempts` (429) for a client that failed too often lately."""
    if credentials is None:
        raise Unauthenticated(
            "this endpoint needs 'Authorization: Bearer <token>' with a Tabadul API token"
        )
    client = request.client.host if request.client else None
    return services.tokens.authenticate(credentials.credentials, client=client)


Caller = Annotated[User, Depends(current_user)]


def _listed(roles: frozenset[Role]) -> str:
    return " or ".join(f"an {r}" if r[0] in "aeiou" else f"a {r}" for r in sorted(roles))


def require_role(user: User, allowed: frozenset[Role], action: str, verb: str) -> None:
    """Refuse with :class:`WrongRole` unless ``user`` holds one of ``allowed`` (``verb`` says
    what was tried, e.g. "read the audit log")."""
    if not user.roles & allowed:
        held = ", ".join(sorted(user.roles)) or "no role"
        raise WrongRole(
            f"{user.user_id} ({held}) may not {verb}: only {_listed(allowed)} may",
            action=action,
        )


def require_self_or_oversight(user: User, owner: str, action: str, verb: str) -> None:
    """Refuse with :class:`WrongRole` unless ``user`` is ``owner``, an operator or an auditor."""
    if user.user_id != owner:
        require_role(user, OVERSIGHT, action, verb)


def require_agency(user: User, agency: str, action: str, dataset_id: str = "") -> None:
    """Refuse with :class:`OtherAgency` (or :class:`WrongRole` for someone without a role)
    unless ``user`` may read ``agency``'s datasets: its own people, operators, auditors."""
    if user.roles & OVERSIGHT:
        return
    require_role(user, ANY_ROLE, action, "read datasets")
    if user.agency != agency:
        what = f"dataset {dataset_id}" if dataset_id else "the datasets"
        raise OtherAgency(
            f"{user.user_id} belongs to {user.agency}, but {what} of {agency} may be read only "
            f"by people of {agency}, operators and auditors",
            action=action,
            dataset_id=dataset_id,
        )
