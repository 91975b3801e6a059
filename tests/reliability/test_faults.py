"""Fault injection on the REAL components, during a replay of a few thousand dataset tweets.

* ``test_stream_killed_with_sigkill_and_restarted``: ``replyflow stream`` (a subprocess,
  its own process group: Python driver, Spark JVM and Python workers) is SIGKILLed as soon as
  the first parquet files appear, i.e. in the middle of a micro-batch, then restarted on the
  same checkpoint until idle.  Parquet must hold every tweet exactly once, and no tweet may
  have two tickets or two outbox entries.
* ``test_kafka_broker_restart_while_producing``: a PRIVATE broker (not the shared session
  broker other tests use) is stopped and started again while the replay produces and the
  stream consumes.  The idempotent producer must deliver every tweet exactly once; the stream
  must end with every tweet in parquet.
* ``test_reply_service_down_for_a_while``: the reply service is stopped after the first
  batch reached it and started again later (same port, same database).  The stream holds the
  batch whose POST fails (its offsets are not committed), retries with backoff, and every
  reply arrives exactly once afterwards.
* ``test_x_api_429_then_5xx_then_success``: the sender against a fake X API (``responses``
  intercepting tweepy) that answers 429, then 503, then 201 for every reply, and for some
  replies a 503 *after* creating the tweet (the ambiguous case): the sender waits (fake
  sleep), retries, and no reply exists twice on "X".

Each test records its counts in ``reports/reliability.json`` (docs/RELIABILITY.md).

The stream runs the real CLI when the trained models load, else the same code path with a
fake NLP (:mod:`tests.reliability.fake_nlp_stream`); the report says which.
Tweets per test: ``REPLYFLOW_FAULT_TWEETS`` (default 2000).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from replyflow.core.procs import TAG_ENV, reap_tagged
from tests.reliability.report import record

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(900)]

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASET = REPO_ROOT / "data" / "airline_tweets_sentiment.csv"
N_TWEETS = int(os.environ.get("REPLYFLOW_FAULT_TWEETS", "2000"))
PER_TRIGGER = max(50, N_TWEETS // 8)  # about eight micro-batches per replay


# --- helpers ---------------------------------------------------------------------------------
def dataset_tweets(n: int, skip: int = 0) -> list[Any]:
    """``n`` valid, distinct dataset tweets (after the first ``skip``), as RawTweets."""
    from replyflow.ingest.replay import distinct_tweets

    tweets = distinct_tweets(DATASET, n, skip)
    assert len(tweets) == n, f"the dataset has fewer than {n + skip} valid tweets"
    return tweets


def write_jsonl(path: Path, tweets: list[Any]) -> Path:
    path.write_bytes(b"".join(t.to_json() + b"\n" for t in tweets))
    return path


_NLP_MODE: str | None = None


def nlp_mode() -> str:
    """``real`` when the trained models load in this checkout, else ``fake``."""
    global _NLP_MODE
    if _NLP_MODE is None:
        forced = os.environ.get("REPLYFLOW_TEST_STREAM_FAKE_NLP")
        if forced == "1":
            _NLP_MODE = "fake"
        else:
            try:
                from replyflow.nlp.pipeline import Enricher
                from replyflow.settings import Settings

                Enricher.load(REPO_ROOT / "models", Settings(_env_file=None).nlp_cascade_threshold)
                _NLP_MODE = "real"
            except Exception:  # noqa: BLE001 - models missing or stale: the fault tests still run
                _NLP_MODE = "fake"
    return _NLP_MODE


class StreamProcess:
    """The stream job as operators run it: a separate process (group) configured by environment."""

    def __init__(self, settings: Any, workdir: Path, name: str, until_idle: float = 10.0, post_replies: bool = True,
                 extra_env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.workdir = workdir
        self.until_idle = until_idle
        self.log_path = workdir / f"{name}.out"
        self.post_replies = post_replies
        self.extra_env = extra_env or {}
        self.tag = f"test-stream-{name}@{workdir}"  # every process of it carries this (pyspark daemons too)
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def env(self) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("REPLYFLOW_")}
        env.update({
            "REPLYFLOW_CONFIG": str(self.workdir / "none.toml"),
            "REPLYFLOW_STATE_DIR": str(s.state_dir), "REPLYFLOW_MODELS_DIR": str(s.models_dir),
            "REPLYFLOW_JARS_DIR": str(s.jars_dir), "REPLYFLOW_JVM_DIR": str(s.jvm_dir),
            "KAFKA_BOOTSTRAP_SERVERS": s.bootstrap_servers, "REPLYFLOW_TOPIC_RAW": s.topic_raw,
            "REPLYFLOW_TOPIC_ENRICHED": s.topic_enriched, "REPLYFLOW_TOPIC_DLQ": s.topic_dlq,
            "REPLYFLOW_PARQUET_PATH": s.parquet_location, "REPLYFLOW_CHECKPOINT_DIR": s.checkpoint_location,
            "REPLYFLOW_API_URL": s.reply_api_url, "REPLYFLOW_API_TOKEN": s.secret("api_token") or "",
            "REPLYFLOW_STREAM_POST_REPLIES": "true" if self.post_replies else "false",
            "REPLYFLOW_STREAM_WRITE_ENRICHED_TOPIC": "false",
            "REPLYFLOW_STREAM_MAX_OFFSETS_PER_TRIGGER": str(PER_TRIGGER),
            "REPLYFLOW_STREAM_TRIGGER_SECONDS": "0.5", "REPLYFLOW_SPARK_MASTER": "local[2]",
            "REPLYFLOW_SPARK_SHUFFLE_PARTITIONS": "2", "REPLYFLOW_SPARK_DRIVER_MEMORY": "1g",
            "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)]),
            "REPLYFLOW_STREAM_METRICS_PORT": "0", TAG_ENV: self.tag,
        })  # fmt: skip
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        module = "replyflow.cli" if nlp_mode() == "real" else "tests.reliability.fake_nlp_stream"
        args = ["stream"] if module == "replyflow.cli" else []
        return [sys.executable, "-m", module, *args, "--until-idle", str(self.until_idle)]

    def start(self) -> None:
        self.runs += 1
        with self.log_path.open("ab") as out:
            out.write(f"\n==== run {self.runs}: {' '.join(self.command())}\n".encode())
            self.proc = subprocess.Popen(self.command(), cwd=self.workdir, env=self.env(), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL the whole process group: driver and Spark JVM die at once (pyspark daemons, in a group
        of their own, exit when the JVM's pipe closes; any left are killed by their tag)."""
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        _wait_group_gone(self.proc.pid)
        reap_tagged(self.tag, timeout=10)

    def terminate(self, signum: int = signal.SIGTERM, group: bool = False) -> None:
        """What ``replyflow down`` does (SIGTERM to the driver only), or with ``group`` and SIGINT, a terminal's Ctrl-C."""
        assert self.proc is not None
        if group:
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"stream did not finish within {timeout:.0f} s:\n{self.tail()}") from None

    def stop(self) -> None:
        """Teardown: SIGTERM to the driver (graceful: it stops Spark itself), then SIGKILL of what is left; safe twice."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=150)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=30)
        _wait_group_gone(self.proc.pid)
        reap_tagged(self.tag, timeout=10)

    def tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:] if self.log_path.exists() else ""


def _wait_group_gone(pgid: int, timeout: float = 30.0) -> None:
    """Wait until no process of the group is left (the JVM may take a moment after SIGKILL)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            return
        time.sleep(0.2)


