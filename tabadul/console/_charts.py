"""Horizontal bar charts as geometry, in pure code: the template only draws what
:func:`bar_chart` computed (rectangles, labels, ticks), as inline SVG that needs no script.

Each row has one value per series (e.g. received and sent); every series has its CSS class,
so the stylesheet colours it. Long labels are shortened on the chart; the full text stays in
the bar's ``<title>`` and in the data table the page shows beside the chart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH = 640
LABEL_WIDTH = 210
VALUE_WIDTH = 70
BAR_HEIGHT = 14
BAR_GAP = 2
ROW_GAP = 10
TOP = 8
AXIS_HEIGHT = 22
MAX_LABEL = 30


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str
    label: str
    value: float
    text: str


@dataclass(frozen=True, slots=True)
class RowLabel:
    x: float
    y: float
    text: str
    full: str


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    text: str


@dataclass(frozen=True, slots=True)
class BarChart:
    width: int
    height: float
    plot_left: float
    plot_width: float
    axis_y: float
    bars: tuple[Bar, ...]
    labels: tuple[RowLabel, ...]
    ticks: tuple[Tick, ...]
    series: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.labels


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``value`` (1 for 0)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def scale(largest: float, *, integral: bool = False) -> tuple[float, int]:
    """The axis's top and its number of steps: a nice top, split into round steps (whole
    numbers when ``integral``, as counts are)."""
    if integral and largest <= 5:
        top = float(max(1, math.ceil(largest)))
        return top, int(top)
    if integral and largest <= 10:
        return 10.0, 5
    top = nice_ceiling(largest)
    mantissa = round(top / 10 ** math.floor(math.log10(top)), 2)
    return top, {2.0: 4}.get(mantissa, 5)


def shorten(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def count_text(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def bar_chart(
    rows: Sequence[tuple[str, Sequence[float]]],
    series: Sequence[str],
    *,
    fmt: Callable[[float], str] = count_text,
    integral: bool = False,
) -> BarChart:
    """Lay out ``rows`` of (label, one value per series) as horizontal bars on one scale
    (``integral``: the values are counts, so ticks fall on whole numbers). Raises
    ``ValueError`` when a row has not one value per series or a value is negative."""
    for label, values in rows:
        if len(values) != len(series):
            raise ValueError(f"row {label!r} has {len(values)} values for {len(series)} series")
        if any(v < 0 or math.isnan(v) for v in values):
            raise ValueError(f"row {label!r} has a negative or undefined value")
    top, ticks = scale(
        max((v for _, values in rows for v in values), default=0.0), integral=integral
    )
    plot_left = float(LABEL_WIDTH)
    plot_width = float(WIDTH - LABEL_WIDTH - VALUE_WIDTH)
    group = len(series) * BAR_HEIGHT + (len(series) - 1) * BAR_GAP
    bars: list[Bar] = []
    labels: list[RowLabel] = []
    y = float(TOP)
    for label, values in rows:
        labels.append(RowLabel(plot_left - 6, y + group / 2, shorten(label), label))
        for index, (name, value) in enumerate(zip(series, values, strict=True)):
            bars.append(
                Bar(
                    x=plot_left,
                    y=y + index * (BAR_HEIGHT + BAR_GAP),
                    width=plot_width * value / top,
                    height=BAR_HEIGHT,
                    series=name,
                    label=label,
                    value=value,
                    text=fmt(value),
                )
            )
        y += group + ROW_GAP
    axis_y = y - ROW_GAP + 4 if rows else float(TOP)
    marks = tuple(
        Tick(plot_left + plot_width * i / ticks, fmt(top * i / ticks)) for i in range(ticks + 1)
    )
    return BarChart(
        width=WIDTH,
        height=axis_y + AXIS_HEIGHT,
        plot_left=plot_left,
        plot_width=plot_width,
        axis_y=axis_y,
        bars=tuple(bars),
        labels=tuple(labels),
        ticks=marks,
        series=tuple(series),
    )


__all__ = [
    "Bar",
    "BarChart",
    "RowLabel",
    "Tick",
    "bar_chart",
    "count_text",
    "nice_ceiling",
    "scale",
]
