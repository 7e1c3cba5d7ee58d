"""Who is calling, and what they may read.

Every endpoint but ``GET /directory/latest`` needs ``Authorization: Bearer tbd_<id>.<secret>``,
an API token checked by :meth:`governance.Tokens.authenticate`; a missing, malformed, unknown,
expired or revoked token is ``unauthenticated`` (401). The token is never logged nor echoed.

Governance decides on every change (roles, agency, four eyes) and raises its own refusals;
what governance only reads is ruled by :mod:`tabadul._access`, shared with the console. A
person without any role (how an operator disables someone) is refused everywhere: their
tokens no longer authenticate.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from governance import Unauthenticated, User, token_id_of
from tabadul._services import Services

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


def current_token_id(
    _caller: Caller,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> str:
    """The id of the token the request came with (asked for after it authenticated)."""
    assert credentials is not None  # current_user refused a request without one
    return token_id_of(credentials.credentials)


CallerTokenId = Annotated[str, Depends(current_token_id)]