def parquet_ids(settings: Any) -> list[str]:
    """tweet_id of every parquet row (files being written, ``_``/``.``-prefixed, are ignored)."""
    import pyarrow.dataset as ds

    root = Path(settings.parquet_location)
    if not list(root.glob("date=*/batch_id=*/*.parquet")):
        return []
    for _ in range(5):  # a batch may be renaming files into place while we read
        try:
            table = ds.dataset(str(root), format="parquet", partitioning="hive").to_table(columns=["tweet_id"])
            return [str(v) for v in table.column("tweet_id").to_pylist()]
        except (OSError, ValueError):
            time.sleep(0.5)
    raise AssertionError(f"could not read parquet under {root}")


def parquet_needs_reply(settings: Any) -> set[str]:
    import pyarrow.dataset as ds

    table = ds.dataset(settings.parquet_location, format="parquet", partitioning="hive").to_table(
        columns=["tweet_id", "needs_reply"])
    return {str(t) for t, n in zip(table.column("tweet_id").to_pylist(), table.column("needs_reply").to_pylist()) if n}


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, proc: StreamProcess | None = None,
             poll: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.proc is not None and proc.proc.poll() is not None:
            raise AssertionError(f"stream exited with {proc.proc.returncode} while waiting for {what}:\n{proc.tail()}")
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}" + (f":\n{proc.tail()}" if proc else ""))


