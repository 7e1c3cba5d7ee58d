"""PII screening's errors.

Every error this subpackage raises derives from :class:`PiiError`. Each one has a stable,
machine-readable ``code`` (what the CLI, the API and the logs use) and a human ``message``
that names the file and the line, never a cell's value::

    PiiError                      pii-error
    ├── UnreadableFile            pii-unreadable   (missing, a directory, no permission)
    ├── NotUtf8                   pii-not-utf8     (bytes that are not UTF-8)
    └── BadCsv                    pii-bad-csv      (no header row, a field over the csv
                                                    module's size limit, a quoting error)

A file full of personal data is not an error: scanning returns a ``PiiReport``.
``OSError``, ``UnicodeDecodeError`` and ``csv.Error`` are caught where they happen and
re-raised as one of these with ``from exc``.
"""

from __future__ import annotations

from typing import ClassVar


class PiiError(Exception):
    """Root of PII screening's errors; ``code`` is stable, ``message`` is for people."""

    code: ClassVar[str] = "pii-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict[str, object]:
        """The error as data, for JSON output and problem details."""
        return {"code": self.code, "message": self.message}


class UnreadableFile(PiiError):
    """The file cannot be opened or read (missing, a directory, no permission)."""

    code = "pii-unreadable"


class NotUtf8(PiiError):
    """The file holds bytes that are not UTF-8 (with or without a BOM)."""

    code = "pii-not-utf8"

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "line": self.line}


class BadCsv(PiiError):
    """The file is not CSV the ``csv`` module can read, or has no header row."""

    code = "pii-bad-csv"

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "line": self.line}
