"""Unit tests of the stream job's control logic without Spark: idle stop, graceful stop, signals, totals.

Time is a fake (:class:`FakeTime`): the job's clock only moves when the fake query "waits" or the
job sleeps, so every test asserts what happened, never how long it took.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from replyflow.stream.job import BatchWriter, JobClock, StepClock, StopRequested, StreamJob, _install_signal_handlers
from replyflow.stream.metrics import StreamMonitor
from replyflow.stream.progress import BatchReport, StreamTotals


class FakeTime:
    """A monotonic clock that advances only when somebody waits; ``at(t, fn)`` runs ``fn`` once t is reached."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.events: list[tuple[float, Callable[[], None]]] = []

    def at(self, when: float, action: Callable[[], None]) -> None:
        self.events.append((self.now + when, action))

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [e for e in self.events if e[0] <= self.now]
        self.events = [e for e in self.events if e[0] > self.now]
        for _, action in due:
            action()

    def clock(self) -> JobClock:
        return JobClock(wall=lambda: self.now, monotonic=lambda: self.now, sleep=self.advance)


class FakeQuery:
    def __init__(self, time: FakeTime, fail: Exception | None = None) -> None:
        self.time = time
        self.isActive = True
        self.stopped = False
        self.fail = fail
        self.polls = 0
        self.status: dict[str, Any] = {"isDataAvailable": False, "isTriggerActive": False}
        self.lastProgress: dict[str, Any] | None = None  # noqa: N815 - Spark's name

    def awaitTermination(self, timeout: float) -> bool:  # noqa: N802 - Spark's name
        if self.fail is not None:
            raise self.fail
        self.polls += 1
        self.time.advance(timeout)
        return not self.isActive

    def stop(self) -> None:
        self.stopped, self.isActive = True, False


def make_job(settings: Any, time: FakeTime, query: FakeQuery | None = None) -> StreamJob:
    job = StreamJob(settings, spark=object(), clock=time.clock())  # type: ignore[arg-type]
    job.query = query or FakeQuery(time)  # type: ignore[assignment]
    job.monitor = StreamMonitor(settings, job.metrics, end_offsets=lambda: {0: 0, 1: 0})  # no Kafka in unit tests
    job._writer = BatchWriter(settings, enrich_fn=None, replies=None, totals=job.totals,  # type: ignore[arg-type]
                              stop_event=job.stop_event, clock=time.clock())  # fmt: skip
    return job


def report(batch_id: int, rows: int) -> BatchReport:
    return BatchReport(batch_id, rows, 1, rows - 1, 2, 2, 0.5, 0.0, 0.2, 0.5, {"enrich": 0.3})


def test_wait_returns_idle_after_quiet_period(settings: Any) -> None:
    time = FakeTime()
    job = make_job(settings, time)
    started = time.now
    assert job.wait(until_idle=5.0, poll=0.5) == "idle"
    assert time.now - started == pytest.approx(5.0)  # exactly the idle period, in fake seconds


def test_wait_resets_idle_clock_while_a_batch_has_data(settings: Any) -> None:
    time = FakeTime()
    query = FakeQuery(time)
    query.status = {"isDataAvailable": True, "isTriggerActive": True}
    job = make_job(settings, time, query)
    time.at(8.0, lambda: query.status.update(isDataAvailable=False, isTriggerActive=False))
    started = time.now
    assert job.wait(until_idle=5.0, poll=0.5) == "idle"
    # polls every 0.5 s: the last one that saw data was at 7.5 s, and idle time counts from it
    assert time.now - started == pytest.approx(7.5 + 5.0)


def test_wait_returns_on_stop_request_and_on_termination(settings: Any) -> None:
    time = FakeTime()
    job = make_job(settings, time)
    time.at(1.0, job.request_stop)
    assert job.wait(poll=0.5) == "stop"
    query = FakeQuery(time)
    query.isActive = False
    assert make_job(settings, time, query).wait(poll=0.5) == "terminated"


def test_wait_raises_real_failures_but_not_requested_stops(settings: Any) -> None:
    time = FakeTime()
    with pytest.raises(RuntimeError, match="boom"):
        make_job(settings, time, FakeQuery(time, fail=RuntimeError("boom"))).wait(poll=0.5)
    job = make_job(settings, time, FakeQuery(time, fail=RuntimeError("... StopRequested: stop requested before batch 3")))
    job.request_stop()
    assert job.wait(poll=0.5) == "stop"


def test_stop_waits_for_the_batch_in_flight(settings: Any) -> None:
    time = FakeTime()
    query = FakeQuery(time)
    job = make_job(settings, time, query)
    assert job._writer is not None
    job._writer.busy.set()
    finished: list[bool] = []

    def batch_ends() -> None:
        finished.append(query.stopped)  # the query must still be running when the batch ends
        job._writer.busy.clear()  # type: ignore[union-attr]

    time.at(3.0, batch_ends)
    job.stop(timeout=60)
    assert finished == [False] and query.stopped and job.stop_event.is_set()


def test_stop_interrupts_a_batch_that_outlives_the_timeout(settings: Any) -> None:
    time = FakeTime()
    query = FakeQuery(time)
    job = make_job(settings, time, query)
    assert job._writer is not None
    job._writer.busy.set()  # never finishes
    job.stop(timeout=10)
    assert query.stopped and job._writer.busy.is_set()


def test_batch_after_stop_request_does_nothing(settings: Any) -> None:
    job = make_job(settings, FakeTime())
    job.request_stop()
    assert job._writer is not None
    levels: list[str] = []
    batch = SimpleNamespace(sparkSession=SimpleNamespace(sparkContext=SimpleNamespace(setLogLevel=levels.append)))
    with pytest.raises(StopRequested):
        job._writer(batch, 7)  # type: ignore[arg-type]  # never reads the DataFrame
    assert levels == ["FATAL"]  # the refusal's tracebacks stay out of a clean stop's log


def test_signal_handlers_request_stop_and_are_restored(settings: Any) -> None:
    job = make_job(settings, FakeTime())
    before = signal.getsignal(signal.SIGTERM)
    previous = _install_signal_handlers(job)
    try:
        signal.raise_signal(signal.SIGTERM)
        assert job.stop_event.is_set()
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
    assert signal.getsignal(signal.SIGTERM) == before


def test_totals_and_step_clock() -> None:
    totals = StreamTotals()
    totals.add(report(0, 10))
    totals.add(report(1, 5))
    assert totals.as_dict() == {"batches": 2, "rows_in": 15, "dead_letters": 2, "enriched": 13,
                                "replies_posted": 4, "tickets": 4}
    assert totals.last is not None and totals.last.batch_id == 1
    time = FakeTime()
    steps: dict[str, float] = {}
    clock = StepClock(steps, lambda: time.now)
    with clock("parquet"):
        time.advance(0.25)
    with clock("parquet"):
        time.advance(0.5)
    with clock("replies"):
        pass
    assert steps == {"parquet": 0.75, "replies": 0.0}
