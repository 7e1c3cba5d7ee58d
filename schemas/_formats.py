"""The three formats a schema may assert, defined once and used by both validators.

jsonschema and jsonschema-rs ship their own, different format checks (jsonschema's ``email``
only looks for an ``@``; its ``date-time`` depends on an optional package; jsonschema-rs has
its own RFC readings). To keep the fast verdict equal to the detailed one, both are
given these functions instead of their built-ins.

Patterns have the same problem in another form: Python's ``$`` also matches before a final
newline, ECMA-262's (the JSON Schema reference) does not. jsonschema-rs reads ``$`` as
ECMA-262 does; :func:`ecma_search` rewrites each unescaped ``$`` to ``\\Z`` for jsonschema.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache

from jsonschema import FormatChecker

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z", re.ASCII)
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})\Z",
    re.ASCII,
)
# Deliberately plain: one @, no spaces, a dot in the domain. Mailbox syntax is not the point
# of a schema check; rejecting obvious garbage is.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+\Z")
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")


def is_date(value: object) -> bool:
    """RFC 3339 ``full-date``: ``YYYY-MM-DD`` naming a day that exists."""
    if not isinstance(value, str):
        return True
    if not _DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_date_time(value: object) -> bool:
    """RFC 3339 ``date-time`` with a mandatory offset; leap second 60 is not accepted."""
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper())  # 3.11+ reads the "Z" offset
    except ValueError:
        return False
    return True


def is_email(value: object) -> bool:
    """``local@domain.tld`` with exactly one ``@`` and no whitespace."""
    if not isinstance(value, str):
        return True
    return _EMAIL.match(value) is not None


FORMATS = {"date": is_date, "date-time": is_date_time, "email": is_email}
"""The only formats a registered schema may use."""


def format_checker() -> FormatChecker:
    """A jsonschema ``FormatChecker`` that knows exactly :data:`FORMATS`."""
    checker = FormatChecker(formats=())
    for name, check in FORMATS.items():
        checker.checks(name)(check)
    return checker


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(_UNESCAPED_DOLLAR.sub(r"\\Z", pattern))


def ecma_search(pattern: str, value: str) -> bool:
    """Whether ``value`` matches ``pattern`` anywhere, with ``$`` meaning end of string."""
    return _compiled(pattern).search(value) is not None
