"""Request and response bodies shared by several groups of endpoints, and the rule every
request's query string follows."""

from __future__ import annotations

from typing import Annotated

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, JsonValue, WithJsonSchema

from governance import AuditEntry, Role, State, User

# A query parameter left out is None; a query string cannot say null, so the description
# documents the parameter as an optional text (or enum), not as "text or null".
OptionalQueryText = Annotated[str | None, WithJsonSchema({"type": "string"})]
OptionalQueryRole = Annotated[
    Role | None, WithJsonSchema({"type": "string", "enum": [r.value for r in Role]})
]
OptionalQueryState = Annotated[
    State | None, WithJsonSchema({"type": "string", "enum": [s.value for s in State]})
]


class Body(BaseModel):
    """A request body: unknown members are refused (a typo is an error, not a no-op)."""

    model_config = ConfigDict(extra="forbid")


class ReasonIn(Body):
    """A body holding only why (optional)."""

    reason: str = Field(default="", description="Why, for the audit log")


class RequiredReasonIn(Body):
    """A body holding why, which the action requires."""

    reason: str = Field(min_length=1, pattern=r"\S", description="Why, for the audit log")


class UserOut(BaseModel):
    user_id: str
    name: str
    agency: str
    roles: list[Role]

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls.model_validate(user.as_dict())


class AuditEntryOut(BaseModel):
    """One entry of the hash-chained audit log."""

    seq: int
    at: str
    actor: str
    action: str
    subject: str
    reason: str
    content_sha256: str | None
    details: dict[str, JsonValue]
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls.model_validate(entry.as_dict())


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters an endpoint declares, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names


def strict_query(request: Request) -> None:
    """Refuse a query parameter the endpoint does not have (``?stat=DRAFT`` would otherwise
    be ignored and list everything) or given more than once (``?state=A&state=B``: every
    parameter holds one value), as an invalid request."""
    route = request.scope.get("route")
    known = _query_names(route.dependant) if isinstance(route, APIRoute) else set()
    errors = []
    for name in sorted(set(request.query_params)):
        if name not in known:
            errors.append({"loc": ("query", name), "msg": "no such parameter", "type": "unknown"})
        elif len(request.query_params.getlist(name)) > 1:
            errors.append(
                {"loc": ("query", name), "msg": "given more than once", "type": "repeated"}
            )
    if errors:
        raise RequestValidationError(errors)
