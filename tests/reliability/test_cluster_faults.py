"""Fault injection on the local CLUSTER (``replyflow up --cluster``) during a replay: kill -9, each once.

The cluster (:mod:`tests.fixtures.cluster`): 3 Kafka brokers, topics at RF 3 with
``min.insync.replicas=2`` and an ``acks=all`` producer; Spark standalone, master + 2 workers of
1 core (the driver's executors run on the workers); PostgreSQL as the ticket store; the reply
service, the sender and the stream as separate processes, as an operator runs them.

* the leader broker of partition 0 of ``tweets.raw``, while the replay produces;
* one Spark worker (its executor dies with it), mid-stream;
* the driver (its process group: Python and the driver JVM), mid-stream; restarted on its checkpoint;
* the reply service, while the stream posts to it (small chunks, so a request is in flight);
* the sender, while X (a local fake) holds one of its posts: that entry becomes ``uncertain``.

Each expects 0 lost, 0 duplicate tickets, 0 duplicate replies, and no outbox entry left in
``sending``; each records one row in ``reports/reliability.json``.  To keep CI within its time
(a Spark start-up on the cluster costs a minute on 2 cores), the broker and worker kills share
one replay, and so do the reply-service and sender kills; their rows say ``same_run_as``.  The NLP is the fake
(:mod:`tests.reliability.fake_nlp_stream`): these tests are about the cluster, and the real
models are slow on 2 cores.  Tweets per test: ``REPLYFLOW_CLUSTER_FAULT_TWEETS`` (default 300;
docs/RELIABILITY.md has the command that records the 10,000-tweet figures).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from replyflow.core.procs import reap
from replyflow.ops.background import Service
from tests.reliability.report import record
from tests.reliability.test_faults import (
    StreamProcess,
    assert_replies_exactly_once,
    dataset_tweets,
    db_report,
    drain_outbox,
    parquet_ids,
    wait_for,
    write_jsonl,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(1800)]

REPO_ROOT = Path(__file__).resolve().parents[2]
N_TWEETS = int(os.environ.get("REPLYFLOW_CLUSTER_FAULT_TWEETS", "300"))
PER_TRIGGER = max(100, N_TWEETS // 8)
CLUSTER = "3 Kafka brokers (RF 3, min ISR 2, acks=all), Spark standalone (2 workers x 1 core), PostgreSQL"
SERVE = Service("serve", ("serve", "--no-sender"))
SEND = Service("send", ("send",))


class Run:
    """One test's pipeline on the shared cluster: own topics, database, state dir, ports."""

    def __init__(self, local_cluster: Any, settings: Any, fresh_db: str, tmp_path: Path, name: str) -> None:
        from replyflow.kafka.topics import ensure_topics
        from replyflow.ops.background import free_port

        suffix = f"{name}-{os.getpid()}-{int(time.time() * 1000) % 10**8}"
        port = free_port()
        fields = ("kafka_bootstrap_servers", "topic_replication_factor", "topic_min_insync_replicas", "spark_master")
        self.settings = settings.model_copy(update={
            **{f: getattr(local_cluster.client, f) for f in fields},
            "topic_raw": f"raw.{suffix}", "topic_enriched": f"enriched.{suffix}", "topic_dlq": f"dlq.{suffix}",
            "database_url": fresh_db, "api_port": port, "api_url": f"http://127.0.0.1:{port}",
            "stream_metrics_port": 0, "sender_poll_seconds": 0.2,
        })  # fmt: skip
        ensure_topics(self.settings)
        self.tmp = tmp_path
        self.tweets = dataset_tweets(N_TWEETS)
        self.replay_stats: dict[str, Any] = {}
        self.stream = StreamProcess(self.settings, tmp_path, "stream", until_idle=15, extra_env={
            "REPLYFLOW_SPARK_MASTER": self.settings.spark_master, "REPLYFLOW_STREAM_MAX_OFFSETS_PER_TRIGGER": str(PER_TRIGGER),
            "REPLYFLOW_SPARK_DRIVER_MEMORY": "768m", "REPLYFLOW_API_MAX_BATCH": "25",
        })  # fmt: skip
        self.replayer: threading.Thread | None = None

    # --- processes -------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        return {"PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)]), **extra}

    def start_serve(self) -> int:
        from replyflow.ops.background import start_service, wait_for_api

        pid = start_service(self.settings, SERVE, self.env())
        wait_for_api(self.settings, timeout=90)
        return pid

    def start_replay(self, rate: float = 0.0) -> None:
        from replyflow.ingest.replay import replay_file

        path = write_jsonl(self.tmp / "in.jsonl", self.tweets)

        def produce() -> None:
            try:
                self.replay_stats["stats"] = replay_file(self.settings, path, rate=rate, progress=False)
            except Exception as exc:  # noqa: BLE001 - asserted in finish()
                self.replay_stats["error"] = exc

        self.replayer = threading.Thread(target=produce, name="replay", daemon=True)
        self.replayer.start()

    def wait_first_batch(self) -> None:
        parquet = Path(self.settings.parquet_location)
        wait_for(lambda: bool(list(parquet.glob("date=*/batch_id=*/*.parquet"))), 600, "the first batch", self.stream)

    def finish_stream(self, restarts: int = 0) -> int:
        """Wait for the replay, then for the stream to go idle (restarting it on its checkpoint if it failed)."""
        assert self.replayer is not None
        self.replayer.join(timeout=600)
        assert "error" not in self.replay_stats, f"the replay failed: {self.replay_stats.get('error')!r}"
        assert self.replay_stats["stats"].published == N_TWEETS
        rc = self.stream.wait(timeout=1200)
        while rc != 0 and restarts < 2:
            restarts += 1
            self.stream.start()
            rc = self.stream.wait(timeout=1200)
        assert rc == 0, self.stream.tail()
        return restarts

    # --- the checks every fault test ends with ----------------------------------------------
    def topic_keys(self) -> list[str]:
        from tests.fixtures.kafka import consume

        return [m.key().decode() for m in consume(self.settings, self.settings.topic_raw, n=N_TWEETS, timeout=60)]

    def check(self) -> tuple[list[str], dict[str, Any]]:
        ids = parquet_ids(self.settings)
        assert len(ids) == len(set(ids)) == N_TWEETS, f"{len(ids)} rows, {len(set(ids))} distinct, {N_TWEETS} in"
        assert set(ids) == {t.tweet_id for t in self.tweets}
        keys = self.topic_keys()
        assert len(keys) == len(set(keys)) == N_TWEETS, f"topic holds {len(keys)} messages, {len(set(keys))} distinct"
        return ids, assert_replies_exactly_once(self.settings, ids)

    def record(self, fault: str, test: str, ids: list[str], db: dict[str, Any], replies: int, **extra: Any) -> None:
        record(fault, test, rows_in=N_TWEETS, rows_out=len(ids), replies=replies, duplicates=len(ids) - len(set(ids)),
               lost=N_TWEETS - len(set(ids)), nlp="fake", cluster=CLUSTER, tickets=db["tickets"], outbox=db["outbox"],
               outbox_duplicates=db["outbox_dup_tweet"], tickets_duplicate=db["tickets_dup_first_tweet"],
               stream_runs=self.stream.runs, **extra)  # fmt: skip


