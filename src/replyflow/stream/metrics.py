"""Prometheus metrics of the stream job, its consumer lag, and the staleness alert.

The job serves ``/metrics`` on ``stream_metrics_port`` (its own port: the driver is not a web
service).  Counters come from every :class:`~replyflow.stream.progress.BatchReport`; the
consumer lag per partition is ``end offset in Kafka - offset the query has committed`` and is
read every ``stream_lag_interval_seconds`` by :class:`StreamMonitor`, which the job's wait
loop ticks.  The committed offsets come from the query's last progress, or, before the first
batch of this run, from the checkpoint (``offsets/<batch>`` of the last batch in ``commits/``).

**Staleness** (:func:`staleness`): the alert an operator of a care desk needs when the X
integration silently stops.  Stale means no batch for ``stale_after_seconds`` while there is
lag (the job is stuck), or, with ``x_stream_expected_live``, no new tweet in ``tweets.raw``
for that long (the source is dead).  It is logged when it starts and ends, and exposed as
``replyflow_stream_stale``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from replyflow.settings import Settings
from replyflow.stream.progress import BatchReport

log = logging.getLogger(__name__)


class StreamMetrics:
    """Every metric of one stream job, in its own registry."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.registry = r = CollectorRegistry()
        self.clock = clock
        self.started_at = clock()
        self.last_batch_at: float | None = None
        self.last_input_at: float | None = None
        self.batch_seconds = Histogram("replyflow_stream_batch_seconds", "Duration of a micro-batch with rows",
                                       buckets=(0.5, 1, 2, 5, 10, 20, 40, 80, 160, 320), registry=r)
        self.rows_in = Counter("replyflow_stream_rows_in", "Kafka records read by committed batches", registry=r)
        self.rows_out = Counter("replyflow_stream_rows_out", "Tweets enriched and written to parquet", registry=r)
        self.dead_letters = Counter("replyflow_stream_dead_letters", "Invalid records sent to the dead-letter topic",
                                    registry=r)
        self.replies_posted = Counter("replyflow_stream_replies_posted", "Tweets posted to the reply service", registry=r)
        self.lag = Gauge("replyflow_stream_consumer_lag", "Records in tweets.raw not yet committed by the query",
                         ["partition"], registry=r)
        self.last_batch_age = Gauge("replyflow_stream_last_batch_age_seconds",
                                    "Seconds since the last batch with rows finished (since start if none)", registry=r)
        self.last_batch_age.set_function(lambda: self.clock() - (self.last_batch_at or self.started_at))
        self.last_input_age = Gauge("replyflow_stream_last_input_age_seconds",
                                    "Seconds since tweets.raw last grew, as far as this job has seen", registry=r)
        self.last_input_age.set_function(lambda: self.clock() - (self.last_input_at or self.started_at))
        self.stale = Gauge("replyflow_stream_stale", "1 while the staleness alert holds (see docs/OPERATIONS.md)",
                           registry=r)

    def on_batch(self, report: BatchReport) -> None:
        self.batch_seconds.observe(report.duration_s)
        self.rows_in.inc(report.rows_in)
        self.rows_out.inc(report.enriched)
        self.dead_letters.inc(report.dead_letters)
        self.replies_posted.inc(report.replies_posted)
        self.last_batch_at = self.clock()


def staleness(now: float, last_batch_at: float, last_input_at: float, total_lag: int, stale_after: float,
              expect_live: bool) -> str | None:
    """Why the stream is stale, or None.  Pure: times in seconds of one clock."""
    if total_lag > 0 and now - last_batch_at >= stale_after:
        return f"{total_lag} record(s) waiting and no batch for {now - last_batch_at:.0f} s"
    if expect_live and now - last_input_at >= stale_after:
        return f"no new tweet in {now - last_input_at:.0f} s while the X source should be live"
    return None


