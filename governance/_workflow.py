"""The dataset inventory and its four-eyes publication workflow.

States::

    DRAFT ──classify──> CLASSIFIED ──submit_for_review──> IN_REVIEW ──approve──> APPROVED
      ^                  │  ^ (classify again)                │  ^ resolve_finding      │
      │                  └──┘                                 │  └──┘            mark_published
      └──reopen── REJECTED <──reject──────────────────────────┘                        v
                                                       WITHDRAWN <──withdraw── PUBLISHED

``submit_for_review`` also runs from APPROVED and PUBLISHED: new bytes need a new review
(what is live stays live until the new version is published or the dataset withdrawn).
``withdraw`` runs from PUBLISHED, or from any state while an earlier version is still live.
WITHDRAWN is final.

Who may do what (roles and agency are read from the database, never from the caller's
object):

================== ============================ ==========================================
action             roles                        agency
================== ============================ ==========================================
register_user      operator                     any (the operator runs the registry)
set_roles          operator                     any
register_dataset   steward                      the steward's own agency owns the dataset
classify           steward                      own agency's datasets
submit_for_review  steward                      own agency's datasets
resolve_finding    steward                      own agency's datasets
approve, reject    approver                     own agency's datasets; four eyes on approve
reopen             steward                      own agency's datasets
mark_published     steward, operator            stewards: own agency; operators: any
withdraw           steward, approver, operator  stewards and approvers: own agency;
                                                operators: any (an emergency take-down)
================== ============================ ==========================================

Operators run the central platform: they register people and may publish (the publishing
pipeline runs centrally) or take down any agency's data, but they make no decision on the
content (classify, submit, approve) unless they also hold that role, and then only for their
own agency. Auditors only read.

Four eyes: whoever classified the dataset, submitted the review or resolved one of its PII
findings may not approve it. Every operation that changes something writes its audit entry
in the same transaction as the change; a refused operation changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa

from exchange import format_time, utcnow
from governance._audit import AuditEntry, AuditLog, append_entry
from governance._db import GovernanceStore, api_tokens, datasets, findings, reviews, users
from governance._errors import (
    AlreadyExists,
    ChangedSinceApproval,
    FourEyes,
    IllegalTransition,
    InvalidInput,
    NeedsDerivation,
    NotPublishable,
    OtherAgency,
    PiiUnresolved,
    UnknownDataset,
    UnknownFinding,
    UnknownUser,
    WrongRole,
)
from governance._tags import check_tags


class Role(StrEnum):
    OPERATOR = "operator"
    STEWARD = "steward"
    APPROVER = "approver"
    AUDITOR = "auditor"
    DPO = "dpo"  # data-protection officer: reads who consulted a data subject's records


class Level(StrEnum):
    PUBLIC = "PUBLIC"
    INTERNAL = "INTERNAL"
    RESTRICTED = "RESTRICTED"
    SECRET = "SECRET"  # noqa: S105 - a classification level, not a password


class State(StrEnum):
    DRAFT = "DRAFT"
    CLASSIFIED = "CLASSIFIED"
    IN_REVIEW = "IN_REVIEW"
    APPROVED = "APPROVED"
    PUBLISHED = "PUBLISHED"
    WITHDRAWN = "WITHDRAWN"
    REJECTED = "REJECTED"


class Resolution(StrEnum):
    DROP = "drop"
    GENERALISE = "generalise"
    NEUTRALISE = "neutralise"  # formula cells made text by a derivation
    JUSTIFY = "justify"


LANGUAGES = ("ar", "fr", "en")
FREQUENCIES = (
    "continuous",
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "yearly",
    "irregular",
    "never",
)

# From which states each action may run (withdraw also while an earlier version is live).
TRANSITIONS: dict[str, tuple[frozenset[State], State]] = {
    "classify": (frozenset({State.DRAFT, State.CLASSIFIED}), State.CLASSIFIED),
    "submit_for_review": (
        frozenset({State.CLASSIFIED, State.APPROVED, State.PUBLISHED}),
        State.IN_REVIEW,
    ),
    "resolve_finding": (frozenset({State.IN_REVIEW}), State.IN_REVIEW),
    "approve": (frozenset({State.IN_REVIEW}), State.APPROVED),
    "reject": (frozenset({State.IN_REVIEW}), State.REJECTED),
    "reopen": (frozenset({State.REJECTED}), State.DRAFT),
    "mark_published": (frozenset({State.APPROVED}), State.PUBLISHED),
    "withdraw": (frozenset({State.PUBLISHED}), State.WITHDRAWN),
}
ROLES: dict[str, frozenset[Role]] = {
    "register_user": frozenset({Role.OPERATOR}),
    "set_roles": frozenset({Role.OPERATOR}),
    "register_dataset": frozenset({Role.STEWARD}),
    "classify": frozenset({Role.STEWARD}),
    "submit_for_review": frozenset({Role.STEWARD}),
    "resolve_finding": frozenset({Role.STEWARD}),
    "approve": frozenset({Role.APPROVER}),
    "reject": frozenset({Role.APPROVER}),
    "reopen": frozenset({Role.STEWARD}),
    "mark_published": frozenset({Role.STEWARD, Role.OPERATOR}),
    "withdraw": frozenset({Role.STEWARD, Role.APPROVER, Role.OPERATOR}),
}
_VERBS = {
    "register_user": "register users",
    "set_roles": "change roles",
    "register_dataset": "register a dataset",
    "classify": "classify a dataset",
    "submit_for_review": "submit a dataset for review",
    "resolve_finding": "resolve a PII finding",
    "approve": "approve a dataset",
    "reject": "reject a dataset",
    "reopen": "reopen a dataset",
    "mark_published": "publish a dataset",
    "withdraw": "withdraw a dataset",
}
# The audit action of each workflow operation.
_AUDIT_ACTIONS = {
    "classify": "dataset.classify",
    "submit_for_review": "dataset.submit",
    "resolve_finding": "finding.resolve",
    "approve": "dataset.approve",
    "reject": "dataset.reject",
    "reopen": "dataset.reopen",
    "mark_published": "dataset.publish",
    "withdraw": "dataset.withdraw",
}
_PASSIVE = {
    "classify": "be classified",
    "submit_for_review": "be submitted for review",
    "resolve_finding": "have its PII findings resolved",
    "approve": "be approved",
    "reject": "be rejected",
    "reopen": "be reopened",
    "mark_published": "be published",
    "withdraw": "be withdrawn",
}
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{1,99}\Z")  # also a valid CKAN package name
_USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")
_AGENCY = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,63}\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_E = TypeVar("_E", bound=StrEnum)


# ---- records ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    name: str
    agency: str
    roles: frozenset[Role]

    def as_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "name": self.name,
            "agency": self.agency,
            "roles": sorted(self.roles),
        }


@dataclass(frozen=True, slots=True)
class Classification:
    level: Level
    personal_data: bool
    legal_basis: str
    justification: str
    classified_by: str

    @property
    def publishable(self) -> bool:
        """Only PUBLIC data without personal data may be opened."""
        return self.level is Level.PUBLIC and not self.personal_data


@dataclass(frozen=True, slots=True)
class Dataset:
    dataset_id: str
    owner_agency: str
    steward: str
    title: Mapping[str, str]
    description: Mapping[str, str]
    source: str
    table_schema: Mapping[str, Any]
    licence: str
    update_frequency: str
    tags: tuple[str, ...]
    state: State
    classification: Classification | None
    content_sha256: str | None
    published_sha256: str | None
    publication_reference: str | None
    created_at: str
    updated_at: str

    @property
    def subject(self) -> str:
        """How the audit log names this dataset."""
        return f"dataset:{self.dataset_id}"

    def as_dict(self) -> dict[str, Any]:
        """The dataset as JSON-ready data (its classification nested, or None)."""
        return {
            **{f: getattr(self, f) for f in self.__dataclass_fields__ if f != "classification"},
            "title": dict(self.title),
            "description": dict(self.description),
            "table_schema": dict(self.table_schema),
            "tags": list(self.tags),
            "classification": _plain(self.classification),
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """A PII finding attached to a review (its id comes from the screening)."""

    finding_id: str
    resolution: Resolution | None
    reason: str | None
    resolved_by: str | None
    resolved_at: str | None


@dataclass(frozen=True, slots=True)
class Review:
    """One submission of one content hash; ``decision`` is open, approved or rejected."""

    review_id: int
    dataset_id: str
    content_sha256: str
    submitted_by: str
    submitted_at: str
    decision: str
    decided_by: str | None
    decided_at: str | None
    reason: str | None
    findings: tuple[Finding, ...]
    # what the checks found in the submitted bytes, as data: {"pii": ..., "validation": ...}
    reports: Mapping[str, Any]

    @property
    def unresolved(self) -> tuple[str, ...]:
        return tuple(f.finding_id for f in self.findings if f.resolution is None)

    def as_dict(self) -> dict[str, Any]:
        """The review as JSON-ready data, with the ids of its unresolved findings."""
        return {
            **{f: getattr(self, f) for f in self.__dataclass_fields__},
            "findings": [_plain(f) for f in self.findings],
            "reports": dict(self.reports),
            "unresolved": list(self.unresolved),
        }


def _plain(record: Classification | Finding | None) -> dict[str, Any] | None:
    """A small record as a dict (enums are str, so JSON-ready as they are)."""
    if record is None:
        return None
    return {f: getattr(record, f) for f in record.__dataclass_fields__}


# ---- pure checks ------------------------------------------------------------------------


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} must be given (a non-empty text)")
    return value.strip()


def _sha256(value: object, what: str = "content_sha256") -> str:
    if not isinstance(value, str) or not _SHA256.match(value.lower()):
        raise InvalidInput(f"{what} must be a SHA-256 in hex (64 characters), got {value!r}")
    return value.lower()


def _localised(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not value:
        raise InvalidInput(f"{what} must map a language (ar, fr, en) to its text")
    out: dict[str, str] = {}
    for lang, text in value.items():
        if lang not in LANGUAGES:
            raise InvalidInput(f"{what}: language {lang!r} is not one of ar, fr, en")
        out[lang] = _text(text, f"{what} ({lang})")
    return out


def _table_schema(value: object) -> dict[str, Any]:
    if isinstance(value, Mapping):
        fields = value.get("fields")
        if isinstance(fields, list) and all(
            isinstance(f, Mapping) and isinstance(f.get("name"), str) for f in fields
        ):
            return dict(value)
    raise InvalidInput("table_schema must be a Table Schema: an object with a list of named fields")


def _enum(kind: type[_E], value: object, what: str) -> _E:
    choices = ", ".join(member.value for member in kind)
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be one of {choices}, got {value!r}")
    try:
        return kind(value)
    except ValueError as exc:
        raise InvalidInput(f"{what} must be one of {choices}, got {value!r}") from exc


def check_action(action: str, actor: User, dataset: Dataset | None) -> None:
    """Refuse ``action`` by ``actor`` on ``dataset`` for a wrong role, another agency or the
    dataset's state (:class:`WrongRole`, :class:`OtherAgency`, :class:`IllegalTransition`)."""
    allowed = ROLES[action]
    dataset_id = dataset.dataset_id if dataset else ""
    if not actor.roles & allowed:
        held = ", ".join(sorted(actor.roles)) or "no role"
        needed = " or ".join(f"an {r}" if r[0] in "aeiou" else f"a {r}" for r in sorted(allowed))
        raise WrongRole(
            f"{actor.user_id} ({held}) may not {_VERBS[action]}: only {needed} may",
            action=action,
            dataset_id=dataset_id,
        )
    if dataset is None:
        return
    operator_power = Role.OPERATOR in allowed and Role.OPERATOR in actor.roles
    if not operator_power and actor.agency != dataset.owner_agency:
        raise OtherAgency(
            f"{actor.user_id} belongs to {actor.agency}, but dataset {dataset_id} belongs to "
            f"{dataset.owner_agency}: only people of {dataset.owner_agency} may act on it",
            action=action,
            dataset_id=dataset_id,
        )
    sources, _ = TRANSITIONS[action]
    live = action == "withdraw" and dataset.published_sha256 is not None
    if dataset.state not in sources and not live:
        listed = " or ".join(sorted(sources))
        raise IllegalTransition(
            f"dataset {dataset_id} is {dataset.state}: only a dataset that is {listed} can "
            f"{_PASSIVE[action]}",
            action=action,
            dataset_id=dataset_id,
        )


