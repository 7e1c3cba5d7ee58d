"""The errors of open-data publishing: one tree, each class with a stable ``code``::

OpenDataError                   opendata-error
├── InvalidData                 invalid-data        (carries the validation report)
├── InvalidSchema               invalid-schema
├── MissingFile                 missing-file
├── NoReleaseKey                no-release-key      (nothing can be published unsigned)
└── PortalError                 portal-error
    ├── PortalUnavailable       portal-unavailable
    │   └── PublishInterrupted  publish-interrupted
    ├── PortalRefused           portal-refused
    ├── PortalRejected          portal-rejected     (carries CKAN's field errors)
    └── NotPublished            not-published
        ├── UnknownVersion      unknown-version     (the package holds no such version)
        └── PackageNotOurs      package-not-ours    (the package of the dataset's name
                                                     is not one Tabadul published)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opendata._validate import DataReport


class OpenDataError(Exception):
    """Base of every open-data error; ``code`` is stable, ``message`` is for people."""

    code = "opendata-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict[str, object]:
        """The error as data, for JSON output and problem details."""
        return {"code": self.code, "message": self.message}


class InvalidData(OpenDataError):
    """The resource failed Frictionless validation; ``report`` says where. Nothing was sent."""

    code = "invalid-data"

    def __init__(self, message: str, report: DataReport) -> None:
        super().__init__(message)
        self.report = report

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "validation": self.report.as_dict()}


class InvalidSchema(OpenDataError):
    """The dataset's Table Schema is not one Frictionless can read."""

    code = "invalid-schema"


class MissingFile(OpenDataError):
    """A file to submit cannot be read, or the data store lacks the approved bytes."""

    code = "missing-file"


class NoReleaseKey(OpenDataError):
    """No key to sign releases with: every publication is signed (its ``release.json``), so
    nothing is published without one."""

    code = "no-release-key"


class PortalError(OpenDataError):
    """CKAN answered with an error, or could not be reached."""

    code = "portal-error"


class PortalUnavailable(PortalError):
    """CKAN could not be reached or failed (network error, 5xx, unreadable answer)."""

    code = "portal-unavailable"


class PublishInterrupted(PortalUnavailable):
    """The portal failed part way through a publication, after retries. Nothing new is
    public; the message says whether it was rolled back or is left for a resume."""

    code = "publish-interrupted"


class PortalRefused(PortalError):
    """CKAN refused the token (NotAuthorized)."""

    code = "portal-refused"


class PortalRejected(PortalError):
    """CKAN rejected the data sent (ValidationError); ``details`` holds its field errors."""

    code = "portal-rejected"

    def __init__(self, message: str, details: object = None) -> None:
        super().__init__(message)
        self.details = details


class NotPublished(PortalError):
    """The package (or organisation) asked for does not exist on the portal (NotFound); or,
    as :class:`PackageNotOurs`, only someone else's package has the dataset's name."""

    code = "not-published"


class UnknownVersion(NotPublished):
    """The package holds no files of the version asked for."""

    code = "unknown-version"


class PackageNotOurs(NotPublished):
    """The portal has a package under the dataset's name, but not one Tabadul published for
    the dataset (another organisation's, made by another account, without Tabadul's mark,
    or not the package governance recorded): nothing was changed on the portal.
    ``reasons`` says which checks failed."""

    code = "package-not-ours"

    def __init__(self, message: str, *, package: str, reasons: Sequence[str]) -> None:
        super().__init__(message)
        self.package = package
        self.reasons = tuple(reasons)

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "package": self.package, "reasons": list(self.reasons)}