def _offsets(value: Any, topic: str) -> dict[int, int]:
    """``{partition: offset}`` of ``topic`` from a Spark Kafka offset (JSON text or dict)."""
    data = json.loads(value) if isinstance(value, str) else value
    return {int(p): int(o) for p, o in (data or {}).get(topic, {}).items()}


def progress_offsets(progress: Mapping[str, Any] | None, topic: str) -> dict[int, int] | None:
    """End offsets of the last batch in a query progress (None without one)."""
    if not progress or not progress.get("sources"):
        return None
    return _offsets(progress["sources"][0]["endOffset"], topic) or None


def checkpoint_offsets(checkpoint: str, topic: str) -> dict[int, int] | None:
    """Offsets of the last committed batch in a local checkpoint (None if there is none, or it is remote)."""
    root = Path(checkpoint)
    commits = [int(p.name) for p in (root / "commits").glob("[0-9]*")] if (root / "commits").is_dir() else []
    if not commits:
        return None
    lines = (root / "offsets" / str(max(commits))).read_text().splitlines()
    return _offsets(lines[-1], topic)  # v1, metadata, then one line per source


def partition_lag(end: Mapping[int, int], committed: Mapping[int, int] | None) -> dict[int, int]:
    """Lag per partition; a partition the query has not read yet lags by its whole end offset."""
    return {p: max(0, e - (committed or {}).get(p, 0)) for p, e in end.items()}


class StreamMonitor:
    """Reads Kafka end offsets now and then, sets lag and staleness; ticked by the job's wait loop."""

    def __init__(self, settings: Settings, metrics: StreamMetrics,
                 end_offsets: Callable[[], dict[int, int]] | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.end_offsets = end_offsets or self._kafka_end_offsets
        self.next_check = metrics.clock()
        self.last_end: dict[int, int] = {}
        self.reason: str | None = None

    def _kafka_end_offsets(self) -> dict[int, int]:
        from replyflow.kafka.topics import partition_end_offsets

        return partition_end_offsets(self.settings, self.settings.topic_raw, timeout=5)

    def tick(self, progress: Mapping[str, Any] | None) -> None:
        now = self.metrics.clock()
        if now < self.next_check:
            return
        self.next_check = now + self.settings.stream_lag_interval_seconds
        try:
            end = self.end_offsets()
        except Exception as exc:  # noqa: BLE001 - Kafka away: keep the last values, say so
            log.warning("consumer lag unavailable: %s", exc)
            return
        if self.last_end and end != self.last_end:
            self.metrics.last_input_at = now
        self.last_end = end
        committed = progress_offsets(progress, self.settings.topic_raw)
        if committed is None:
            committed = checkpoint_offsets(self.settings.checkpoint_location, self.settings.topic_raw)
        lag = partition_lag(end, committed)
        for partition, value in lag.items():
            self.metrics.lag.labels(str(partition)).set(value)
        m = self.metrics
        reason = staleness(now, m.last_batch_at or m.started_at, m.last_input_at or m.started_at, sum(lag.values()),
                           self.settings.stale_after_seconds, self.settings.x_stream_expected_live)
        if reason and not self.reason:
            log.error("STALE stream: %s", reason)
        elif self.reason and not reason:
            log.info("stream no longer stale")
        self.reason = reason
        m.stale.set(1 if reason else 0)


def serve_metrics(settings: Settings, metrics: StreamMetrics) -> Any | None:
    """Serve /metrics on ``stream_metrics_port`` (0: off); returns the server, or None.

    A port already taken is logged, not fatal: metrics are not worth stopping replies for."""
    if not settings.stream_metrics_port:
        return None
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(settings.stream_metrics_port, addr=settings.api_host, registry=metrics.registry)
    except OSError as exc:
        log.error("stream metrics not served on %s:%d: %s", settings.api_host, settings.stream_metrics_port, exc)
        return None
    log.info("stream metrics on http://%s:%d/metrics", settings.api_host, settings.stream_metrics_port)
    return server
