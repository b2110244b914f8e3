"""Small presentation helpers for the templates: local times, safe redirects, an SVG chart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def local_time(at: datetime | None, tz: str, raw: bool = False) -> Any:
    """`at` in the store's zone: "Tue 25 Nov 14:05" (or the datetime itself with `raw`)."""
    if at is None:
        return "" if not raw else None
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = at.astimezone(zone) if at.tzinfo else at.replace(tzinfo=UTC).astimezone(zone)
    return local if raw else local.strftime("%a %d %b %H:%M")


def safe_next(url: str) -> str:
    """Only a path on this site: "//evil.example" or "https://..." would redirect away."""
    if not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    return url


@dataclass(frozen=True)
class Bar:
    series: int
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    base: float
    bars: list[Bar]
    groups: list[tuple[str, float]]  # label, x centre
    series: list[str]
    top: int


def bar_chart(
    labels: Sequence[str], series: Mapping[str, Sequence[int]], width: int = 640, height: int = 220
) -> Chart:
    """Grouped bars, one group per label, one bar per series: geometry for an inline SVG."""
    names = list(series)
    top = max([1, *(v for values in series.values() for v in values)])
    base = height - 30.0
    group_w = (width - 40) / max(1, len(labels))
    bar_w = group_w * 0.8 / max(1, len(names))
    bars = []
    groups = []
    for i, label in enumerate(labels):
        x0 = 40 + i * group_w + group_w * 0.1
        groups.append((label, 40 + i * group_w + group_w / 2))
        for j, name in enumerate(names):
            value = series[name][i]
            h = (base - 10) * value / top
            bars.append(Bar(j, name, value, x0 + j * bar_w, base - h, bar_w - 2, h))
    return Chart(width, height, base, bars, groups, names, top)
