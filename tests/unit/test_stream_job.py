"""Unit tests of the stream job's control logic without Spark: idle stop, graceful stop, signals, totals."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import pytest

from replyflow.stream.job import BatchWriter, StopRequested, StreamJob, _install_signal_handlers, _StepClock
from replyflow.stream.progress import BatchReport, StreamTotals


class FakeQuery:
    def __init__(self, busy_polls: int = 0, fail: Exception | None = None) -> None:
        self.isActive = True
        self.stopped = False
        self.fail = fail
        self.busy_polls = busy_polls
        self.status: dict[str, Any] = {"isDataAvailable": False, "isTriggerActive": False}

    def awaitTermination(self, timeout: float) -> bool:  # noqa: N802 - Spark's name
        if self.fail is not None:
            raise self.fail
        time.sleep(min(timeout, 0.01))
        return not self.isActive

    def stop(self) -> None:
        self.stopped, self.isActive = True, False


def make_job(settings: Any, query: FakeQuery) -> StreamJob:
    job = StreamJob(settings, spark=object())  # type: ignore[arg-type]
    job.query = query  # type: ignore[assignment]
    job._writer = BatchWriter(settings, enrich_fn=None, replies=None, totals=job.totals,  # type: ignore[arg-type]
                              stop_event=job.stop_event)  # fmt: skip
    return job


def report(batch_id: int, rows: int) -> BatchReport:
    return BatchReport(batch_id, rows, 1, rows - 1, 2, 2, 2, 0.5, 0.0, 0.2, 0.5, {"enrich": 0.3})


def test_wait_returns_idle_after_quiet_period(settings: Any) -> None:
    job = make_job(settings, FakeQuery())
    started = time.monotonic()
    assert job.wait(until_idle=0.2, poll=0.01) == "idle"
    assert 0.15 <= time.monotonic() - started < 2


def test_wait_resets_idle_clock_while_a_batch_has_data(settings: Any) -> None:
    query = FakeQuery()
    query.status = {"isDataAvailable": True, "isTriggerActive": True}
    job = make_job(settings, query)
    threading.Timer(0.4, lambda: query.status.update(isDataAvailable=False, isTriggerActive=False)).start()
    started = time.monotonic()
    assert job.wait(until_idle=0.2, poll=0.01) == "idle"
    assert time.monotonic() - started >= 0.55


def test_wait_returns_on_stop_request_and_on_termination(settings: Any) -> None:
    job = make_job(settings, FakeQuery())
    threading.Timer(0.05, job.request_stop).start()
    assert job.wait(poll=0.01) == "stop"
    query = FakeQuery()
    query.isActive = False
    assert make_job(settings, query).wait(poll=0.01) == "terminated"


def test_wait_raises_real_failures_but_not_requested_stops(settings: Any) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        make_job(settings, FakeQuery(fail=RuntimeError("boom"))).wait(poll=0.01)
    job = make_job(settings, FakeQuery(fail=RuntimeError("... StopRequested: stop requested before batch 3")))
    job.request_stop()
    assert job.wait(poll=0.01) == "stop"


def test_stop_waits_for_the_batch_in_flight(settings: Any) -> None:
    query = FakeQuery()
    job = make_job(settings, query)
    assert job._writer is not None
    job._writer.busy.set()
    threading.Timer(0.3, job._writer.busy.clear).start()
    started = time.monotonic()
    job.stop()
    assert query.stopped and time.monotonic() - started >= 0.25
    assert job.stop_event.is_set()


def test_batch_after_stop_request_does_nothing(settings: Any) -> None:
    job = make_job(settings, FakeQuery())
    job.request_stop()
    assert job._writer is not None
    with pytest.raises(StopRequested):
        job._writer(object(), 7)  # type: ignore[arg-type]  # never touches the DataFrame


def test_signal_handlers_request_stop_and_are_restored(settings: Any) -> None:
    job = make_job(settings, FakeQuery())
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
                                "needs_reply": 4, "replies_posted": 4, "tickets": 4}  # fmt: skip
    assert totals.last is not None and totals.last.batch_id == 1
    steps: dict[str, float] = {}
    clock = _StepClock(steps)
    with clock("parquet"):
        time.sleep(0.01)
    with clock("parquet"):
        pass
    assert set(steps) == {"parquet"} and steps["parquet"] >= 0.01
