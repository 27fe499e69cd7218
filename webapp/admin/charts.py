"""A small stacked bar chart of deliveries per day, as data for inline SVG.

No JavaScript and no inline style (the CSP forbids both): the template draws
`<rect>` elements from the geometry computed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from webapp.models import FAILED, PENDING, SUCCESS

BAR_WIDTH = 28
GAP = 14
HEIGHT = 120
#: Stacking order, bottom to top.
ORDER = (SUCCESS, PENDING, FAILED)


@dataclass(frozen=True)
class Segment:
    status: str
    count: int
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    day: date
    x: int
    total: int
    segments: list[Segment]


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    width: int
    height: int
    peak: int


def daily_bars(days: list[date], counts: dict[date, dict[str, int]]) -> Chart:
    """Geometry of one stacked bar per day, scaled to the busiest day."""
    peak = max((sum(counts.get(day, {}).values()) for day in days), default=0)
    bars = []
    for index, day in enumerate(days):
        day_counts = counts.get(day, {})
        bottom, segments = float(HEIGHT), []
        for status in ORDER:
            count = day_counts.get(status, 0)
            if not count:
                continue
            height = min(max(HEIGHT * count / peak, 2.0), bottom)
            bottom -= height
            segments.append(Segment(status, count, round(bottom, 1), round(height, 1)))
        bars.append(Bar(day, GAP + index * (BAR_WIDTH + GAP), sum(day_counts.values()), segments))
    return Chart(bars, GAP + len(days) * (BAR_WIDTH + GAP), HEIGHT, peak)