def db_report(settings: Any) -> dict[str, Any]:
    """Rows and duplicates in the ticket store (by raw SQL, independent of the Store code)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            one = lambda sql: int(conn.execute(text(sql)).scalar() or 0)  # noqa: E731
            return {
                "tweets": one("SELECT count(*) FROM tweets"),
                "distinct_tweets": one("SELECT count(DISTINCT tweet_id) FROM tweets"),
                "tickets": one("SELECT count(*) FROM tickets"),
                "tickets_dup_first_tweet": one(
                    "SELECT count(*) FROM (SELECT first_tweet_id FROM tickets GROUP BY first_tweet_id HAVING count(*) > 1) d"),
                "tweets_with_ticket": one("SELECT count(*) FROM tweets WHERE ticket_pk IS NOT NULL"),
                "outbox": one("SELECT count(*) FROM outbox"),
                "outbox_dup_tweet": one(
                    "SELECT count(*) FROM (SELECT tweet_id FROM outbox GROUP BY tweet_id HAVING count(*) > 1) d"),
                "outbox_dup_ticket": one(
                    "SELECT count(*) FROM (SELECT ticket_pk FROM outbox GROUP BY ticket_pk HAVING count(*) > 1) d"),
                "outbox_sent": one("SELECT count(*) FROM outbox WHERE status = 'sent'"),
            }
    finally:
        engine.dispose()


def drain_outbox(settings: Any) -> dict[str, int]:
    """Send what the stream queued (dry run: marked sent, never posted) and return the counts."""
    from replyflow.reply.sender import Sender

    sender = Sender(settings.model_copy(update={"dry_run": True}))
    try:
        return sender.drain_once()
    finally:
        sender.outbox.db.dispose()


def assert_replies_exactly_once(settings: Any, ids: list[str]) -> dict[str, Any]:
    """Every tweet the policy selected reached the service once: one tweet row, one ticket, <= 1 outbox entry."""
    selected = parquet_needs_reply(settings)
    db = db_report(settings)
    assert selected, "the policy selected nothing: the test proves nothing"
    assert db["tweets"] == db["distinct_tweets"] == len(selected), (db, len(selected))
    assert db["tweets_with_ticket"] == db["tweets"], db
    assert db["tickets_dup_first_tweet"] == 0 and db["outbox_dup_tweet"] == 0 and db["outbox_dup_ticket"] == 0, db
    assert db["outbox"] > 0, db
    return db


@pytest.fixture()
def stream_procs() -> Iterator[list[StreamProcess]]:
    """Every stream process a test starts is stopped at teardown, whatever happened."""
    procs: list[StreamProcess] = []
    yield procs
    for proc in procs:
        proc.stop()


class _FixedPortServer:
    """The reply service under waitress on a FIXED port, so it can go away and come back."""

    def __init__(self, settings: Any, port: int) -> None:
        from replyflow.app import create_app
        from tests.fixtures.reply import ServerThread

        self.app = create_app(settings)
        self.runner = ServerThread.__new__(ServerThread)
        from waitress.server import create_server

        for _ in range(50):  # the port of the previous instance may linger for a moment
            try:
                self.runner.server = create_server(self.app, host="127.0.0.1", port=port, threads=4, ident="replyflow-test")
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"port {port} stayed busy")
        self.runner.port = port
        self.runner.thread = threading.Thread(target=self.runner._run, name=f"waitress-{port}", daemon=True)
        self.runner.start(f"http://127.0.0.1:{port}")

    def stop(self) -> None:
        self.runner.stop()
        self.app.extensions["replyflow"].store.dispose()


# --- 1. kill -9 of the stream job -----------------------------------------------------------
def test_stream_killed_with_sigkill_and_restarted(kafka_settings: Any, reply_server: Any, tmp_path: Path,
                                                  stream_procs: list[StreamProcess]) -> None:
    from replyflow.ingest.replay import replay_file

    base_url, server_settings = reply_server
    settings = kafka_settings.model_copy(update={"api_url": base_url, "api_port": server_settings.api_port})
    tweets = dataset_tweets(N_TWEETS)
    assert replay_file(settings, write_jsonl(tmp_path / "in.jsonl", tweets), progress=False).published == N_TWEETS

    stream = StreamProcess(settings, tmp_path, "stream", until_idle=10)
    stream_procs.append(stream)
    stream.start()
    parquet = Path(settings.parquet_location)
    wait_for(lambda: bool(list(parquet.glob("date=*/batch_id=*/*.parquet"))), 420, "the first parquet files", stream)
    stream.kill9()
    rows_at_kill = len(parquet_ids(settings))
    db_at_kill = db_report(settings)
    assert rows_at_kill < N_TWEETS, "the stream finished before the kill: nothing was interrupted"

    stream.start()  # same checkpoint, same parquet path
    rc = stream.wait(timeout=600)
    assert rc == 0, stream.tail()

    ids = parquet_ids(settings)
    assert len(ids) == len(set(ids)) == N_TWEETS, f"{len(ids)} rows, {len(set(ids))} distinct, {N_TWEETS} in"
    assert set(ids) == {t.tweet_id for t in tweets}
    db = assert_replies_exactly_once(settings, ids)
    sent = drain_outbox(settings)
    assert sent["sent"] == db["outbox"] and sent["failed"] == 0
    assert drain_outbox(settings)["sent"] == 0, "a second drain must send nothing"
    record("Spark job SIGKILLed mid-stream, restarted", "test_stream_killed_with_sigkill_and_restarted",
           rows_in=N_TWEETS, rows_out=len(ids), replies=sent["sent"], duplicates=len(ids) - len(set(ids)),
           lost=N_TWEETS - len(set(ids)), nlp=nlp_mode(), parquet_rows_at_kill=rows_at_kill,
           tweets_in_db_at_kill=db_at_kill["tweets"], tickets=db["tickets"], outbox=db["outbox"],
           outbox_duplicates=db["outbox_dup_tweet"], stream_runs=stream.runs)


# --- 2. Kafka broker stopped and restarted while producing ----------------------------------
@pytest.fixture()
def private_broker(settings: Any, tmp_path: Path) -> Iterator[Any]:
    """A broker of this test only (own state dir, free ports): stopping it disturbs nobody else."""
    from replyflow.kafka import broker
    from replyflow.ops.background import free_port

    port = free_port()
    controller = free_port()
    while controller == port:
        controller = free_port()
    own = settings.model_copy(update={
        "kafka_bootstrap_servers": None, "kafka_local_port": port, "kafka_controller_port": controller,
        "state_dir": tmp_path / "private-broker", "kafka_heap": "384m",
    })  # fmt: skip
    broker.start(own, timeout=120, die_with_parent=True)
    try:
        yield own
    finally:
        broker.stop(own)


def test_kafka_broker_restart_while_producing(private_broker: Any, settings: Any, tmp_path: Path,
                                              stream_procs: list[StreamProcess]) -> None:
    from replyflow.ingest.replay import replay_file
    from replyflow.kafka import broker
    from replyflow.kafka.topics import ensure_topics
    from tests.fixtures.kafka import consume

    # Clients see an "external" cluster at the private broker's address; only this test stops it.
    client = settings.model_copy(update={"kafka_bootstrap_servers": private_broker.bootstrap_servers,
                                         "stream_post_replies": False})
    ensure_topics(client)
    tweets = dataset_tweets(N_TWEETS)
    head, rest = tweets[: N_TWEETS // 10], tweets[N_TWEETS // 10:]
    assert replay_file(client, write_jsonl(tmp_path / "head.jsonl", head), progress=False).published == len(head)

    stream = StreamProcess(client, tmp_path, "stream", until_idle=20, post_replies=False)
    stream_procs.append(stream)
    stream.start()
    parquet = Path(client.parquet_location)
    wait_for(lambda: bool(list(parquet.glob("date=*/batch_id=*/*.parquet"))), 420, "the first parquet files", stream)

    outcome: dict[str, Any] = {}

    def produce() -> None:
        try:
            outcome["stats"] = replay_file(client, write_jsonl(tmp_path / "rest.jsonl", rest), rate=150, progress=False)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    producer = threading.Thread(target=produce, name="replay", daemon=True)
    producer.start()
    time.sleep(3)  # the replay is mid-way (150 tweets/s)
    stopped_at = time.monotonic()
    assert broker.stop(private_broker, timeout=60)
    time.sleep(10)  # the broker is away: the producer buffers and retries, the query waits
    broker.start(private_broker, timeout=120, die_with_parent=True)
    outage_s = time.monotonic() - stopped_at
    producer.join(timeout=240)
    assert not producer.is_alive(), "the replay never finished after the broker came back"
    assert "error" not in outcome, f"the producer did not recover: {outcome.get('error')!r}"
    assert outcome["stats"].published == len(rest)

    # The query may have survived the outage, or failed and need a restart (a supervisor's
    # job): either way, on its checkpoint, nothing may be lost or doubled.
    restarts = 0
    rc = stream.wait(timeout=600)
    while rc != 0 and restarts < 2:
        restarts += 1
        stream.start()
        rc = stream.wait(timeout=600)
    assert rc == 0, stream.tail()

    raw = consume(client, client.topic_raw, n=N_TWEETS, timeout=60)
    keys = [m.key().decode() for m in raw]
    assert len(keys) == len(set(keys)) == N_TWEETS, f"topic holds {len(keys)} messages, {len(set(keys))} distinct"
    ids = parquet_ids(client)
    assert len(ids) == len(set(ids)) == N_TWEETS, f"{len(ids)} rows, {len(set(ids))} distinct, {N_TWEETS} in"
    record("Kafka broker stopped and restarted while producing", "test_kafka_broker_restart_while_producing",
           rows_in=N_TWEETS, rows_out=len(ids), replies=0, duplicates=len(ids) - len(set(ids)) + len(keys) - len(set(keys)),
           lost=N_TWEETS - len(set(ids)), nlp=nlp_mode(), topic_messages=len(keys), outage_s=round(outage_s, 1),
           stream_restarts_needed=restarts, stream_runs=stream.runs)


# --- 3. reply service down for a while -------------------------------------------------------
def test_reply_service_down_for_a_while(kafka_settings: Any, tmp_path: Path, stream_procs: list[StreamProcess]) -> None:
    from replyflow.ingest.replay import replay_file
    from replyflow.ops.background import free_port

    port = free_port()
    settings = kafka_settings.model_copy(update={"api_port": port, "api_url": f"http://127.0.0.1:{port}"})
    tweets = dataset_tweets(N_TWEETS)
    assert replay_file(settings, write_jsonl(tmp_path / "in.jsonl", tweets), progress=False).published == N_TWEETS

    server: _FixedPortServer | None = _FixedPortServer(settings, port)
    stream = StreamProcess(settings, tmp_path, "stream", until_idle=15)
    stream_procs.append(stream)
    try:
        stream.start()
        wait_for(lambda: db_report(settings)["tweets"] > 0, 420, "the first replies to reach the service", stream)
        assert server is not None
        server.stop()
        server = None
        down_at = time.monotonic()
        rows_at_stop = len(parquet_ids(settings))
        db_at_stop = db_report(settings)
        # While the service is away the stream goes on enriching the batch in flight (parquet
        # grows), then holds that batch, retrying the POST; nothing is committed or dropped.
        wait_for(lambda: len(parquet_ids(settings)) > rows_at_stop, 300, "parquet to grow while the service is down",
                 stream)  # fmt: skip
        time.sleep(max(0.0, 20 - (time.monotonic() - down_at)))
        rows_while_down = len(parquet_ids(settings))
        assert stream.alive(), "the stream must wait for the service, not die:\n" + stream.tail()
        downtime = time.monotonic() - down_at
        server = _FixedPortServer(settings, port)
        rc = stream.wait(timeout=600)
        assert rc == 0, stream.tail()
    finally:
        if server is not None:
            server.stop()

    ids = parquet_ids(settings)
    assert len(ids) == len(set(ids)) == N_TWEETS, f"{len(ids)} rows, {len(set(ids))} distinct, {N_TWEETS} in"
    db = assert_replies_exactly_once(settings, ids)
    sent = drain_outbox(settings)
    assert sent["sent"] == db["outbox"] and sent["failed"] == 0
    log_text = stream.tail(10**7)
    assert "Reply service unavailable" in log_text, "the outage was not noticed: the test proves nothing"
    record("Reply service down for a while", "test_reply_service_down_for_a_while",
           rows_in=N_TWEETS, rows_out=len(ids), replies=sent["sent"], duplicates=len(ids) - len(set(ids)),
           lost=N_TWEETS - len(set(ids)), nlp=nlp_mode(), downtime_s=round(downtime, 1),
           parquet_rows_at_stop=rows_at_stop, parquet_rows_while_down=rows_while_down,
           tweets_in_db_at_stop=db_at_stop["tweets"], tickets=db["tickets"], outbox=db["outbox"],
           retry_warnings=log_text.count("Reply service unavailable"))


# --- 4. X API: 429, then 5xx, then success ---------------------------------------------------
def test_x_api_429_then_5xx_then_success(settings: Any) -> None:
    import responses
    import tweepy

    from replyflow.core.contracts import EnrichedTweet
    from replyflow.core.policy import decide
    from replyflow.reply.sender import Sender
    from replyflow.reply.store import Store
    from tests.fixtures.reply import enriched_tweet

    n = 40
    now = 1_800_000_000.0
    store = Store(settings.db_url, signature=settings.support_signature)
    store.create_all()
    try:
        for i in range(n):
            rec = EnrichedTweet.model_validate(enriched_tweet(tweet_id=str(9000 + i), conversation_id=str(9000 + i))).to_record()
            assert store.intake.ingest(rec, decide(rec, settings)).reply_queued

        created: dict[str, int] = {}  # in_reply_to -> tweets that exist on "X"
        attempts: dict[str, int] = {}
        ambiguous = {str(9000 + i) for i in range(0, n, 4)}  # 503 AFTER creating the tweet

        def fake_x(request: Any) -> tuple[int, dict[str, str], str]:
            body = json.loads(request.body)
            target = body["reply"]["in_reply_to_tweet_id"]
            attempts[target] = attempts.get(target, 0) + 1
            step = attempts[target]
            if step == 1:
                return 429, {"x-rate-limit-reset": str(int(now) + 30)}, json.dumps({"title": "Too Many Requests"})
            if step == 2:
                if target in ambiguous:
                    created[target] = created.get(target, 0) + 1
                return 503, {}, json.dumps({"title": "Service Unavailable"})
            if created.get(target):  # X refuses identical content
                return 403, {}, json.dumps({"detail": "You are not allowed to create a Tweet with duplicate content."})
            created[target] = created.get(target, 0) + 1
            new_id = str(10**18 + int(target))
            return 201, {}, json.dumps({"data": {"id": new_id, "text": body["text"], "edit_history_tweet_ids": [new_id]}})

        sleeps: list[float] = []
        client = tweepy.Client(consumer_key="ck", consumer_secret="cs", access_token="at", access_token_secret="ats")
        sender = Sender(settings.model_copy(update={"dry_run": False, "sender_max_attempts": 5}), client, outbox=store.outbox,
                        sleep=sleeps.append, clock=lambda: now)
        with responses.RequestsMock() as rsps:
            rsps.add_callback(responses.POST, "https://api.twitter.com/2/tweets", callback=fake_x)
            counts = sender.drain_once()
            again = sender.drain_once()
            calls = len(rsps.calls)
        report = db_report(settings)
    finally:
        store.dispose()

    assert counts == {"sent": n, "failed": 0, "skipped": 0}
    assert again == {"sent": 0, "failed": 0, "skipped": 0}
    assert set(created) == {str(9000 + i) for i in range(n)} and set(created.values()) == {1}, "a reply exists twice on X"
    assert calls == 3 * n and all(a == 3 for a in attempts.values())
    assert sleeps.count(31.0) == n, "each 429 waits until x-rate-limit-reset (+1 s)"
    assert len(sleeps) == 2 * n and all(0 < s <= 60 for s in sleeps)
    assert report["outbox_sent"] == n and report["outbox_dup_tweet"] == 0
    record("X API answers 429, then 5xx, then success", "test_x_api_429_then_5xx_then_success",
           rows_in=n, rows_out=n, replies=sum(created.values()), duplicates=sum(created.values()) - len(created),
           lost=n - len(created), http_calls=calls, ambiguous_5xx=len(ambiguous),
           recorded_duplicate_content=len(ambiguous), fake_sleeps_s=round(sum(sleeps), 1))


# --- 5. a near-1 MB invalid message in tweets.raw (regression: was a poison message) ------------
def test_oversized_invalid_message_in_raw_topic(kafka_settings: Any, kafka_consume: Any, tmp_path: Path,
                                                stream_procs: list[StreamProcess]) -> None:
    """Found by this suite: the stream's dead letter of a ~600 kB invalid message was a 1.2 MB
    Kafka record (RecordTooLargeException), failing the batch on every restart. Fixed in 702c74e
    (``DeadLetter`` caps its payload at 64 KiB); this keeps it fixed."""
    from confluent_kafka import Producer

    settings = kafka_settings.model_copy(update={"stream_post_replies": False})
    good = dataset_tweets(20)
    poison = b'"' * 600_000  # valid for Kafka (< 1 MB), not JSON; each quote doubles when escaped
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "message.max.bytes": 1_000_000})
    for tweet in good[:10]:
        producer.produce(settings.topic_raw, value=tweet.to_json(), key=tweet.tweet_id.encode())
    producer.produce(settings.topic_raw, value=poison, key=b"poison")
    for tweet in good[10:]:
        producer.produce(settings.topic_raw, value=tweet.to_json(), key=tweet.tweet_id.encode())
    assert producer.flush(60) == 0
    del producer  # its background thread would keep reconnecting to the broker after the session

    stream = StreamProcess(settings, tmp_path, "stream", until_idle=10, post_replies=False)
    stream_procs.append(stream)
    stream.start()
    rc = stream.wait(timeout=600)
    ids = parquet_ids(settings) if rc == 0 else []
    letters = kafka_consume(settings, settings.topic_dlq, n=1, timeout=20) if rc == 0 else []
    record("Near-1 MB invalid message in tweets.raw (stream DLQ)", "test_oversized_invalid_message_in_raw_topic",
           rows_in=21, rows_out=len(ids), dlq=len(letters), replies=0, duplicates=len(ids) - len(set(ids)),
           lost=20 - len(set(ids)), nlp=nlp_mode(), stream_exit_code=rc)
    assert rc == 0, stream.tail()
    assert sorted(ids) == sorted(t.tweet_id for t in good)
    assert len(letters) == 1 and len(letters[0].value()) < 1_000_000
    assert "payload truncated from 600000" in json.loads(letters[0].value())["reason"]
