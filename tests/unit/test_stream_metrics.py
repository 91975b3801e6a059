"""Stream metrics: offsets from progress and checkpoint, lag, the staleness alert (fake clock, fake Kafka)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from replyflow.stream.metrics import (
    StreamMetrics,
    StreamMonitor,
    checkpoint_offsets,
    partition_lag,
    progress_offsets,
    staleness,
)
from replyflow.stream.progress import BatchReport


def test_staleness_rules() -> None:
    # lag and no batch for the threshold: the job is stuck
    assert staleness(1000, last_batch_at=300, last_input_at=990, total_lag=5, stale_after=600, expect_live=False)
    assert staleness(1000, last_batch_at=500, last_input_at=990, total_lag=5, stale_after=600, expect_live=False) is None
    # no lag: nothing to do, not stale, unless tweets should be arriving
    assert staleness(1000, last_batch_at=0, last_input_at=0, total_lag=0, stale_after=600, expect_live=False) is None
    reason = staleness(1000, last_batch_at=0, last_input_at=300, total_lag=0, stale_after=600, expect_live=True)
    assert reason is not None and "no new tweet" in reason


def test_offsets_from_progress_and_checkpoint(tmp_path: Path) -> None:
    progress = {"sources": [{"endOffset": json.dumps({"t": {"0": 7, "1": 3}})}]}
    assert progress_offsets(progress, "t") == {0: 7, 1: 3}
    assert progress_offsets({"sources": [{"endOffset": {"t": {"2": 1}}}]}, "t") == {2: 1}
    assert progress_offsets(None, "t") is None and progress_offsets({"sources": []}, "t") is None

    assert checkpoint_offsets(str(tmp_path), "t") is None
    (tmp_path / "offsets").mkdir()
    (tmp_path / "commits").mkdir()
    for batch, offsets in ((0, {"0": 2}), (1, {"0": 5, "1": 4}), (2, {"0": 9, "1": 9})):
        (tmp_path / "offsets" / str(batch)).write_text(f'v1\n{{"batchWatermarkMs":0}}\n{json.dumps({"t": offsets})}\n')
    for batch in (0, 1):  # batch 2 started but never committed
        (tmp_path / "commits" / str(batch)).write_text("v1\n{}\n")
    assert checkpoint_offsets(str(tmp_path), "t") == {0: 5, 1: 4}
    assert partition_lag({0: 9, 1: 4, 2: 3}, {0: 5, 1: 4}) == {0: 4, 1: 0, 2: 3}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_monitor_sets_lag_and_raises_and_clears_the_alert(settings: Any, caplog: Any) -> None:
    clock = Clock()
    cfg = settings.model_copy(update={"stale_after_seconds": 600, "stream_lag_interval_seconds": 15})
    metrics = StreamMetrics(clock)
    end = {0: 10, 1: 10}
    monitor = StreamMonitor(cfg, metrics, end_offsets=lambda: dict(end))
    progress = {"sources": [{"endOffset": json.dumps({cfg.topic_raw: {"0": 4, "1": 10}})}]}
    monitor.tick(progress)
    text = generate_latest(metrics.registry).decode()
    assert 'replyflow_stream_consumer_lag{partition="0"} 6.0' in text
    assert "replyflow_stream_stale 0.0" in text

    clock.now += 601  # lag, and no batch for longer than the threshold
    with caplog.at_level(logging.ERROR):
        monitor.tick(progress)
    assert "STALE" in caplog.text
    assert "replyflow_stream_stale 1.0" in generate_latest(metrics.registry).decode()

    clock.now += 5
    monitor.tick(progress)  # within the lag interval: nothing read, nothing changes
    metrics.on_batch(BatchReport(3, 6, 1, 5, 2, 2, 1.5, 0.0, None, 1.5))
    clock.now += 15
    caught_up = {"sources": [{"endOffset": json.dumps({cfg.topic_raw: {"0": 10, "1": 10}})}]}
    monitor.tick(caught_up)
    text = generate_latest(metrics.registry).decode()
    assert "replyflow_stream_stale 0.0" in text
    assert 'replyflow_stream_consumer_lag{partition="0"} 0.0' in text
    assert "replyflow_stream_rows_in_total 6.0" in text and "replyflow_stream_dead_letters_total 1.0" in text
    assert "replyflow_stream_last_batch_age_seconds 15.0" in text


def test_expected_live_source_that_stops_is_stale(settings: Any) -> None:
    clock = Clock()
    cfg = settings.model_copy(update={"stale_after_seconds": 60, "stream_lag_interval_seconds": 10,
                                      "x_stream_expected_live": True})
    metrics = StreamMetrics(clock)
    end = {0: 1}
    monitor = StreamMonitor(cfg, metrics, end_offsets=lambda: dict(end))
    for _ in range(5):  # tweets keep arriving and are processed at once
        end[0] += 1
        clock.now += 10
        monitor.tick({"sources": [{"endOffset": {cfg.topic_raw: {"0": end[0]}}}]})
        assert monitor.reason is None
    clock.now += 61  # then the source goes quiet: no lag, but no new tweet either
    monitor.tick({"sources": [{"endOffset": {cfg.topic_raw: {"0": end[0]}}}]})
    assert monitor.reason is not None and "no new tweet" in monitor.reason


def test_kafka_away_keeps_the_last_values(settings: Any) -> None:
    clock = Clock()
    metrics = StreamMetrics(clock)

    def away() -> dict[int, int]:
        raise RuntimeError("no broker")

    monitor = StreamMonitor(settings, metrics, end_offsets=away)
    monitor.tick(None)  # logged, not raised
    assert monitor.reason is None