@pytest.fixture()
def run(request: Any, local_cluster: Any, settings: Any, fresh_postgres_url: str, tmp_path: Path) -> Iterator[Run]:
    from replyflow.ops.background import stop_service

    r = Run(local_cluster, settings, fresh_postgres_url, tmp_path, request.node.name.split("[")[0][-20:].replace("_", "-"))
    try:
        yield r
    finally:
        r.stream.stop()
        for name in ("send", "serve"):
            stop_service(r.settings, name, timeout=30)


def outbox_states(settings: Any) -> dict[str, int]:
    from replyflow.reply.store import Store

    store = Store(settings.db_url, signature=settings.support_signature)
    try:
        return store.outbox.counts()
    finally:
        store.dispose()


def kill9_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    time.sleep(0.5)
    reap(pid)  # our child: collect it, so its pidfile no longer names a live process


# --- 1 + 2. infrastructure: the leader broker of a partition, then a Spark worker -------------------
def test_cluster_leader_broker_then_spark_worker_killed(run: Run, local_cluster: Any) -> None:
    """Both faults the query must ride out without a restart, in one replay (one Spark start-up less in CI)."""
    from confluent_kafka.admin import AdminClient

    from replyflow.kafka import cluster as kafka_cluster
    from replyflow.ops import spark_cluster

    run.start_serve()
    run.stream.start()
    run.start_replay(rate=max(20.0, N_TWEETS / 30))  # ~30 s of producing: the broker kill lands in the middle
    time.sleep(6)
    raw = run.settings.topic_raw
    admin = AdminClient({"bootstrap.servers": run.settings.bootstrap_servers})
    leader = admin.list_topics(raw, timeout=10).topics[raw].partitions[0].leader
    pid = kafka_cluster.node_pids(local_cluster.base)[leader]
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    assert run.replayer is not None and run.replayer.is_alive(), "the replay had ended before the kill: proves nothing"
    time.sleep(8)  # two brokers carry on: writes still reach min.insync.replicas=2
    new_leader = admin.list_topics(raw, timeout=10).topics[raw].partitions[0].leader
    restart_began = time.monotonic()
    kafka_cluster.start_node(local_cluster.base, leader, die_with_parent=True)
    restart_s = time.monotonic() - restart_began
    down_s = time.monotonic() - killed_at - restart_s

    run.wait_first_batch()
    rows_at_worker_kill = len(parquet_ids(run.settings))
    worker = spark_cluster.pid_of(local_cluster.base, "worker-1")
    assert worker is not None
    os.kill(worker, signal.SIGKILL)  # its executor JVM notices its worker is gone and exits
    time.sleep(5)
    spark_cluster.start_worker(local_cluster.base, 1, die_with_parent=True)
    spark_cluster.wait_for_workers(local_cluster.base, 2)

    restarts = run.finish_stream()
    ids, db = run.check()
    sent = drain_outbox(run.settings)
    assert sent["sent"] == db["outbox"] and drain_outbox(run.settings)["sent"] == 0
    run.record("Leader broker of tweets.raw partition 0 killed -9 during the replay (cluster)",
               "test_cluster_leader_broker_killed", ids, db, sent["sent"], killed_broker=leader, new_leader=new_leader,
               broker_down_s=round(down_s, 1), broker_restart_s=round(restart_s, 1), stream_restarts_needed=restarts,
               same_run_as="spark worker kill")  # fmt: skip
    run.record("Spark worker killed -9 mid-stream (cluster)", "test_cluster_spark_worker_killed", ids, db, sent["sent"],
               parquet_rows_at_kill=rows_at_worker_kill, stream_restarts_needed=restarts,
               same_run_as="leader broker kill")  # fmt: skip
    assert new_leader != leader
    assert rows_at_worker_kill < N_TWEETS, "the stream had finished before the worker kill: proves nothing"


