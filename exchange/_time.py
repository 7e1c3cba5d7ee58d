"""Timestamps on the wire: RFC 3339, UTC, millisecond precision, ``Z`` suffix."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from exchange._errors import Malformed


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """``2026-11-22T14:00:00.123Z``; ``moment`` must be timezone-aware."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z"


WIRE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\Z")


def parse_time(text: object, field: str) -> datetime:
    """Parse a wire timestamp, exactly ``YYYY-MM-DDTHH:MM:SS.mmmZ``; raises
    :class:`Malformed` naming ``field``."""
    if not isinstance(text, str) or not WIRE_TIME.match(text):
        raise Malformed(f"{field} must be a UTC time like 2026-11-22T14:00:00.123Z, got {text!r}")
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:  # e.g. month 13
        raise Malformed(f"{field} is not a valid time: {text!r}") from exc
