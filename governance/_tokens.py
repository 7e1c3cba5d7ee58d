"""API tokens for the management API and the console: issued to one user, expiring,
revocable; only the SHA-256 of the secret is stored.

A token reads ``tbd_<id>.<secret>``: the id finds the row, the secret is compared (in
constant time) with the stored hash. Issuing and revoking are audit-log entries.

A token issued with another one (``parent``: the API passes the caller's) lives no longer
than it and is revoked with it, transitively; so a leaked short-lived token cannot mint one
that outlives it or its revocation.

>>> tokens = Tokens(store)
>>> issued = tokens.issue("root", "amina", label="console")   # issued.token is shown once
>>> tokens.authenticate(issued.token)                          # the User, or Unauthenticated
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from exchange import format_time, utcnow
from governance._audit import append_entry
from governance._db import GovernanceStore, api_tokens
from governance._errors import (
    InvalidInput,
    NotFound,
    TooManyAttempts,
    Unauthenticated,
    WrongRole,
)
from governance._workflow import Role, User, Workflow, revoke_tokens

PREFIX = "tbd_"
DEFAULT_TTL = timedelta(days=30)
MAX_TTL = timedelta(days=366)
# last_used_at is written at most this often per token (a write per request would cost more)
_TOUCH_EVERY = timedelta(minutes=1)
# Failed sign-ins one client may make within the window before it is made to wait.
SIGN_IN_LIMIT = 10
SIGN_IN_WINDOW = timedelta(minutes=1)
_CLIENTS_KEPT = 10_000  # clients remembered at most (a flood from many addresses stays bounded)
_TOKEN = re.compile(r"tbd_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})\Z")
_SECRET_IN_TEXT = re.compile(r"(tbd_[0-9a-f]{16})\.[A-Za-z0-9_-]+")


def redact_tokens(text: str) -> str:
    """``text`` with the secret part of every API token in it replaced by ``***`` (the id,
    which is not secret, stays to tell which token it was)."""
    return _SECRET_IN_TEXT.sub(r"\1.***", text)


def token_id_of(token: str) -> str:
    """The id part of a token (``tbd_<id>.<secret>``); :class:`Unauthenticated` for text
    that is not a token."""
    match = _TOKEN.match(token.strip())
    if match is None:
        raise Unauthenticated("that is not a Tabadul API token (tbd_<id>.<secret>)")
    return match.group(1)


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A token's record (never its secret)."""

    token_id: str
    user_id: str
    label: str
    created_by: str
    created_at: str
    expires_at: str
    revoked_at: str | None
    last_used_at: str | None
    parent_token_id: str | None = None  # the token it was issued with

    def as_dict(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "user_id": self.user_id,
            "label": self.label,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
            "parent_token_id": self.parent_token_id,
        }


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: ``token`` is the secret text, shown once and never stored."""

    record: ApiToken
    token: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _by_id(token_id: str) -> sa.Select[Any]:
    return sa.select(api_tokens).where(api_tokens.c.token_id == token_id)


def _record(row: sa.Row[Any]) -> ApiToken:
    return ApiToken(
        token_id=row.token_id,
        user_id=row.user_id,
        label=row.label,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
        parent_token_id=row.parent_token_id,
    )


class Tokens:
    """The API tokens of one governance database."""

    def __init__(
        self,
        store: GovernanceStore,
        *,
        clock: Callable[[], datetime] = utcnow,
        sign_in_limit: int = SIGN_IN_LIMIT,
    ) -> None:
        self._store = store
        self._clock = clock
        self._limit = sign_in_limit
        self._users = Workflow(store, clock=clock)
        self._failures: dict[str, deque[datetime]] = {}
        self._failures_lock = threading.Lock()

    def issue(
        self,
        actor: User | str,
        user_id: str,
        *,
        label: str,
        ttl: timedelta = DEFAULT_TTL,
        parent: str | None = None,
    ) -> IssuedToken:
        """A new token for ``user_id``: people issue their own, operators anyone's.

        With ``parent`` (the id of the token the request came with), the new token expires
        no later than the parent and is revoked with it; a parent that is unknown, revoked
        or expired mints nothing (:class:`Unauthenticated`)."""
        if not label.strip():
            raise InvalidInput("a token needs a label (what it is for)")
        if not timedelta(0) < ttl <= MAX_TTL:
            raise InvalidInput(f"a token lives more than 0 and at most {MAX_TTL.days} days")
        by = self._users.user(actor if isinstance(actor, str) else actor.user_id)
        self._check_may_manage(by, user_id, "issue_token")  # before looking the person up
        owner = self._users.user(user_id)
        now = self._clock()
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        with self._store.transaction("issue an API token") as conn:
            expires = now + ttl
            if parent is not None:
                expires = min(expires, self._live_parent(conn, parent, now))
            record = ApiToken(
                token_id=token_id,
                user_id=owner.user_id,
                label=label.strip(),
                created_by=by.user_id,
                created_at=format_time(now),
                expires_at=format_time(expires),
                revoked_at=None,
                last_used_at=None,
                parent_token_id=parent,
            )
            conn.execute(
                api_tokens.insert(), {**record.as_dict(), "secret_sha256": _digest(secret)}
            )
            details: dict[str, object] = {"token": token_id, "expires_at": record.expires_at}
            if parent is not None:
                details["parent"] = parent
            append_entry(
                conn,
                actor=by.user_id,
                action="token.issue",
                subject=f"user:{owner.user_id}",
                reason=record.label,
                details=details,
                at=now,
            )
        return IssuedToken(record, f"{PREFIX}{token_id}.{secret}")

    @staticmethod
    def _live_parent(conn: sa.Connection, token_id: str, now: datetime) -> datetime:
        """When the parent token ``token_id`` expires; :class:`Unauthenticated` when it
        is unknown, revoked or expired."""
        row = conn.execute(_by_id(token_id)).first()
        if row is None:
            raise Unauthenticated(f"unknown API token {token_id!r}: it cannot issue tokens")
        if row.revoked_at is not None:
            raise Unauthenticated(f"API token {token_id} was revoked at {row.revoked_at}")
        expires = datetime.fromisoformat(row.expires_at)
        if expires <= now:
            raise Unauthenticated(f"API token {token_id} expired at {row.expires_at}")
        return expires

    def authenticate(self, token: str, *, client: str | None = None) -> User:
        """The user holding ``token``. Raises :class:`Unauthenticated` (naming why: malformed,
        unknown, expired, revoked, or its holder has no role left: a disabled account)
        without ever echoing the token.

        With ``client`` (e.g. the caller's address), failures are counted: after
        ``sign_in_limit`` within ``SIGN_IN_WINDOW`` the client's attempts are refused with
        :class:`TooManyAttempts` until the window has passed."""
        if client is None:
            return self._authenticate(token)
        self._check_attempts(client)
        try:
            return self._authenticate(token)
        except Unauthenticated:
            self._failed(client)
            raise

    def _recent(self, client: str, now: datetime) -> deque[datetime]:
        """The client's failures within the window (older ones forgotten); lock held."""
        failures = self._failures.get(client) or deque()
        while failures and now - failures[0] >= SIGN_IN_WINDOW:
            failures.popleft()
        return failures

    def _check_attempts(self, client: str) -> None:
        now = self._clock()
        with self._failures_lock:
            failures = self._recent(client, now)
            if len(failures) >= self._limit:
                wait = SIGN_IN_WINDOW - (now - failures[0])
                retry_after = max(1, math.ceil(wait.total_seconds()))
                raise TooManyAttempts(
                    f"too many failed sign-ins from this client: try again in {retry_after} s",
                    retry_after=retry_after,
                )

    def _failed(self, client: str) -> None:
        now = self._clock()
        with self._failures_lock:
            failures = self._recent(client, now)
            failures.append(now)
            self._failures[client] = failures
            if len(self._failures) > _CLIENTS_KEPT:
                for known in list(self._failures):
                    if not self._recent(known, now):
                        del self._failures[known]

    def _authenticate(self, token: str) -> User:
        token_id = token_id_of(token)
        secret = token.strip().rpartition(".")[2]
        now = self._clock()
        with self._store.transaction("check an API token") as conn:
            row = conn.execute(
                sa.select(api_tokens).where(api_tokens.c.token_id == token_id)
            ).first()
            if row is None or not hmac.compare_digest(row.secret_sha256, _digest(secret)):
                raise Unauthenticated("unknown API token")
            if row.revoked_at is not None:
                raise Unauthenticated(f"API token {token_id} was revoked at {row.revoked_at}")
            if datetime.fromisoformat(row.expires_at) <= now:
                raise Unauthenticated(f"API token {token_id} expired at {row.expires_at}")
            last = row.last_used_at
            if last is None or now - datetime.fromisoformat(last) >= _TOUCH_EVERY:
                conn.execute(
                    api_tokens.update()
                    .where(api_tokens.c.token_id == token_id)
                    .values(last_used_at=format_time(now))
                )
        holder = self._users.user(row.user_id)
        if not holder.roles:
            raise Unauthenticated(
                f"API token {token_id} belongs to {row.user_id}, who holds no role any more "
                "(the account is disabled)"
            )
        return holder

    def revoke(self, actor: User | str, token_id: str, *, reason: str) -> ApiToken:
        """Revoke a token (its holder or an operator); revoking twice changes nothing. To
        anyone else, another's token is as unknown as one never issued (:class:`NotFound`,
        the same message)."""
        if not reason.strip():
            raise InvalidInput("a revocation needs a reason")
        by = self._users.user(actor if isinstance(actor, str) else actor.user_id)
        now = self._clock()
        with self._store.transaction("revoke an API token") as conn:
            row = conn.execute(
                sa.select(api_tokens).where(api_tokens.c.token_id == token_id)
            ).first()
            if row is None or not self._may_manage(by, row.user_id):
                raise NotFound(f"no API token {token_id!r}")
            if row.revoked_at is None:
                revoked = revoke_tokens(conn, [token_id], at=format_time(now))
                details: dict[str, object] = {"token": token_id}
                if minted := [t for t in revoked if t != token_id]:
                    details["tokens_revoked"] = minted  # the tokens issued with it
                append_entry(
                    conn,
                    actor=by.user_id,
                    action="token.revoke",
                    subject=f"user:{row.user_id}",
                    reason=reason.strip(),
                    details=details,
                    at=now,
                )
            row = conn.execute(_by_id(token_id)).one()
        return _record(row)

    def tokens(self, user_id: str | None = None) -> list[ApiToken]:
        """Token records (all, or one user's), oldest first."""
        query = sa.select(api_tokens).order_by(api_tokens.c.created_at, api_tokens.c.token_id)
        if user_id is not None:
            query = query.where(api_tokens.c.user_id == user_id)
        with self._store.transaction("list API tokens") as conn:
            return [_record(row) for row in conn.execute(query).all()]

    @staticmethod
    def _may_manage(actor: User, owner: str) -> bool:
        return actor.user_id == owner or Role.OPERATOR in actor.roles

    @classmethod
    def _check_may_manage(cls, actor: User, owner: str, action: str) -> None:
        if not cls._may_manage(actor, owner):
            raise WrongRole(
                f"{actor.user_id} may not manage {owner}'s API tokens: only the holder or an "
                "operator may",
                action=action,
            )


__all__ = ["DEFAULT_TTL", "SIGN_IN_LIMIT", "ApiToken", "IssuedToken", "Tokens", "token_id_of"]