# --- 3. the driver --------------------------------------------------------------------------------
def test_cluster_driver_killed(run: Run) -> None:
    run.start_serve()
    run.start_replay()
    run.stream.start()
    run.wait_first_batch()
    run.stream.kill9()
    rows_at_kill = len(parquet_ids(run.settings))
    assert rows_at_kill < N_TWEETS, "the stream had finished before the kill: proves nothing"
    run.stream.start()  # same checkpoint
    run.finish_stream()
    ids, db = run.check()
    sent = drain_outbox(run.settings)
    assert sent["sent"] == db["outbox"] and drain_outbox(run.settings)["sent"] == 0
    run.record("Stream driver killed -9 mid-stream, restarted (cluster)", "test_cluster_driver_killed", ids, db,
               sent["sent"], parquet_rows_at_kill=rows_at_kill)


# --- 4 + 5. the reply service mid-request, the sender mid-send ------------------------------------
class FakeX:
    """A local X API: creates every reply it receives, but holds the ``hold``-th POST until released."""

    def __init__(self, hold: int = 5) -> None:
        self.created: dict[str, int] = {}
        self.requests = 0
        self.hold = hold
        self.holding = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                target = body["reply"]["in_reply_to_tweet_id"]
                with fake.lock:
                    fake.requests += 1
                    number = fake.requests
                    fake.created[target] = fake.created.get(target, 0) + 1  # on X from now on
                if number == fake.hold:
                    fake.holding.set()
                    fake.release.wait(60)  # the sender is killed while waiting for this answer
                new_id = str(10**18 + int(target))
                payload = json.dumps({"data": {"id": new_id, "text": body["text"], "edit_history_tweet_ids": [new_id]}})
                try:
                    self.send_response(201)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(payload.encode())
                except OSError:
                    pass  # the sender died meanwhile

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


