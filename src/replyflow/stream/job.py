"""The Spark Structured Streaming job: read raw -> parse -> enrich -> write parquet / topics / replies.

Reading order of this module is the data flow:

* :func:`read_raw`      Kafka source on ``tweets.raw`` (checkpointed offsets, bounded batches);
* :func:`parse`         ``mapInPandas`` with the ingest validator: tweets or dead letters;
* :class:`BatchWriter`  the ``foreachBatch`` sink: split off dead letters, :func:`enrich` once
                        (persisted), then replies, parquet and ``tweets.enriched`` together, ``tweets.dlq``;
* :class:`StreamJob`    starts the query, watches for idleness and signals, stops gracefully;
* :func:`run_stream`    what ``replyflow stream`` calls.

Why one query with ``foreachBatch`` rather than a file-sink query plus a second query: two
queries would each run the NLP on every tweet; one query enriches once per batch and gets
exactly-once parquet from batch-keyed partition overwrite (docs/STREAM.md).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import FrameType
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery
from pyspark.util import inheritable_thread_target

from replyflow.core.policy import PolicyConfig
from replyflow.core.waiting import WaitTimeout, wait_until
from replyflow.kafka.topics import ensure_topics_or_warn
from replyflow.settings import Settings
from replyflow.stream.columns import DLQ_COLUMN, ENRICHED_SCHEMA, PARSED_SCHEMA
from replyflow.stream.enrich import EnrichPartitions, TextEnricher, load_enricher, parse_partitions
from replyflow.stream.metrics import StreamMetrics, StreamMonitor, serve_metrics
from replyflow.stream.progress import BatchReport, JobClock, ProgressCallback, StepClock, StreamTotals
from replyflow.stream.replies import PostResult, ReplyClient, after_first
from replyflow.stream.session import create_spark
from replyflow.stream.sinks import dead_letter_messages, enriched_json, reply_rows, write_parquet, write_topic

log = logging.getLogger(__name__)

QUERY_NAME = "replyflow-stream"
#: Failures that mean "we asked it to stop", not "it broke" (matched in the query's exception text).
_STOP_MARKERS = ("StopRequested", "ReplyStopped")


class StopRequested(RuntimeError):
    """Raised by a batch that starts after a stop was requested; it is replayed on restart."""


# --- the data flow --------------------------------------------------------------------------
def read_raw(spark: SparkSession, settings: Settings) -> DataFrame:
    """``tweets.raw`` as a stream of Kafka records (key, value, topic, partition, offset, timestamp).

    ``failOnDataLoss=false``: if retention deletes records before we read them (or a dev
    topic is recreated), Spark logs it and goes on instead of stopping every reply.
    """
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.bootstrap_servers)
        .option("subscribe", settings.topic_raw)
        .option("startingOffsets", settings.stream_starting_offsets)
        .option("maxOffsetsPerTrigger", str(settings.stream_max_offsets_per_trigger))
        .option("failOnDataLoss", "false")
        .option("kafka.fetch.max.wait.ms", "50")
        .load()
    )


def parse(records: DataFrame) -> DataFrame:
    """Validate every record with the ingest validator; invalid ones carry a ``dead_letter`` envelope."""
    return records.mapInPandas(parse_partitions, PARSED_SCHEMA)


#: Below this many rows a batch is enriched in one task; from here up, spread evenly over the cores.
BALANCE_MIN_ROWS = 1000


def balance(tweets: DataFrame, rows: int) -> DataFrame:
    """Give the NLP, most of a batch's time, the number of tasks that suits the batch.

    Why: Spark runs one task per Kafka partition.  A small batch is faster in one task: a task's
    fixed costs (Python worker round trip, Arrow, one parquet file) outweigh its share of the NLP
    (at 200 tweets/s: batch p50 1.6 s -> 0.9 s).  A large batch is spread evenly: 3 partitions on
    2 cores would run as 2 + 1 tasks, and a shuffle of a few thousand rows costs far less.
    """
    if rows < BALANCE_MIN_ROWS:
        return tweets.coalesce(1)  # narrow: no shuffle
    cores = tweets.sparkSession.sparkContext.defaultParallelism
    if tweets.rdd.getNumPartitions() % cores == 0:
        return tweets
    return tweets.repartition(cores)


def enrich(tweets: DataFrame, enrich_fn: EnrichPartitions) -> DataFrame:
    """Add NLP, ``needs_reply`` and lineage, batched per Arrow batch in the Python workers."""
    return tweets.mapInPandas(enrich_fn, ENRICHED_SCHEMA)


class BatchWriter:
    """The ``foreachBatch`` function: one micro-batch to every sink, enriching once.

    The batch commits (its offsets advance) only when this returns, so a failure anywhere,
    including a reply service that stays down, means the batch is replayed; every sink is
    idempotent for a replay (see :mod:`replyflow.stream.sinks`).
    """

    def __init__(
        self,
        settings: Settings,
        enrich_fn: EnrichPartitions,
        replies: ReplyClient | None,
        totals: StreamTotals,
        on_batch: ProgressCallback | None = None,
        stop_event: threading.Event | None = None,
        clock: JobClock = JobClock(),
    ) -> None:
        self.settings = settings
        self.enrich_fn = enrich_fn
        self.replies = replies
        self.totals = totals
        self.on_batch = on_batch
        self.stop_event = stop_event or threading.Event()
        self.clock = clock
        self.busy = threading.Event()
        self.last_rows_at = clock.monotonic()

    def __call__(self, parsed_batch: DataFrame, batch_id: int) -> None:
        self.busy.set()  # before the check: StreamJob.stop() sets the event, then looks at busy
        try:
            if self.stop_event.is_set():  # not started, so nothing to undo
                log.info("batch %d not started: a stop was requested; it is replayed on restart", batch_id)
                # Refusing fails the query on purpose: keep py4j's and Spark's tracebacks of it out of the log.
                logging.getLogger("py4j.clientserver").setLevel(logging.CRITICAL)
                parsed_batch.sparkSession.sparkContext.setLogLevel("FATAL")
                raise StopRequested(f"stop requested before batch {batch_id} started")
            self._run(parsed_batch, batch_id)
        finally:
            self.busy.clear()

    def _write_outputs(self, enriched: DataFrame, batch_id: int, n_enriched: int,
                       clock: StepClock) -> tuple[float, PostResult | None]:
        """Replies, parquet and ``tweets.enriched``, overlapping; returns when all three are done, also on failure.
        Why: the replies are what the customer waits for, and the reply service stores them in its own process: their
        rows are fetched first, then Spark writes parquet and the topic while the service works (docs/STREAM.md)."""
        run_in_thread = inheritable_thread_target(enriched.sparkSession)
        posted: PostResult | None = None
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="batch-writes") as pool:
            writes: list[Future[Any]] = []  # parquet first: its result is when it ended

            def start_writes() -> None:
                writes.append(pool.submit(run_in_thread(self._write_parquet), enriched, batch_id, clock))
                if self.settings.stream_write_enriched_topic and n_enriched:
                    writes.append(pool.submit(run_in_thread(self._write_enriched), enriched, clock))

            if self.replies is not None and n_enriched:
                with clock("replies"):
                    posted = self.replies.post(after_first(reply_rows(enriched), start_writes))
            if not writes:
                start_writes()
            ended = [write.result() for write in writes]
        return ended[0], posted

    def _write_parquet(self, enriched: DataFrame, batch_id: int, clock: StepClock) -> float:
        with clock("parquet"):
            write_parquet(enriched, batch_id, self.settings.parquet_location)
        return self.clock.wall()

    def _write_enriched(self, enriched: DataFrame, clock: StepClock) -> None:
        with clock("enriched_topic"):
            write_topic(enriched_json(enriched), self.settings.topic_enriched, self.settings.bootstrap_servers)

    def _run(self, parsed_batch: DataFrame, batch_id: int) -> None:
        started = self.clock.wall()
        settings = self.settings
        steps: dict[str, float] = {}
        clock = StepClock(steps, self.clock.monotonic)
        parsed = parsed_batch.persist()
        enriched = None
        try:
            with clock("read_parse"):
                rows_in, n_dead = parsed.agg(F.count(F.lit(1)), F.count(DLQ_COLUMN)).first()
            if rows_in == 0:
                return
            self.last_rows_at = self.clock.monotonic()
            n_enriched = rows_in - n_dead
            enriched = enrich(balance(parsed.filter(F.col(DLQ_COLUMN).isNull()), rows_in), self.enrich_fn).persist()
            # The NLP runs in the first job reading these rows: here if spread over the cores, else the reply rows' (a job less)
            if rows_in >= BALANCE_MIN_ROWS or self.replies is None:
                with clock("enrich"):
                    enriched.count()
            parquet_at, posted = self._write_outputs(enriched, batch_id, n_enriched, clock)
            if n_dead:
                with clock("dlq"):
                    write_topic(dead_letter_messages(parsed), settings.topic_dlq, settings.bootstrap_servers)
                log.warning("batch %d: %d invalid message(s) sent to %s", batch_id, n_dead, settings.topic_dlq)
        finally:
            if enriched is not None:
                enriched.unpersist()
            parsed.unpersist()
        report = BatchReport(
            batch_id=batch_id,
            rows_in=rows_in,
            dead_letters=n_dead,
            enriched=n_enriched,
            replies_posted=posted.posted if posted else 0,
            tickets=posted.tickets if posted else 0,
            duration_s=round(self.clock.wall() - started, 3),
            started_at=started,
            parquet_written_at=parquet_at,
            finished_at=self.clock.wall(),
            steps_s=steps,
        )
        self.totals.add(report)
        log.info(
            "batch %d: %d in, %d enriched, %d to DLQ, %d replies posted (%d tickets) in %.2f s (%s)",
            batch_id, rows_in, n_enriched, n_dead, report.replies_posted, report.tickets,
            report.duration_s, ", ".join(f"{k} {v:.2f}" for k, v in steps.items()),
        )  # fmt: skip
        if self.on_batch is not None:
            try:
                self.on_batch(report)
            except Exception:  # a broken progress display must not fail the batch
                log.exception("progress callback failed")


# --- running it -----------------------------------------------------------------------------
class StreamJob:
    """One running stream query with graceful stop and an idle timeout.

    ``on_batch`` receives a :class:`BatchReport` after every batch (live counts for the demo);
    ``totals`` and :attr:`query` (``lastProgress``) can also be polled.  ``enricher_loader``
    exists for tests (a picklable fake); production uses the NLP stage's cached enricher.
    ``clock`` is injectable so tests drive idle and stop timeouts without waiting.
    """

    def __init__(
        self,
        settings: Settings,
        spark: SparkSession | None = None,
        on_batch: ProgressCallback | None = None,
        enricher_loader: Callable[..., TextEnricher] = load_enricher,
        clock: JobClock = JobClock(),
    ) -> None:
        self.settings = settings
        self.spark = spark
        self.on_batch = on_batch
        self.enricher_loader = enricher_loader
        self.clock = clock
        self.totals = StreamTotals()
        self.stop_event = threading.Event()
        self.query: StreamingQuery | None = None
        self._writer: BatchWriter | None = None
        self.metrics = StreamMetrics(clock.wall)
        self.monitor = StreamMonitor(settings, self.metrics)
        self._metrics_server: Any = None

    def _report(self, report: BatchReport) -> None:
        self.metrics.on_batch(report)
        if self.on_batch is not None:
            self.on_batch(report)

    def start(self) -> StreamingQuery:
        settings = self.settings
        ensure_topics_or_warn(settings)
        if self.spark is None:
            self.spark = create_spark(settings)
        enrich_fn = EnrichPartitions(str(settings.models_dir), PolicyConfig.from_settings(settings),
                                     cascade_threshold=settings.nlp_cascade_threshold, threads=settings.nlp_threads,
                                     loader=self.enricher_loader)
        replies = ReplyClient.from_settings(settings, self.stop_event) if settings.stream_post_replies else None
        self._writer = BatchWriter(settings, enrich_fn, replies, self.totals, self._report, self.stop_event, self.clock)
        self._metrics_server = serve_metrics(settings, self.metrics)
        trigger_ms = max(0, int(settings.stream_trigger_seconds * 1000))
        self.query = (
            parse(read_raw(self.spark, settings))
            .writeStream.queryName(QUERY_NAME)
            .foreachBatch(self._writer)
            .option("checkpointLocation", settings.checkpoint_location)
            .trigger(processingTime=f"{trigger_ms} milliseconds")
            .start()
        )
        log.info(
            "Stream started: %s -> %s (checkpoint %s, trigger %.1f s, max %d offsets/trigger)",
            settings.topic_raw, settings.parquet_location, settings.checkpoint_location,
            settings.stream_trigger_seconds, settings.stream_max_offsets_per_trigger,
        )  # fmt: skip
        return self.query

    def request_stop(self) -> None:
        """Ask for a stop after the current batch (safe from a signal handler)."""
        self.stop_event.set()

    def wait(self, until_idle: float | None = None, poll: float = 0.5) -> str:
        """Block until a stop is requested, ``until_idle`` seconds pass without input, or the query fails.

        Returns why it returned (``"stop"``, ``"idle"``, ``"terminated"``); a failed query raises.
        """
        query = self._require_query()
        assert self._writer is not None
        # Idle time counts from now at the earliest (not from start(): the first trigger can be slow).
        self._writer.last_rows_at = max(self._writer.last_rows_at, self.clock.monotonic())
        while True:
            try:
                if query.awaitTermination(poll):
                    return "terminated"
            except Exception as exc:
                if self.stop_event.is_set() and any(m in str(exc) for m in _STOP_MARKERS):
                    return "stop"
                raise
            if self.stop_event.is_set():
                return "stop"
            self.monitor.tick(query.lastProgress)
            if until_idle is not None:
                status = query.status
                if status.get("isDataAvailable") and status.get("isTriggerActive"):
                    self._writer.last_rows_at = self.clock.monotonic()
                if self.clock.monotonic() - self._writer.last_rows_at >= until_idle:
                    log.info("No new input for %.0f s: stopping the stream", until_idle)
                    return "idle"

    def stop(self, timeout: float = 120.0) -> None:
        """Stop after the batch in flight (waits up to ``timeout`` s for it), then stop the query."""
        self.stop_event.set()  # also ends any wait for the reply service
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server = None
        query = self.query
        if query is None or not query.isActive:
            log.info("Stream stopped; totals: %s", self.totals.as_dict())
            return
        writer = self._writer
        # New batches refuse to start (StopRequested); wait for the one in flight to finish.
        try:
            wait_until(lambda: not (query.isActive and writer is not None and writer.busy.is_set()), timeout,
                       interval=0.1, what="the batch in flight to finish", sleep=self.clock.sleep)
        except WaitTimeout:
            log.warning("Batch still running after %.0f s: interrupting it (it is replayed on restart)", timeout)
        query.stop()
        log.info("Stream stopped; totals: %s", self.totals.as_dict())

    def _require_query(self) -> StreamingQuery:
        if self.query is None:
            raise RuntimeError("StreamJob.start() was not called")
        return self.query


def _install_signal_handlers(job: StreamJob) -> dict[int, Any]:
    """SIGTERM/SIGINT -> graceful stop (a second SIGINT interrupts hard). Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        if job.stop_event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.warning("%s received: stopping after the current batch", signal.Signals(signum).name)
        job.request_stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, handler)
    return previous


def run_stream(
    settings: Settings,
    until_idle: float | None = None,
    *,
    spark: SparkSession | None = None,
    on_batch: ProgressCallback | None = None,
    enricher_loader: Callable[..., TextEnricher] = load_enricher,
) -> StreamTotals:
    """Run the stream until SIGTERM/SIGINT, or until ``until_idle`` seconds without new input.

    Spark is stopped at the end only if this call started it (a ``spark`` passed in, as
    tests and the benchmark do, stays up).  Returns the totals of the batches it ran.
    """
    # Stop Spark at the end only if this call starts it (not a session the caller already runs).
    own_spark = spark is None and SparkSession.getActiveSession() is None
    job = StreamJob(settings, spark=spark, on_batch=on_batch, enricher_loader=enricher_loader)
    previous = _install_signal_handlers(job)
    try:
        job.start()
        _install_signal_handlers(job)  # again: the new SparkContext put its own SIGINT handler (cancel + raise) in
        job.wait(until_idle)
    finally:
        try:
            job.stop()
        finally:
            for signum, old in previous.items():
                signal.signal(signum, old)
            if own_spark and job.spark is not None:
                job.spark.stop()
    return job.totals
