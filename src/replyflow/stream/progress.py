"""Per-batch progress of the stream job: what came in, what went where, how long it took.

Why our own report next to Spark's ``lastProgress``: Spark counts input rows and timings,
but not dead letters, replies or tickets; the demo and the benchmark want all of them,
live, through one callback.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BatchReport:
    """One micro-batch. ``replies_posted``: the tweets that need a reply, all posted (only those rows are fetched;
    0 with replies off). Times are UNIX seconds (``parquet_written_at``: parquet commit of the batch);
    ``steps_s``: wall seconds per step (read_parse, enrich, replies, parquet, enriched_topic, dlq; the last four overlap)."""

    batch_id: int
    rows_in: int
    dead_letters: int
    enriched: int
    replies_posted: int
    tickets: int
    duration_s: float
    started_at: float
    parquet_written_at: float | None
    finished_at: float
    steps_s: dict[str, float] = field(default_factory=dict)


@dataclass
class StreamTotals:
    """Running totals over the batches this job ran (thread-safe: batches report from Spark's callback thread)."""

    batches: int = 0
    rows_in: int = 0
    dead_letters: int = 0
    enriched: int = 0
    replies_posted: int = 0
    tickets: int = 0
    last: BatchReport | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, report: BatchReport) -> None:
        with self._lock:
            self.batches += 1
            self.rows_in += report.rows_in
            self.dead_letters += report.dead_letters
            self.enriched += report.enriched
            self.replies_posted += report.replies_posted
            self.tickets += report.tickets
            self.last = report

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "batches": self.batches,
                "rows_in": self.rows_in,
                "dead_letters": self.dead_letters,
                "enriched": self.enriched,
                "replies_posted": self.replies_posted,
                "tickets": self.tickets,
            }


#: Called after every committed-to-be batch with its report (from Spark's callback thread: keep it quick).
ProgressCallback = Callable[[BatchReport], None]


@dataclass(frozen=True)
class JobClock:
    """The job's sense of time, injectable so tests drive it instead of waiting.

    ``wall``: UNIX seconds (batch reports); ``monotonic``: durations and idle time; ``sleep``."""

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


class StepClock:
    """``with clock("name"):`` adds the block's duration to ``steps[name]`` (seconds, from ``now``)."""

    def __init__(self, steps: dict[str, float], now: Callable[[], float] = time.monotonic) -> None:
        self.steps = steps
        self.now = now

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        began = self.now()
        try:
            yield
        finally:
            self.steps[name] = round(self.steps.get(name, 0.0) + self.now() - began, 3)
