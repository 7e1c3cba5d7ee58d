"""PII screening's errors.

Screening a readable table cannot fail: a file full of personal data is not an error, scanning
returns a ``PiiReport``. What can fail is reading the file, and every reader of tables shares
one set of errors for that, governance's ``BadSource`` family (``governance._errors``)::

    PiiError                      pii-error        (the root of errors of screening itself)

    governance.BadSource          bad-source       (cannot be opened, no header, bad quoting)
    ├── governance.NotUtf8        not-utf8         (names the line and the byte offset)
    └── governance.TooLarge       too-large        (file-too-large, line-too-long,
                                                    cell-too-large, too-wide)
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