def test_cluster_reply_service_and_sender_killed(run: Run) -> None:
    """The reply service while the stream posts to it, and the sender while X holds its post, in one replay."""
    from replyflow.ops.background import pid_of, start_service

    fake = FakeX(hold=5)
    live = {"REPLYFLOW_DRY_RUN": "false", "REPLYFLOW_X_API_BASE_URL": fake.url, "REPLYFLOW_SENDER_LEASE_SECONDS": "3",
            **{f"REPLYFLOW_X_{k}": "test" for k in ("API_KEY", "API_SECRET", "ACCESS_TOKEN", "ACCESS_TOKEN_SECRET")}}
    try:
        serve = run.start_serve()
        run.start_replay()
        run.stream.start()
        sender = start_service(run.settings, SEND, run.env(**live))
        # The stream posts in chunks of 25 back to back: once tweets arrive, a request is (almost always) in flight.
        wait_for(lambda: db_report(run.settings)["tweets"] > 0, 600, "the first replies", run.stream, poll=0.05)
        kill9_group(serve)
        tweets_at_kill = db_report(run.settings)["tweets"]
        time.sleep(8)  # the stream holds its batch and retries
        assert run.stream.alive(), run.stream.tail()
        assert pid_of(run.settings, "serve") is None
        run.start_serve()

        assert fake.holding.wait(600), "the sender never posted: " + (run.settings.logs_dir / "send.out").read_text()[-2000:]
        kill9_group(sender)  # X has the reply, the sender never hears back
        states_at_kill = outbox_states(run.settings)
        assert states_at_kill["sending"] == 1, states_at_kill
        fake.release.set()
        start_service(run.settings, SEND, run.env(**live))  # a new sender: reclaims the lease, sends the rest
        run.finish_stream()
        ids, db = run.check()
        wait_for(lambda: outbox_states(run.settings)["queued"] == 0 and outbox_states(run.settings)["sending"] == 0, 300,
                 "the sender to drain the outbox")  # fmt: skip
    finally:
        fake.close()
    stream_log = run.stream.tail(10**7)
    retries = stream_log.count("Reply service unavailable")
    cut = any(m in stream_log for m in ("RemoteDisconnected", "Connection aborted", "ConnectionResetError"))
    run.record("Reply service killed -9 while the stream posts (cluster)", "test_cluster_reply_service_killed_mid_request",
               ids, db, sum(fake.created.values()), tweets_in_db_at_kill=tweets_at_kill, retry_warnings=retries,
               request_cut_mid_flight=cut, same_run_as="sender kill")  # fmt: skip
    assert retries > 0, "the stream never saw the outage: proves nothing"

    states = outbox_states(run.settings)
    log_text = (run.settings.logs_dir / "send.out").read_text()
    assert states["uncertain"] == 1 and states["sending"] == 0 and states["failed"] == 0, states
    assert states["sent"] + states["uncertain"] == db["outbox"]
    assert "is UNCERTAIN" in log_text, "the uncertain entry was not reported"
    on_x_twice = sum(1 for n in fake.created.values() if n > 1)
    assert on_x_twice == 0, "a reply was posted twice"
    assert len(fake.created) == db["outbox"], "every entry was posted once (the uncertain one before the kill)"
    run.record("Sender killed -9 while X holds its post (cluster)", "test_cluster_sender_killed_mid_send", ids, db,
               sum(fake.created.values()), replies_on_x_twice=on_x_twice, outbox_sent=states["sent"],
               outbox_uncertain=states["uncertain"], outbox_sending_left=states["sending"], x_requests=fake.requests,
               same_run_as="reply service kill")
