"""Timestamps on the wire: RFC 3339, UTC, millisecond precision, ``Z`` suffix."""

from __future__ import annotations

from datetime import UTC, datetime

from exchange._errors import Malformed


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """``2026-11-22T14:00:00.123Z``; ``moment`` must be timezone-aware."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z"


def parse_time(text: object, field: str) -> datetime:
    """Parse a wire timestamp; raises :class:`Malformed` naming ``field``."""
    if not isinstance(text, str) or not text.endswith("Z") or len(text) > 40:
        raise Malformed(f"{field} must be an RFC 3339 UTC timestamp ending in 'Z', got {text!r}")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise Malformed(f"{field} is not a valid timestamp: {text!r}") from exc
    if moment.tzinfo is None:  # pragma: no cover - 'Z' always yields UTC
        raise Malformed(f"{field} has no time zone")
    return moment
