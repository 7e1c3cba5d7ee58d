"""A connector's tuning, and where its directory comes from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """Tuning of one connector; the defaults suit a small agency."""

    prefetch: int = 512
    batch: int = 256
    handler_workers: int = 4
    max_attempts: int = 5
    retry_base: float = 0.5
    retry_cap: float = 30.0
    request_timeout: float = 10.0
    directory_poll: float = 5.0
    skew: timedelta = timedelta(seconds=30)
    max_age: timedelta = timedelta(minutes=10)
    ttl: timedelta = timedelta(minutes=5)
    # a pending inbox entry untouched this long belonged to a replica that stopped: another
    # replica takes it over (each renews the entries it has in hand twice as often)
    takeover_after: timedelta = timedelta(minutes=2)

    def backoff(self, attempt: int) -> float:
        """Seconds before try ``attempt + 1``: doubling from ``retry_base``, capped."""
        return float(min(self.retry_cap, self.retry_base * 2**attempt))


DirectorySource = Callable[[], bytes]
"""Returns the latest signed directory bytes (from a file, a URL...)."""
