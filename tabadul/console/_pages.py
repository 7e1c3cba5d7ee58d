"""What each page shows, computed from the governance records in pure code: which actions a
user is offered on a dataset (and, for those refused, the code and the reason, worked out
with the same checks the workflow runs), a dataset's PII findings beside their resolutions,
texts picked in the page's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from governance import (
    TRANSITIONS,
    AuditEntry,
    Dataset,
    FourEyes,
    Refused,
    Review,
    User,
    check_action,
    check_four_eyes,
    check_publishable,
)
from tabadul._access import OVERSIGHT
from tabadul.console._i18n import LANGUAGES, Translator

# actions that only run on data that may be opened
_PUBLISHING = frozenset({"submit_for_review", "approve", "mark_published"})


@dataclass(frozen=True, slots=True)
class Gate:
    """An action the page offers: allowed (no ``code``), or refused with a code and why."""

    code: str = ""
    message: str = ""

    @property
    def allowed(self) -> bool:
        return not self.code


def may_read_everything(user: User) -> bool:
    """Operators and auditors read the global audit trail and the traffic dashboard."""
    return bool(user.roles & OVERSIGHT)


def offered(action: str, dataset: Dataset) -> bool:
    """Whether ``action`` runs from the dataset's state (withdraw also while a version is
    live), i.e. whether the page shows it at all."""
    sources, _ = TRANSITIONS[action]
    live = action == "withdraw" and dataset.published_sha256 is not None
    return dataset.state in sources or live


def gate(action: str, user: User, dataset: Dataset) -> Gate | None:
    """None when the dataset's state does not offer ``action``; else whether ``user`` may
    run it (role, agency, publishability), with the workflow's own refusal."""
    if not offered(action, dataset):
        return None
    try:
        check_action(action, user, dataset)
        if action in _PUBLISHING:
            check_publishable(action, dataset)
    except Refused as exc:
        return Gate(exc.code, exc.message)
    return Gate()


def four_eyes_reason(user: User, dataset: Dataset, review: Review, t: Translator) -> str:
    """Why four eyes stops ``user``, in the page's language ("you classified it...")."""
    parts = []
    if dataset.classification and dataset.classification.classified_by == user.user_id:
        parts.append(t("four_eyes.classified"))
    if review.submitted_by == user.user_id:
        parts.append(t("four_eyes.submitted"))
    if any(f.resolved_by == user.user_id for f in review.findings):
        parts.append(t("four_eyes.resolved"))
    return t("four_eyes.reason", parts=t("four_eyes.and").join(parts), agency=dataset.owner_agency)


def approve_gate(user: User, dataset: Dataset, review: Review | None, t: Translator) -> Gate | None:
    """The approve button: refused for a wrong role or agency, four eyes, data that may not
    be opened, or unresolved PII findings (the order the workflow checks them in)."""
    base = gate("approve", user, dataset)
    if base is None or not base.allowed or review is None or review.decision != "open":
        return base
    try:
        check_four_eyes(user, dataset, review)
    except FourEyes as exc:
        return Gate(exc.code, four_eyes_reason(user, dataset, review, t))
    if review.unresolved:
        return Gate(
            "pii-unresolved",
            t("gate.unresolved", count=len(review.unresolved), ids=", ".join(review.unresolved)),
        )
    return base


def pick(texts: Mapping[str, str], lang: str) -> tuple[str, str]:
    """(language, text) of a localised text: the page's language, else fr, en, ar."""
    for code in (lang, *LANGUAGES):
        text = (texts.get(code) or "").strip()
        if text:
            return code, text
    return lang, ""


@dataclass(frozen=True, slots=True)
class FindingRow:
    """A PII finding of the review with what the screening said about it."""

    finding_id: str
    detail: Mapping[str, Any]
    resolution: str | None
    reason: str | None
    resolved_by: str | None
    resolved_at: str | None


def finding_rows(review: Review) -> list[FindingRow]:
    pii = review.reports.get("pii")
    found = pii.get("findings") if isinstance(pii, Mapping) else None
    details = {
        str(f.get("id")): f
        for f in (found if isinstance(found, list) else [])
        if isinstance(f, Mapping)
    }
    return [
        FindingRow(
            f.finding_id,
            details.get(f.finding_id, {}),
            f.resolution.value if f.resolution else None,
            f.reason,
            f.resolved_by,
            f.resolved_at,
        )
        for f in review.findings
    ]


def validation_of(review: Review) -> Mapping[str, Any] | None:
    report = review.reports.get("validation")
    return report if isinstance(report, Mapping) else None


def transition(entry: AuditEntry) -> tuple[str, str]:
    """The (from, to) states an audit entry records, empty when it records none."""
    return str(entry.details.get("from") or ""), str(entry.details.get("to") or "")


__all__ = [
    "FindingRow",
    "Gate",
    "approve_gate",
    "finding_rows",
    "four_eyes_reason",
    "gate",
    "may_read_everything",
    "offered",
    "pick",
    "transition",
    "validation_of",
]
