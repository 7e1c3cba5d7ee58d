"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime


def rate(work: Callable[[], int], *, repeats: int = 3) -> float:
    """Best operations per second over ``repeats`` runs; ``work`` returns how many it did."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        done = work()
        elapsed = time.perf_counter() - start
        best = max(best, done / elapsed)
    return best


@dataclass(frozen=True, slots=True)
class Figure:
    """One benchmark: the product beside the raw baseline doing the same work."""

    name: str
    unit: str
    product: float
    raw: float
    raw_is: str
    goal: str | None = None
    met: bool | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "unit": self.unit,
            "product_per_s": round(self.product),
            "raw_per_s": round(self.raw),
            "ratio": round(self.product / self.raw, 3) if self.raw else None,
            "raw_is": self.raw_is,
            "goal": self.goal,
            "met": self.met,
        }


def machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
