"""Server-side chart data for the dashboard: bar geometry computed here, drawn as inline SVG.

No JavaScript chart library and no CDN (the service often runs offline); the template
only places rectangles whose coordinates come from these pure functions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

SENTIMENT_COLOURS = {"negative": "#c0392b", "neutral": "#7f8c8d", "positive": "#27ae60"}
PALETTE = ["#2c7fb8", "#e6550d", "#31a354", "#756bb1", "#d6616b", "#636363", "#bcbd22", "#17becf", "#8c564b"]


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float
    colour: str


@dataclass(frozen=True)
class Chart:
    title: str
    bars: list[Bar]
    width: int
    height: int
    total: int


def bar_chart(title: str, counts: Mapping[str, int], colours: Mapping[str, str] | None = None,
              width: int = 420, row: int = 22) -> Chart:
    """Horizontal bars, one per label, longest first (labels drawn by the template)."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    peak = max((v for _, v in items), default=0) or 1
    label_w = 190.0  # room for "Delay and Customer Service" at the dashboard's font size
    bar_w = width - label_w - 50.0
    bars = [
        Bar(label, value, label_w, i * row + 4, bar_w * value / peak, row - 8,
            (colours or {}).get(label, PALETTE[i % len(PALETTE)]))
        for i, (label, value) in enumerate(items)
    ]
    return Chart(title, bars, width, max(row, len(items) * row + 4), sum(counts.values()))


def volume_chart(times: Iterable[datetime], width: int = 720, height: int = 160, max_buckets: int = 60) -> Chart:
    """Tweets per day (per hour when everything falls within two days), last buckets only."""
    stamps = sorted(times)
    if not stamps:
        return Chart("Tweet volume", [], width, height, 0)
    hourly = (stamps[-1] - stamps[0]).total_seconds() < 2 * 86400
    fmt = "%Y-%m-%d %H:00" if hourly else "%Y-%m-%d"
    counts = Counter(t.strftime(fmt) for t in stamps)
    keys = sorted(counts)[-max_buckets:]
    peak = max(counts[k] for k in keys) or 1
    slot = width / len(keys)
    plot_h = height - 20
    bars = []
    for i, key in enumerate(keys):
        h = plot_h * counts[key] / peak
        bars.append(Bar(key, counts[key], i * slot + 1, plot_h - h, max(1.0, slot - 2), h, "#2c7fb8"))
    title = "Tweet volume per hour" if hourly else "Tweet volume per day"
    return Chart(title, bars, width, height, len(stamps))
