"""People and their API tokens.

``GET /me`` is whoever holds the token. Operators register people and set their roles
(governance refuses anyone else); operators and auditors list everyone. A token is issued to
oneself, or by an operator to anyone, with the caller's token as its parent (it dies with
it); its secret is in the answer to ``POST /tokens`` only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from governance import DEFAULT_TTL, ApiToken, IssuedToken, Role
from tabadul._access import OVERSIGHT, require_role, require_self_or_oversight
from tabadul.api._auth import Caller, CallerTokenId, ServicesDep
from tabadul.api._models import (
    Body,
    OptionalQueryRole,
    OptionalQueryText,
    RequiredReasonIn,
    UserOut,
)
from tabadul.api._problems import problem_responses

router = APIRouter(
    tags=["people and tokens"], responses=problem_responses(400, 401, 403, 413, 429, 503)
)
_NOT_FOUND = problem_responses(404)
_TAKEN = problem_responses(404, 409)
_MAX_TTL_DAYS = 366  # governance's limit (Tokens.issue refuses more)


class UserIn(Body):
    user_id: str = Field(min_length=1, description="Letters, digits, . _ @ - (max 64)")
    name: str = Field(min_length=1)
    agency: str = Field(min_length=1, description="The agency's code in capitals, e.g. DOUANE")
    roles: list[Role]
    reason: str = ""


class RolesIn(Body):
    roles: list[Role] = Field(description="The new roles (replacing the old); [] disables")
    reason: str = Field(min_length=1)


class TokenIn(Body):
    label: str = Field(min_length=1, description="What the token is for")
    user_id: str | None = Field(
        default=None, description="Whose token (default: yours; operators issue anyone's)"
    )
    ttl_days: int = Field(default=DEFAULT_TTL.days, ge=1, le=_MAX_TTL_DAYS)


class TokenOut(BaseModel):
    """A token's record; never its secret."""

    token_id: str
    user_id: str
    label: str
    created_by: str
    created_at: str
    expires_at: str
    revoked_at: str | None
    last_used_at: str | None
    parent_token_id: str | None = Field(
        description="The token it was issued with: it expires no later and is revoked with it"
    )

    @classmethod
    def of(cls, record: ApiToken) -> TokenOut:
        return cls.model_validate(record.as_dict())


class IssuedTokenOut(BaseModel):
    token: str = Field(description="The secret: shown this once, stored only as a hash")
    record: TokenOut

    @classmethod
    def of(cls, issued: IssuedToken) -> IssuedTokenOut:
        return cls(token=issued.token, record=TokenOut.of(issued.record))


@router.get("/me", summary="Who holds this token")
def me(caller: Caller) -> UserOut:
    return UserOut.of(caller)


@router.get("/users", summary="Registered people (operators, auditors)")
def list_users(
    services: ServicesDep,
    caller: Caller,
    agency: Annotated[OptionalQueryText, Query(description="Only this agency's")] = None,
    role: Annotated[OptionalQueryRole, Query(description="Only holders of this role")] = None,
) -> list[UserOut]:
    require_role(caller, OVERSIGHT, "list_users", "list the users")
    return [UserOut.of(user) for user in services.workflow.users(agency=agency, role=role)]


@router.post("/users", status_code=201, summary="Register a person", responses=_TAKEN)
def register_user(body: UserIn, services: ServicesDep, caller: Caller) -> UserOut:
    user = services.workflow.register_user(
        caller,
        body.user_id,
        name=body.name,
        agency=body.agency,
        roles=body.roles,
        reason=body.reason,
    )
    return UserOut.of(user)


@router.get("/users/{user_id}", summary="One person", responses=_NOT_FOUND)
def get_user(user_id: str, services: ServicesDep, caller: Caller) -> UserOut:
    require_self_or_oversight(caller, user_id, "read_user", "read other people's records")
    return UserOut.of(services.workflow.user(user_id))


@router.put("/users/{user_id}/roles", summary="Replace a person's roles", responses=_NOT_FOUND)
def set_roles(user_id: str, body: RolesIn, services: ServicesDep, caller: Caller) -> UserOut:
    return UserOut.of(services.workflow.set_roles(caller, user_id, body.roles, reason=body.reason))


@router.post("/tokens", status_code=201, summary="Issue an API token", responses=_NOT_FOUND)
def issue_token(
    body: TokenIn, services: ServicesDep, caller: Caller, token_id: CallerTokenId
) -> IssuedTokenOut:
    """The new token is issued with the caller's: it expires no later than that one (its
    lifetime is cut short if need be) and is revoked with it."""
    issued = services.tokens.issue(
        caller,
        body.user_id or caller.user_id,
        label=body.label,
        ttl=timedelta(days=body.ttl_days),
        parent=token_id,
    )
    return IssuedTokenOut.of(issued)


@router.get("/tokens", summary="A person's tokens (default: yours)")
def list_tokens(
    services: ServicesDep,
    caller: Caller,
    user_id: Annotated[
        OptionalQueryText, Query(description="Whose tokens (default: yours)")
    ] = None,
) -> list[TokenOut]:
    owner = user_id or caller.user_id
    require_self_or_oversight(caller, owner, "list_tokens", "list other people's tokens")
    return [TokenOut.of(record) for record in services.tokens.tokens(owner)]


@router.post("/tokens/{token_id}/revoke", summary="Revoke a token", responses=_NOT_FOUND)
def revoke_token(
    token_id: str, body: RequiredReasonIn, services: ServicesDep, caller: Caller
) -> TokenOut:
    return TokenOut.of(services.tokens.revoke(caller, token_id, reason=body.reason))


__all__ = ["router"]