def check_publishable(action: str, dataset: Dataset) -> None:
    """Refuse with :class:`NotPublishable` unless the dataset is PUBLIC without personal data."""
    c = dataset.classification
    if c is None:
        raise NotPublishable(
            f"dataset {dataset.dataset_id} is not classified; only PUBLIC data without "
            "personal data can be published",
            action=action,
            dataset_id=dataset.dataset_id,
        )
    if c.level is not Level.PUBLIC:
        raise NotPublishable(
            f"dataset {dataset.dataset_id} is classified {c.level}; only PUBLIC data "
            "can be published",
            action=action,
            dataset_id=dataset.dataset_id,
        )
    if c.personal_data:
        raise NotPublishable(
            f"dataset {dataset.dataset_id} holds personal data; remove or generalise the "
            "personal columns and classify it again without personal data before publishing",
            action=action,
            dataset_id=dataset.dataset_id,
        )


def check_four_eyes(actor: User, dataset: Dataset, review: Review) -> None:
    """Refuse with :class:`FourEyes` when ``actor`` took part in what they would approve."""
    roles = []
    if dataset.classification and dataset.classification.classified_by == actor.user_id:
        roles.append("classified it")
    if review.submitted_by == actor.user_id:
        roles.append("submitted it for review")
    if any(f.resolved_by == actor.user_id for f in review.findings):
        roles.append("resolved one of its PII findings")
    if roles:
        raise FourEyes(
            f"{actor.user_id} {' and '.join(roles)}, so may not also approve dataset "
            f"{dataset.dataset_id}: four eyes, another approver of {dataset.owner_agency} "
            "must approve it",
            action="approve",
            dataset_id=dataset.dataset_id,
        )


