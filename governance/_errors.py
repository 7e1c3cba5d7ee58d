"""Governance's errors.

Every error raised by ``governance`` derives from :class:`GovernanceError`; each has a stable,
machine-readable ``code`` (what the CLI, the API and the logs use) and a ``message`` written
for the person who tried::

    GovernanceError                 governance-error
    ├── StoreError                  store            (cannot open, migrate, read or write)
    ├── InvalidInput                invalid-input    (a bad id, level, hash, empty reason...)
    │   ├── InvalidTag              invalid-tag      (a tag CKAN refuses or with an invisible
    │   │                                             character; names the tag and the rule)
    │   ├── UnknownColumn           unknown-column   (a derivation names columns the file
    │   │                                             lacks, or names twice)
    │   └── BadSource               bad-source       (a CSV file that is not a table in the
    │       │                                         declared dialect: cannot be opened,
    │       │                                         no header, bad quoting, a ragged row)
    │       ├── NotUtf8             not-utf8         (names the line and the byte offset)
    │       └── TooLarge            too-large        (over a bound of ``TableLimits``)
    │           ├── FileTooLarge    file-too-large   (more bytes than ``max_bytes``)
    │           ├── LineTooLong     line-too-long    (a record over ``max_line`` characters)
    │           ├── CellTooLarge    cell-too-large   (a cell over ``max_cell`` characters)
    │           └── TooWide         too-wide         (more columns than ``max_columns``)
    ├── AlreadyExists               already-exists   (a user or dataset id is taken)
    ├── Unauthenticated             unauthenticated  (an API token that is malformed,
    │   │                                             unknown, expired or revoked)
    │   └── TooManyAttempts         too-many-attempts (too many failed sign-ins from one
    │                                                 client: wait ``retry_after`` seconds)
    ├── NotFound                    not-found
    │   ├── UnknownUser             unknown-user
    │   ├── UnknownDataset          unknown-dataset
    │   └── UnknownFinding          unknown-finding  (not a finding of the open review)
    ├── Refused                     refused          (the workflow says no; names the action)
    │   ├── WrongRole               wrong-role       (e.g. only approvers approve)
    │   ├── OtherAgency             other-agency     (people act on their agency's datasets)
    │   ├── IllegalTransition       illegal-transition (not from the dataset's current state)
    │   ├── FourEyes                four-eyes        (who classified, submitted or resolved
    │   │                                             a finding may not approve)
    │   ├── NotPublishable          not-publishable  (only PUBLIC data without personal data
    │   │                                             is published, or classified while live)
    │   ├── PiiUnresolved           pii-unresolved   (lists the open finding ids)
    │   ├── NeedsDerivation         needs-derivation (drop/generalise by hand: only a
    │   │                                             recorded derivation does that)
    │   ├── ChangedSinceApproval    changed-since-approval (other bytes than those approved)
    │   └── DerivedNotReviewed      derived-not-reviewed (the open review is of other bytes
    │                                                 than the derived file)
    ├── ReleaseError                release-invalid  (a signed release that cannot be read)
    │   ├── ReleaseUntrusted        release-untrusted (not a signing certificate the CA gave
    │   │                                             its signer, or not valid at its time)
    │   └── ReleaseForged           release-forged   (changed after it was signed)
    └── AuditError                  audit-error
        └── AuditTampered           audit-tampered   (carries the first bad ``seq``, ``reason``)

Database exceptions are caught where they happen and re-raised as :class:`StoreError` with
``from exc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar


class GovernanceError(Exception):
    """Root of governance's errors; ``code`` is stable, ``message`` is for people."""

    code: ClassVar[str] = "governance-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict[str, object]:
        """The error as data, for JSON output and problem details."""
        return {"code": self.code, "message": self.message}


class StoreError(GovernanceError):
    """The governance database cannot be opened, migrated, read or written."""

    code = "store"


class InvalidInput(GovernanceError):
    """An argument is malformed (an id, a level, a SHA-256, a missing reason...)."""

    code = "invalid-input"


class InvalidTag(InvalidInput):
    """A dataset tag CKAN would refuse, or holding an invisible character: ``index`` is its
    position in the list, ``rule`` the rule it breaks (``length``, ``characters`` or
    ``invisible``)."""

    code = "invalid-tag"

    def __init__(self, message: str, *, index: int, rule: str) -> None:
        super().__init__(message)
        self.index = index
        self.rule = rule

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "index": self.index, "rule": self.rule}


