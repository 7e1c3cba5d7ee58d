"""The exchange core's errors.

Every error the core raises derives from :class:`ExchangeError`. Each one has a stable,
machine-readable ``code`` (what the wire, the logs and the CLI use) and a human message::

    ExchangeError
    ├── IdentityError                 invalid-identity
    ├── KeyStoreError                 key-store
    ├── CertificateError              invalid-certificate
    ├── InvalidPeriod                 invalid-period (a validity or overlap out of range)
    ├── DirectoryError                directory-invalid
    │   ├── DirectorySignatureError   directory-bad-signature
    │   ├── DirectoryExpiredError     directory-expired
    │   └── DirectoryRollbackError    directory-rollback
    ├── SealError                     seal (cannot encrypt: no key for the recipient...)
    ├── LogError                      log
    │   └── LogIntegrityError         log-tampered (carries the first bad position)
    │       ├── LogRollback           log-rollback (fewer records than a witness saw)
    │       └── LogSplitView          log-split-view (not the log a witness saw at that size)
    ├── EvidenceError                 evidence-invalid
    └── RejectError                   a receive-pipeline reject (protocol.md, "Reject codes")
        ├── Malformed                 malformed
        ├── UnknownSender             unknown-sender
        ├── CertificateRevoked        certificate-revoked
        ├── CertificateExpired        certificate-expired
        ├── BadSignature              bad-signature
        ├── Stale                     stale
        ├── Expired                   expired
        ├── Duplicate                 duplicate
        ├── Forbidden                 forbidden
        │   ├── PurposeMismatch       purpose-mismatch (no grant in force for the stated purpose)
        │   └── GrantExpired          grant-expired (the only grants have expired)
        ├── Undecryptable             undecryptable
        └── SchemaInvalid             schema-invalid (carries each error with its JSON path)

Errors of the libraries underneath (cryptography, json, the database drivers) are caught where
they happen and re-raised as one of these with ``from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


class ExchangeError(Exception):
    """Root of the exchange core's errors; ``code`` is stable, ``str(err)`` is for people."""

    code: ClassVar[str] = "exchange-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict[str, object]:
        """The error as data, for JSON output and problem details."""
        return {"code": self.code, "message": self.message}


class IdentityError(ExchangeError):
    code = "invalid-identity"


class KeyStoreError(ExchangeError):
    code = "key-store"


class CertificateError(ExchangeError):
    code = "invalid-certificate"


class InvalidPeriod(ExchangeError):
    """A validity period or key overlap that is out of range, or no number of days or hours
    at all (negative, zero where a validity must last, endless, NaN)."""

    code = "invalid-period"


class DirectoryError(ExchangeError):
    code = "directory-invalid"


class DirectorySignatureError(DirectoryError):
    code = "directory-bad-signature"


class DirectoryExpiredError(DirectoryError):
    code = "directory-expired"


class DirectoryRollbackError(DirectoryError):
    code = "directory-rollback"


class SealError(ExchangeError):
    code = "seal"


class LogError(ExchangeError):
    code = "log"


class LogIntegrityError(LogError):
    """The log does not verify; ``position`` is the first record (0-based) that is wrong."""

    code = "log-tampered"

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "position": self.position}


class LogRollback(LogIntegrityError):
    """The log holds fewer records than a head already witnessed (records were cut)."""

    code = "log-rollback"


class LogSplitView(LogIntegrityError):
    """The log is not the one a witness saw: another root at a witnessed size, or a head
    that does not extend a witnessed one (history rewritten, even if re-signed)."""

    code = "log-split-view"


class EvidenceError(ExchangeError):
    code = "evidence-invalid"


class RejectError(ExchangeError):
    """A message refused by the receive pipeline. ``code`` is the reject code on the wire."""

    code = "rejected"


class Malformed(RejectError):
    code = "malformed"


class UnknownSender(RejectError):
    code = "unknown-sender"


class CertificateRevoked(RejectError):
    code = "certificate-revoked"


class CertificateExpired(RejectError):
    code = "certificate-expired"


class BadSignature(RejectError):
    code = "bad-signature"


class Stale(RejectError):
    code = "stale"


class Expired(RejectError):
    code = "expired"


class Duplicate(RejectError):
    code = "duplicate"


class Forbidden(RejectError):
    code = "forbidden"


class PurposeMismatch(Forbidden):
    """A grant exists, but none in force for the purpose the message states."""

    code = "purpose-mismatch"


class GrantExpired(Forbidden):
    """Every grant that would admit the message has expired."""

    code = "grant-expired"


class Undecryptable(RejectError):
    code = "undecryptable"


@dataclass(frozen=True, slots=True)
class PayloadIssue:
    """One schema error: where in the payload (a JSON path such as ``$.items[2].hs_code``)
    and what is wrong."""

    path: str
    message: str
    keyword: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message, "keyword": self.keyword}


class SchemaInvalid(RejectError):
    code = "schema-invalid"

    def __init__(self, message: str, issues: tuple[PayloadIssue, ...]) -> None:
        super().__init__(message)
        self.issues = issues

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "errors": [issue.as_dict() for issue in self.issues]}


UNAUTHENTICATED_CODES: frozenset[str] = frozenset(
    cls.code
    for cls in (Malformed, UnknownSender, CertificateRevoked, CertificateExpired, BadSignature)
)
"""Rejects decided before the sender was authenticated (steps 1-3 of the pipeline): whoever
sent such a message may not be who it claims, so nothing signed goes back to it."""

REJECT_CODES: tuple[str, ...] = tuple(
    cls.code
    for cls in (
        Malformed,
        UnknownSender,
        CertificateRevoked,
        CertificateExpired,
        BadSignature,
        Stale,
        Expired,
        Duplicate,
        Forbidden,
        PurposeMismatch,
        GrantExpired,
        Undecryptable,
        SchemaInvalid,
    )
)