# ---- the workflow -----------------------------------------------------------------------


class Workflow:
    """Users, the dataset inventory and the publication workflow over one store.

    Each operation takes the acting user (a :class:`User` or a user id; roles and agency are
    read again from the database), runs in one transaction with its audit entry, and returns
    the new record. Refusals raise a :class:`~governance.Refused` subclass and change nothing;
    malformed arguments raise :class:`~governance.InvalidInput`, unknown ids a
    :class:`~governance.NotFound` subclass.
    """

    def __init__(self, store: GovernanceStore, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._store = store
        self._clock = clock
        self.audit = AuditLog(store)

    # ---- users --------------------------------------------------------------------------

    def register_user(  # noqa: PLR0913 - keyword-only: each names a field
        self,
        actor: User | str | None,
        user_id: str,
        *,
        name: str,
        agency: str,
        roles: Iterable[Role | str],
        reason: str = "",
    ) -> User:
        """Register a person. ``actor`` must be an operator, or None for the very first user
        of an empty database, who must be an operator (bootstrap)."""
        if not _USER_ID.match(user_id):
            raise InvalidInput(f"user id {user_id!r} must be letters, digits, . _ @ - (max 64)")
        if not _AGENCY.match(agency):
            raise InvalidInput(f"agency {agency!r} must be a code in capitals, e.g. DOUANE")
        new = User(
            user_id, _text(name, "name"), agency, frozenset(_enum(Role, r, "role") for r in roles)
        )
        now = self._now()
        with self._store.transaction("register a user") as conn:
            if actor is None:
                if conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one():
                    raise WrongRole(
                        "an acting operator is needed: only the first user registers alone",
                        action="register_user",
                    )
                if Role.OPERATOR not in new.roles:
                    raise InvalidInput("the first user must be an operator")
                by = "bootstrap"
            else:
                check_action("register_user", self._actor(conn, actor), None)
                by = _actor_id(actor)
            if conn.execute(sa.select(users.c.user_id).where(users.c.user_id == user_id)).first():
                raise AlreadyExists(f"user {user_id} is already registered")
            conn.execute(
                users.insert(),
                {
                    "user_id": new.user_id,
                    "name": new.name,
                    "agency": new.agency,
                    "roles": sorted(new.roles),
                    "created_at": format_time(now),
                },
            )
            append_entry(
                conn,
                actor=by,
                action="user.register",
                subject=f"user:{user_id}",
                reason=reason,
                details=new.as_dict(),
                at=now,
            )
        return new

    def set_roles(
        self, actor: User | str, user_id: str, roles: Iterable[Role | str], *, reason: str
    ) -> User:
        """Replace a person's roles (operators only). Taking every role away disables the
        account and revokes its API tokens, and those issued with them, in the same
        transaction: giving a role back later does not revive them (the person is issued new
        ones)."""
        new_roles = frozenset(_enum(Role, r, "role") for r in roles)
        reason = _text(reason, "a reason")
        now = self._now()
        with self._store.transaction("change roles") as conn:
            check_action("set_roles", self._actor(conn, actor), None)
            old = self._actor(conn, user_id)
            conn.execute(
                users.update().where(users.c.user_id == user_id).values(roles=sorted(new_roles))
            )
            details: dict[str, object] = {"from": sorted(old.roles), "to": sorted(new_roles)}
            if not new_roles:
                theirs = sa.select(api_tokens.c.token_id).where(api_tokens.c.user_id == user_id)
                roots = conn.execute(theirs).scalars().all()
                details["tokens_revoked"] = revoke_tokens(conn, roots, at=format_time(now))
            append_entry(
                conn,
                actor=_actor_id(actor),
                action="user.roles",
                subject=f"user:{user_id}",
                reason=reason,
                details=details,
                at=now,
            )
        return User(old.user_id, old.name, old.agency, new_roles)

    def user(self, user_id: str) -> User:
        with self._store.transaction("read a user") as conn:
            return self._actor(conn, user_id)

    def users(self, *, agency: str | None = None, role: Role | None = None) -> list[User]:
        """Registered people by user id; only one agency's, or only holders of ``role``."""
        query = sa.select(users).order_by(users.c.user_id)
        if agency is not None:
            query = query.where(users.c.agency == agency)
        with self._store.transaction("list users") as conn:
            found = [_user(row) for row in conn.execute(query).all()]
        return [u for u in found if role is None or role in u.roles]

    # ---- the inventory ------------------------------------------------------------------

    def register_dataset(  # noqa: PLR0913 - keyword-only: each names a field
        self,
        actor: User | str,
        dataset_id: str,
        *,
        title: Mapping[str, str],
        description: Mapping[str, str],
        source: str,
        table_schema: Mapping[str, Any],
        licence: str,
        update_frequency: str,
        tags: Sequence[str] = (),
        steward: str | None = None,
        reason: str = "",
    ) -> Dataset:
        """Add a dataset, in DRAFT, owned by the acting steward's agency. ``title`` and
        ``description`` map languages (ar, fr, en) to text; ``steward`` (default: the actor)
        must be a steward of the same agency."""
        if not _ID.match(dataset_id):
            raise InvalidInput(
                f"dataset id {dataset_id!r} must be 2-100 lowercase letters, digits, - or _"
            )
        if update_frequency not in FREQUENCIES:
            raise InvalidInput(
                f"update_frequency must be one of {', '.join(FREQUENCIES)}, "
                f"got {update_frequency!r}"
            )
        moment = self._now()
        now = format_time(moment)
        record: dict[str, Any] = {
            "dataset_id": dataset_id,
            "title": _localised(title, "title"),
            "description": _localised(description, "description"),
            "source": _text(source, "source"),
            "table_schema": _table_schema(table_schema),
            "licence": _text(licence, "licence"),
            "update_frequency": update_frequency,
            "tags": check_tags(tags),
        }
        with self._store.transaction("register a dataset") as conn:
            user = self._actor(conn, actor)
            check_action("register_dataset", user, None)
            keeper = user if steward is None else self._actor(conn, steward)
            if Role.STEWARD not in keeper.roles or keeper.agency != user.agency:
                raise InvalidInput(
                    f"{keeper.user_id} cannot be the steward: a dataset's steward must be a "
                    f"steward of {user.agency}"
                )
            if conn.execute(
                sa.select(datasets.c.dataset_id).where(datasets.c.dataset_id == dataset_id)
            ).first():
                raise AlreadyExists(f"dataset {dataset_id} is already registered")
            record |= {"owner_agency": user.agency, "steward": keeper.user_id}
            conn.execute(
                datasets.insert(),
                {**record, "state": State.DRAFT.value, "created_at": now, "updated_at": now},
            )
            append_entry(
                conn,
                actor=user.user_id,
                action="dataset.register",
                subject=f"dataset:{dataset_id}",
                reason=reason,
                details={**record, "to": State.DRAFT.value},
                at=moment,
            )
            return self._dataset(conn, dataset_id)

    def dataset(self, dataset_id: str) -> Dataset:
        with self._store.transaction("read a dataset") as conn:
            return self._dataset(conn, dataset_id)

    def datasets(self, *, agency: str | None = None, state: State | None = None) -> list[Dataset]:
        query = sa.select(datasets.c.dataset_id).order_by(datasets.c.dataset_id)
        if agency is not None:
            query = query.where(datasets.c.owner_agency == agency)
        if state is not None:
            query = query.where(datasets.c.state == state.value)
        with self._store.transaction("list datasets") as conn:
            ids = conn.execute(query).scalars().all()
            return [self._dataset(conn, i) for i in ids]

    def review(self, dataset_id: str) -> Review | None:
        """The dataset's latest review, if it was ever submitted."""
        with self._store.transaction("read a review") as conn:
            self._dataset(conn, dataset_id)
            return self._latest_review(conn, dataset_id)

    def history(self, dataset_id: str) -> list[AuditEntry]:
        """The audit entries about one dataset, oldest first."""
        return self.audit.entries(subject=f"dataset:{dataset_id}")

    # ---- the workflow -------------------------------------------------------------------

    def classify(  # noqa: PLR0913 - keyword-only: each names a field
        self,
        actor: User | str,
        dataset_id: str,
        *,
        level: Level | str,
        personal_data: bool,
        legal_basis: str,
        justification: str,
    ) -> Dataset:
        """Classify (or classify again before submission): DRAFT or CLASSIFIED -> CLASSIFIED.
        While an earlier version is live on the portal (rejected and reopened since), only a
        publishable classification is accepted (:class:`NotPublishable`): withdraw it first."""
        chosen = _enum(Level, level, "level")
        if not isinstance(personal_data, bool):
            raise InvalidInput("personal_data must be true or false")
        basis = _text(legal_basis, "legal_basis")
        why = _text(justification, "justification")
        with self._store.transaction("classify a dataset") as conn:
            user, ds = self._begin(conn, "classify", actor, dataset_id)
            if ds.published_sha256 is not None and (chosen is not Level.PUBLIC or personal_data):
                what = f"{chosen}{' with personal data' if personal_data else ''}"
                raise NotPublishable(
                    f"dataset {dataset_id} has a version live on the portal, which only PUBLIC "
                    f"data without personal data may be: it cannot be classified {what} while "
                    "it is; withdraw it first",
                    action="classify",
                    dataset_id=dataset_id,
                )
            values = {
                "classification": chosen.value,
                "personal_data": personal_data,
                "legal_basis": basis,
                "justification": why,
                "classified_by": user.user_id,
            }
            return self._move(
                conn,
                user,
                ds,
                "classify",
                reason=why,
                values=values,
                details={
                    "level": chosen.value,
                    "personal_data": personal_data,
                    "legal_basis": basis,
                },
            )

    def submit_for_review(  # noqa: PLR0913 - keyword-only: each names a field
        self,
        actor: User | str,
        dataset_id: str,
        *,
        content_sha256: str,
        pii_findings: Sequence[str] = (),
        reports: Mapping[str, Any] | None = None,
        reason: str = "",
    ) -> Review:
        """Submit the bytes whose SHA-256 is ``content_sha256`` for review, with the ids of the
        PII screening's findings (each must be resolved before approval) and the checks'
        ``reports`` (kept with the review, shown to the approver). Runs from CLASSIFIED, and
        from APPROVED or PUBLISHED for new bytes."""
        digest = _sha256(content_sha256)
        if reports is not None and not isinstance(reports, Mapping):
            raise InvalidInput("reports must map a check's name to its report")
        ids = list(pii_findings)
        if isinstance(pii_findings, str) or not all(isinstance(i, str) and i for i in ids):
            raise InvalidInput("pii_findings must be a list of finding ids")
        if len(set(ids)) != len(ids):
            raise InvalidInput("pii_findings lists a finding twice")
        with self._store.transaction("submit a dataset for review") as conn:
            user, ds = self._begin(conn, "submit_for_review", actor, dataset_id)
            check_publishable("submit_for_review", ds)
            now = format_time(self._now())
            review_id = conn.execute(
                reviews.insert().returning(reviews.c.review_id),
                {
                    "dataset_id": dataset_id,
                    "content_sha256": digest,
                    "submitted_by": user.user_id,
                    "submitted_at": now,
                    "decision": "open",
                    "reports": dict(reports or {}),
                },
            ).scalar_one()
            if ids:
                conn.execute(
                    findings.insert(), [{"review_id": review_id, "finding_id": i} for i in ids]
                )
            self._move(
                conn,
                user,
                ds,
                "submit_for_review",
                reason=reason,
                values={"content_sha256": digest},
                content=digest,
                details={"review": review_id, "findings": ids},
            )
            return self._review(conn, review_id)

    def resolve_finding(
        self,
        actor: User | str,
        dataset_id: str,
        finding_id: str,
        *,
        resolution: Resolution | str,
        reason: str,
    ) -> Review:
        """Resolve one PII finding of the open review by hand: justify keeping the column.
        The dataset stays IN_REVIEW.

        ``drop``, ``generalise`` and ``neutralise`` are refused (:class:`NeedsDerivation`):
        the finding is in the very bytes under review, so only a derived file without the
        column (or with it generalised, or its formula cells made text) can resolve it that
        way: ``record_derivation`` does, with the lineage."""
        chosen = _enum(Resolution, resolution, "resolution")
        why = _text(reason, "a reason")
        with self._store.transaction("resolve a PII finding") as conn:
            user, ds = self._begin(conn, "resolve_finding", actor, dataset_id)
            review = self._open_review(conn, ds)
            if finding_id not in {f.finding_id for f in review.findings}:
                raise UnknownFinding(
                    f"{finding_id!r} is not a PII finding of dataset {dataset_id}'s review"
                )
            if chosen is not Resolution.JUSTIFY:
                raise NeedsDerivation(
                    f"{finding_id} is in the bytes under review, so it cannot be resolved by "
                    f"{chosen.value} by hand: derive a file without that column or with it "
                    "generalised (tabadul dataset derive ... --submit) and the derivation "
                    "resolves it; or justify keeping it",
                    action="resolve_finding",
                    dataset_id=dataset_id,
                )
            conn.execute(
                findings.update()
                .where(findings.c.review_id == review.review_id)
                .where(findings.c.finding_id == finding_id)
                .values(
                    resolution=chosen.value,
                    reason=why,
                    resolved_by=user.user_id,
                    resolved_at=format_time(self._now()),
                )
            )
            self._move(
                conn,
                user,
                ds,
                "resolve_finding",
                reason=why,
                content=review.content_sha256,
                details={
                    "review": review.review_id,
                    "finding": finding_id,
                    "resolution": chosen.value,
                },
            )
            return self._review(conn, review.review_id)

    def approve(self, actor: User | str, dataset_id: str, *, reason: str = "") -> Review:
        """Approve the reviewed bytes for publication: IN_REVIEW -> APPROVED. Refused for
        someone who took part (four eyes), data that may not be opened, or open findings."""
        with self._store.transaction("approve a dataset") as conn:
            user, ds = self._begin(conn, "approve", actor, dataset_id)
            review = self._open_review(conn, ds)
            check_four_eyes(user, ds, review)
            check_publishable("approve", ds)
            if review.unresolved:
                count = len(review.unresolved)
                raise PiiUnresolved(
                    f"{count} PII finding{'s are' if count > 1 else ' is'} unresolved "
                    f"({', '.join(review.unresolved)}); resolve each (drop, generalise or "
                    f"justify) before approving dataset {dataset_id}",
                    action="approve",
                    dataset_id=dataset_id,
                    findings=review.unresolved,
                )
            self._decide(conn, review, "approved", user, reason)
            self._move(
                conn,
                user,
                ds,
                "approve",
                reason=reason,
                content=review.content_sha256,
                details={"review": review.review_id},
            )
            return self._review(conn, review.review_id)

    def reject(self, actor: User | str, dataset_id: str, *, reason: str) -> Review:
        """Send the dataset back: IN_REVIEW -> REJECTED (then ``reopen`` -> DRAFT)."""
        why = _text(reason, "a reason")
        with self._store.transaction("reject a dataset") as conn:
            user, ds = self._begin(conn, "reject", actor, dataset_id)
            review = self._open_review(conn, ds)
            self._decide(conn, review, "rejected", user, why)
            self._move(
                conn,
                user,
                ds,
                "reject",
                reason=why,
                content=review.content_sha256,
                details={"review": review.review_id},
            )
            return self._review(conn, review.review_id)

    def reopen(self, actor: User | str, dataset_id: str, *, reason: str) -> Dataset:
        """Take a rejected dataset back to DRAFT to rework it."""
        why = _text(reason, "a reason")
        with self._store.transaction("reopen a dataset") as conn:
            user, ds = self._begin(conn, "reopen", actor, dataset_id)
            return self._move(conn, user, ds, "reopen", reason=why)

    def mark_published(
        self, actor: User | str, dataset_id: str, *, content_sha256: str, reference: str
    ) -> Dataset:
        """Record that the approved bytes are on the portal (``reference``: e.g. the CKAN
        package id): APPROVED -> PUBLISHED. Other bytes are refused
        (:class:`ChangedSinceApproval`): they need a new review."""
        digest = _sha256(content_sha256)
        ref = _text(reference, "the publication reference")
        with self._store.transaction("record a publication") as conn:
            user, ds = self._begin(conn, "mark_published", actor, dataset_id)
            check_publishable("mark_published", ds)
            review = self._latest_review(conn, dataset_id)
            assert review is not None  # an APPROVED dataset has its approved review
            if digest != review.content_sha256:
                raise ChangedSinceApproval(
                    f"the bytes to publish (SHA-256 {digest[:12]}…) are not the bytes approved "
                    f"for dataset {dataset_id} (SHA-256 {review.content_sha256[:12]}…): they "
                    "changed since approval; submit them for a new review",
                    action="mark_published",
                    dataset_id=dataset_id,
                    approved=review.content_sha256,
                    offered=digest,
                )
            return self._move(
                conn,
                user,
                ds,
                "mark_published",
                reason=ref,
                values={"published_sha256": digest, "publication_reference": ref},
                content=digest,
                details={"review": review.review_id, "reference": ref},
            )

    def withdraw(self, actor: User | str, dataset_id: str, *, reason: str) -> Dataset:
        """Take a published dataset off the portal for good: -> WITHDRAWN (final). An open
        review of newer bytes is closed as superseded."""
        why = _text(reason, "a reason")
        with self._store.transaction("withdraw a dataset") as conn:
            user, ds = self._begin(conn, "withdraw", actor, dataset_id)
            conn.execute(
                reviews.update()
                .where(reviews.c.dataset_id == dataset_id, reviews.c.decision == "open")
                .values(decided_by=user.user_id, decided_at=format_time(self._now()))
                .values(decision="superseded", reason=why)
            )
            return self._move(
                conn,
                user,
                ds,
                "withdraw",
                reason=why,
                values={"published_sha256": None},
                content=ds.published_sha256,
                details={"reference": ds.publication_reference},
            )

    # ---- internals ----------------------------------------------------------------------

    def _now(self) -> datetime:
        """The clock's time at the stored (millisecond) precision."""
        return datetime.fromisoformat(format_time(self._clock()))

    def _begin(
        self, conn: sa.Connection, action: str, actor: User | str, dataset_id: str
    ) -> tuple[User, Dataset]:
        user = self._actor(conn, actor)
        ds = self._dataset(conn, dataset_id, lock=True)
        check_action(action, user, ds)
        return user, ds

    def _move(  # noqa: PLR0913 - keyword-only: each names a field
        self,
        conn: sa.Connection,
        user: User,
        ds: Dataset,
        operation: str,
        *,
        reason: str = "",
        values: Mapping[str, Any] | None = None,
        content: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Dataset:
        """Apply the transition of ``operation`` and write its audit entry."""
        target = TRANSITIONS[operation][1]
        now = self._now()
        conn.execute(
            datasets.update()
            .where(datasets.c.dataset_id == ds.dataset_id)
            .values(state=target.value, updated_at=format_time(now), **(values or {}))
        )
        append_entry(
            conn,
            actor=user.user_id,
            action=_AUDIT_ACTIONS[operation],
            subject=ds.subject,
            reason=reason,
            content_sha256=content,
            details={"from": ds.state.value, "to": target.value, **(details or {})},
            at=now,
        )
        return self._dataset(conn, ds.dataset_id)

    def _decide(
        self, conn: sa.Connection, review: Review, decision: str, user: User, reason: str
    ) -> None:
        conn.execute(
            reviews.update()
            .where(reviews.c.review_id == review.review_id)
            .values(
                decision=decision,
                decided_by=user.user_id,
                decided_at=format_time(self._now()),
                reason=reason or None,
            )
        )

    def _actor(self, conn: sa.Connection, actor: User | str) -> User:
        user_id = _actor_id(actor)
        row = conn.execute(sa.select(users).where(users.c.user_id == user_id)).first()
        if row is None:
            raise UnknownUser(f"no user {user_id!r} is registered")
        return _user(row)

    def _dataset(self, conn: sa.Connection, dataset_id: str, *, lock: bool = False) -> Dataset:
        query = sa.select(datasets).where(datasets.c.dataset_id == dataset_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise UnknownDataset.of(dataset_id)
        classification = None
        if row.classification is not None:
            classification = Classification(
                Level(row.classification),
                bool(row.personal_data),
                row.legal_basis or "",
                row.justification or "",
                row.classified_by or "",
            )
        return Dataset(
            dataset_id=row.dataset_id,
            owner_agency=row.owner_agency,
            steward=row.steward,
            title=row.title,
            description=row.description,
            source=row.source,
            table_schema=row.table_schema,
            licence=row.licence,
            update_frequency=row.update_frequency,
            tags=tuple(row.tags),
            state=State(row.state),
            classification=classification,
            content_sha256=row.content_sha256,
            published_sha256=row.published_sha256,
            publication_reference=row.publication_reference,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def _review(self, conn: sa.Connection, review_id: int) -> Review:
        row = conn.execute(sa.select(reviews).where(reviews.c.review_id == review_id)).one()
        found = conn.execute(
            sa.select(findings)
            .where(findings.c.review_id == review_id)
            .order_by(findings.c.finding_id)
        ).all()
        return Review(
            review_id=int(row.review_id),
            dataset_id=row.dataset_id,
            content_sha256=row.content_sha256,
            submitted_by=row.submitted_by,
            submitted_at=row.submitted_at,
            decision=row.decision,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            reason=row.reason,
            findings=tuple(
                Finding(
                    f.finding_id,
                    Resolution(f.resolution) if f.resolution else None,
                    f.reason,
                    f.resolved_by,
                    f.resolved_at,
                )
                for f in found
            ),
            reports=row.reports or {},
        )

    def _latest_review(self, conn: sa.Connection, dataset_id: str) -> Review | None:
        review_id = conn.execute(
            sa.select(sa.func.max(reviews.c.review_id)).where(reviews.c.dataset_id == dataset_id)
        ).scalar_one()
        return None if review_id is None else self._review(conn, int(review_id))

    def _open_review(self, conn: sa.Connection, ds: Dataset) -> Review:
        review = self._latest_review(conn, ds.dataset_id)
        assert review is not None
        assert review.decision == "open"  # IN_REVIEW always has its open review
        return review


def _user(row: sa.Row[Any]) -> User:
    return User(row.user_id, row.name, row.agency, frozenset(Role(r) for r in row.roles))


def _actor_id(actor: User | str) -> str:
    return actor.user_id if isinstance(actor, User) else actor


def revoke_tokens(conn: sa.Connection, token_ids: Iterable[str], *, at: str) -> list[str]:
    """Revoke, at ``at``, the live API tokens among ``token_ids`` and every live token issued
    with one of them, transitively (a token dies with the one it was minted with); the ids
    revoked, sorted. Shared by token revocation and the disabling of an account."""
    revoked: list[str] = []
    generation = list(token_ids)
    while generation:
        live = sa.and_(api_tokens.c.token_id.in_(generation), api_tokens.c.revoked_at.is_(None))
        revoked += conn.execute(sa.select(api_tokens.c.token_id).where(live)).scalars()
        conn.execute(api_tokens.update().where(live).values(revoked_at=at))
        # a parent is issued before its children, so the generations end
        minted = sa.select(api_tokens.c.token_id).where(
            api_tokens.c.parent_token_id.in_(generation)
        )
        generation = list(conn.execute(minted).scalars())
    return sorted(revoked)
