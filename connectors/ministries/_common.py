"""Helpers shared by the ministry connectors: sample data, money, clocks, lazy values."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from itertools import islice
from typing import Any, Generic, TypeVar

T = TypeVar("T")

CENT = Decimal("0.01")
MAD = "MAD"


def read_text(name: str) -> str:
    """The text of ``connectors/ministries/data/<name>`` (UTF-8)."""
    return (
        resources.files("connectors.ministries").joinpath("data", name).read_text(encoding="utf-8")
    )


def read_json(name: str) -> Any:
    """The parsed content of a JSON sample file."""
    return json.loads(read_text(name))


def read_csv(name: str) -> list[dict[str, str]]:
    """The rows of a CSV sample file (header line first) as dictionaries of strings."""
    return list(csv.DictReader(io.StringIO(read_text(name))))


def money(amount: Decimal, currency: str = MAD) -> dict[str, str]:
    """``{"amount": "1234.50", "currency": "MAD"}``: rounded half-up to the cent."""
    return {
        "amount": format(amount.quantize(CENT, rounding=ROUND_HALF_UP), "f"),
        "currency": currency,
    }


def utc_now() -> datetime:
    """The current time in UTC (one place to look for the connectors' only clock)."""
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """RFC 3339 with an explicit offset, to the second: ``2026-11-04T18:00:00+00:00``."""
    return moment.isoformat(timespec="seconds")


def take(items: Iterable[T], limit: int | None) -> Iterator[T]:
    """The first ``limit`` items (all when ``None``); raises :class:`ValueError` if negative."""
    if limit is None:
        return iter(items)
    if limit < 0:
        raise ValueError(f"limit must be zero or more, not {limit}")
    return islice(items, limit)


class Lazy(Generic[T]):
    """A value built on first use, exactly once, even when worker threads race for it."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
                value = self._value
        return value
