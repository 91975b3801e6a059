"""The overview's chart geometry (pure functions; the pages themselves: test_workspace.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from replyflow.web.charts import bar_chart, volume_chart


def test_chart_geometry() -> None:
    chart = bar_chart("x", {"a": 10, "b": 5, "c": 0})
    assert [b.label for b in chart.bars] == ["a", "b", "c"]
    assert chart.bars[0].width == 2 * chart.bars[1].width and chart.bars[2].width == 0
    start = datetime(2026, 11, 24, tzinfo=timezone.utc)
    hourly = volume_chart([start, start + timedelta(minutes=5), start + timedelta(hours=3)])
    assert hourly.title.endswith("hour") and [b.value for b in hourly.bars] == [2, 1]
    daily = volume_chart([start, start + timedelta(days=5)])
    assert daily.title.endswith("day") and len(daily.bars) == 2
    assert volume_chart([]).bars == []