class BadSource(InvalidInput):
    """A CSV file cannot be read as a table in the declared dialect: it cannot be opened, has
    no header row, is badly quoted or (where widths must agree) has a ragged row. ``line`` is
    the 1-based line where reading stopped (None when no line was read)."""

    code = "bad-source"

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "line": self.line}


class NotUtf8(BadSource):
    """The file holds bytes that are not UTF-8 (a byte-order mark is allowed)."""

    code = "not-utf8"


class TooLarge(BadSource):
    """The file is over one of the bounds of reading (``TableLimits``): it is not read further,
    so no file can make a reader hold more than the bounds allow."""

    code = "too-large"


class FileTooLarge(TooLarge):
    code = "file-too-large"


class LineTooLong(TooLarge):
    """One record (its physical lines, when a quoted cell spans several) is too long."""

    code = "line-too-long"


class CellTooLarge(TooLarge):
    code = "cell-too-large"


class TooWide(TooLarge):
    """The header or a row has more columns than allowed."""

    code = "too-wide"


class AlreadyExists(GovernanceError):
    code = "already-exists"


class Unauthenticated(GovernanceError):
    """An API token that is malformed, unknown, expired or revoked (never echoed)."""

    code = "unauthenticated"


class TooManyAttempts(Unauthenticated):
    """Too many failed sign-ins from one client lately; ``retry_after`` seconds to wait."""

    code = "too-many-attempts"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "retry_after": self.retry_after}


class NotFound(GovernanceError):
    code = "not-found"


class UnknownUser(NotFound):
    code = "unknown-user"


class UnknownDataset(NotFound):
    code = "unknown-dataset"

    @classmethod
    def of(cls, dataset_id: str) -> UnknownDataset:
        """The error for ``dataset_id``: the same whether nobody registered it or the person
        asking may not learn that another agency did."""
        return cls(f"no dataset {dataset_id!r} is registered")


class UnknownFinding(NotFound):
    code = "unknown-finding"


class Refused(GovernanceError):
    """The workflow refused ``action`` on ``dataset_id`` (empty for actions on no dataset)."""

    code = "refused"

    def __init__(self, message: str, *, action: str, dataset_id: str = "") -> None:
        super().__init__(message)
        self.action = action
        self.dataset_id = dataset_id

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "action": self.action, "dataset": self.dataset_id}


class WrongRole(Refused):
    code = "wrong-role"


class OtherAgency(Refused):
    code = "other-agency"


class IllegalTransition(Refused):
    code = "illegal-transition"


class FourEyes(Refused):
    code = "four-eyes"


class NotPublishable(Refused):
    code = "not-publishable"


class PiiUnresolved(Refused):
    """Approval waits for these PII findings to be resolved."""

    code = "pii-unresolved"

    def __init__(
        self, message: str, *, action: str, dataset_id: str, findings: Sequence[str]
    ) -> None:
        super().__init__(message, action=action, dataset_id=dataset_id)
        self.findings = tuple(findings)

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "findings": list(self.findings)}


class NeedsDerivation(Refused):
    """A finding is dropped or generalised only by a recorded derivation, not by hand."""

    code = "needs-derivation"


class ChangedSinceApproval(Refused):
    """The bytes offered are not the bytes approved; they need a new review."""

    code = "changed-since-approval"

    def __init__(
        self, message: str, *, action: str, dataset_id: str, approved: str, offered: str
    ) -> None:
        super().__init__(message, action=action, dataset_id=dataset_id)
        self.approved = approved
        self.offered = offered

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "approved_sha256": self.approved, "sha256": self.offered}


class AuditError(GovernanceError):
    code = "audit-error"


class AuditTampered(AuditError):
    """The audit log does not verify; ``seq`` is the first entry found wrong. ``kind`` says
    how: ``changed`` (entries changed, inserted, removed or moved, or a head that does not
    match them), ``unsigned`` (no signed head where one was required), ``rollback`` (fewer
    entries than a witness saw), ``split-view`` (not the log a witness saw: rewritten, even
    if re-signed with the governance key)."""

    code = "audit-tampered"

    def __init__(self, seq: int, reason: str, kind: str = "changed") -> None:
        super().__init__(f"audit entry {seq}: {reason}")
        self.seq = seq
        self.reason = reason
        self.kind = kind

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "seq": self.seq, "reason": self.reason, "kind": self.kind}
