"""The stream job end to end on the REAL broker, REAL Spark and the REAL reply service.

One SparkSession (local[2]) for the module.  Covered: 500 dataset tweets -> 500 parquet rows
with NLP; every tweet the policy selects has exactly one ticket (and one outbox entry when
the policy replies publicly); a stop mid-stream and a restart on the same checkpoint lose
and duplicate nothing; malformed messages go to the DLQ with reasons while the query goes on.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASET = REPO_ROOT / "data" / "airline_tweets_sentiment.csv"


# --- the enricher: the real NLP pipeline ---------------------------------------------------
def _real_loader() -> Callable[[str], Any] | None:
    try:
        from replyflow.nlp.pipeline import get_enricher  # noqa: F401
    except ImportError:
        return None
    from replyflow.stream.enrich import load_enricher

    return load_enricher


class _FakeEnricher:
    """Only with REPLYFLOW_TEST_STREAM_FAKE_NLP=1 (developing the job before the NLP stage exists)."""

    model_version = "fake-nlp"

    def enrich(self, texts: list[str]) -> list[dict[str, Any]]:
        out = []
        for text in texts:
            negative = any(w in text.lower() for w in ("bag", "delay", "cancel", "lost", "worst", "not"))
            start = text.find("@")
            out.append({
                "clean_text": text.lower(), "sentiment": "negative" if negative else "positive",
                "sentiment_score": 0.9, "topic": "Baggage Issue" if negative else None,
                "topic_score": 0.8 if negative else None,
                "entities": [{"text": text[start:start + 5], "label": "HANDLE", "start": start, "end": start + 5}]
                if start >= 0 else [],
            })  # fmt: skip
        return out


def _fake_loader(models_dir: str, cascade_threshold: float = 0.0, threads: int = 1) -> Any:
    return _FakeEnricher()


@pytest.fixture(scope="module")
def enricher_loader() -> Callable[[str], Any]:
    if os.environ.get("REPLYFLOW_TEST_STREAM_FAKE_NLP") == "1":
        from pyspark import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
        return _fake_loader
    loader = _real_loader()
    if loader is None:
        pytest.skip("replyflow.nlp.pipeline is not available (NLP stage missing)")
    return loader


@pytest.fixture(scope="module")
def spark(kafka_broker: Any) -> Iterator[Any]:
    from replyflow.stream.session import create_spark

    session = create_spark(kafka_broker.model_copy(update={"spark_master": "local[2]", "spark_shuffle_partitions": 2}))
    yield session
    session.stop()


def _stream_settings(settings: Any, **overrides: Any) -> Any:
    update = {
        "spark_master": "local[2]",
        "stream_trigger_seconds": 0.5,
        "stream_starting_offsets": "earliest",
        "stream_write_enriched_topic": True,
    }
    update.update(overrides)
    return settings.model_copy(update=update)


def dataset_tweets(n: int) -> list[Any]:
    """The first ``n`` valid, distinct dataset tweets as RawTweets (same mapping as the replay)."""
    from replyflow.ingest.replay import distinct_tweets

    return distinct_tweets(DATASET, n)


def write_jsonl(path: Path, tweets: list[Any]) -> Path:
    path.write_bytes(b"".join(t.to_json() + b"\n" for t in tweets))
    return path


def read_parquet(spark: Any, settings: Any) -> list[Any]:
    return spark.read.parquet(settings.parquet_location).collect()


# --- the tests -------------------------------------------------------------------------------
def test_replay_parquet_replies_and_restart(
    spark: Any, kafka_settings: Any, reply_server: Any, enricher_loader: Any, tmp_path: Path
) -> None:
    from sqlalchemy import create_engine, select

    from replyflow.core.policy import decide
    from replyflow.ingest.replay import replay_file
    from replyflow.reply.tables import OutboxEntry, Ticket, Tweet
    from replyflow.stream.job import StreamJob, run_stream

    base_url, server_settings = reply_server
    settings = _stream_settings(
        kafka_settings, api_url=base_url, api_port=server_settings.api_port, stream_max_offsets_per_trigger=60
    )
    tweets = dataset_tweets(500)
    first, second = tweets[:300], tweets[300:]
    assert replay_file(settings, write_jsonl(tmp_path / "a.jsonl", first), progress=False).published == 300

    # Run 1: stop after two batches (60 offsets each), i.e. mid-stream.
    two_batches = threading.Event()
    job = StreamJob(settings, spark=spark, enricher_loader=enricher_loader,
                    on_batch=lambda r: two_batches.set() if job.totals.batches >= 2 else None)  # fmt: skip
    job.start()
    try:
        assert two_batches.wait(240), "the first batches never completed"
    finally:
        job.stop()
    done_first = job.totals.rows_in
    assert 0 < done_first < 300

    # More input while stopped, then restart on the same checkpoint until idle.
    assert replay_file(settings, write_jsonl(tmp_path / "b.jsonl", second), progress=False).published == 200
    totals = run_stream(settings.model_copy(update={"stream_max_offsets_per_trigger": 2000}), until_idle=6,
                        spark=spark, enricher_loader=enricher_loader)  # fmt: skip
    assert done_first + totals.rows_in >= 500

    rows = read_parquet(spark, settings)
    ids = [r.tweet_id for r in rows]
    assert len(rows) == 500 and len(set(ids)) == 500, "loss or duplicates across the restart"
    assert set(ids) == {t.tweet_id for t in tweets}
    assert all(r.sentiment in {"negative", "neutral", "positive"} for r in rows)
    assert all(r.sentiment_score is not None and 0.0 <= r.sentiment_score <= 1.0 for r in rows)
    assert sum(r.topic is not None for r in rows) > 0
    assert sum(len(r.entities) for r in rows) > 0
    assert all(r.ticket_id is None and r.model_version for r in rows)
    assert all(r.processed_at >= r.kafka_timestamp for r in rows)

    selected = {r.tweet_id for r in rows if r.needs_reply}
    public = {r.tweet_id for r in rows if decide(r.asDict(), settings).auto_reply}
    assert selected, "the policy selected nothing: the test proves nothing"
    assert selected == {r.tweet_id for r in rows if decide(r.asDict(), settings).needs_reply}

    engine = create_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            received = conn.execute(select(Tweet.tweet_id, Tweet.ticket_pk)).all()
            outbox = [r[0] for r in conn.execute(select(OutboxEntry.tweet_id)).all()]
            tickets = conn.execute(select(Ticket.id)).all()
    finally:
        engine.dispose()
    assert {t for t, _ in received} == selected and len(received) == len(selected)
    assert all(pk is not None for _, pk in received), "a selected tweet without a ticket"
    assert len(tickets) == len(selected)  # one conversation per dataset tweet
    assert sorted(outbox) == sorted(public), "outbox must hold exactly one entry per public reply"

    # The enriched topic got every tweet (at least once), keyed by tweet_id.
    from tests.fixtures.kafka import consume

    enriched = consume(settings, settings.topic_enriched, n=500, timeout=30)
    assert {m.key().decode() for m in enriched} == set(ids)
    sample = json.loads(enriched[0].value())
    assert {"tweet_id", "sentiment", "topic", "entities", "needs_reply", "ticket_id", "processed_at"} <= set(sample)


def test_malformed_messages_go_to_dlq_and_query_continues(
    spark: Any, kafka_settings: Any, enricher_loader: Any
) -> None:
    from confluent_kafka import Producer

    from replyflow.stream.columns import PARSED_SCHEMA  # noqa: F401  (import check of the schema module)
    from replyflow.stream.job import StreamJob
    from tests.fixtures.kafka import consume

    settings = _stream_settings(kafka_settings, stream_post_replies=False, stream_write_enriched_topic=False)
    good = dataset_tweets(30)
    bad = [b"this is not json", b'{"tweet_id": "1"}', json.dumps(json.loads(good[0].to_json()) | {"tweet_id": "x1"}).encode(),
           b"[1, 2, 3]", b"\xff\xfe\xfd"]  # fmt: skip
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})

    def produce(values: list[bytes], keys: list[bytes | None]) -> None:
        for key, value in zip(keys, values, strict=True):
            producer.produce(settings.topic_raw, value=value, key=key)
        assert producer.flush(30) == 0

    produce([t.to_json() for t in good[:10]] + bad, [t.tweet_id.encode() for t in good[:10]] + [b"bad"] * len(bad))
    job = StreamJob(settings, spark=spark, enricher_loader=enricher_loader)
    job.start()
    try:
        deadline = time.monotonic() + 240
        while job.totals.rows_in < 15 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert job.totals.dead_letters == len(bad)
        produce([t.to_json() for t in good[10:]], [t.tweet_id.encode() for t in good[10:]])  # the query goes on
        assert job.wait(until_idle=5) == "idle"
    finally:
        job.stop()
    assert job.query is not None and job.query.exception() is None

    letters = [json.loads(m.value()) for m in consume(settings, settings.topic_dlq, n=len(bad), timeout=30)]
    assert len(letters) == len(bad)
    assert all(d["stage"] == "stream-parse" and d["source_topic"] == settings.topic_raw for d in letters)
    assert all(d["reason"] and d["source_offset"] is not None for d in letters)
    reasons = " | ".join(sorted(d["reason"] for d in letters))
    assert "not JSON" in reasons and "tweet_id" in reasons and "invalid UTF-8" in reasons
    rows = read_parquet(spark, settings)
    assert sorted(r.tweet_id for r in rows) == sorted(t.tweet_id for t in good)


def test_cli_stream_stops_cleanly_on_sigterm(kafka_settings: Any, enricher_loader: Any, tmp_path: Path) -> None:
    """`replyflow stream` as operators run it: processes input, SIGTERM -> clean exit 0, Spark gone."""
    import os
    import signal
    import subprocess

    from replyflow.ingest.producer import TweetProducer

    settings = kafka_settings
    tweets = dataset_tweets(20)
    with TweetProducer(settings) as producer:
        for tweet in tweets:
            producer.publish(tweet)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLYFLOW_")}
    env.update({
        "REPLYFLOW_CONFIG": str(tmp_path / "none.toml"),
        "REPLYFLOW_STATE_DIR": str(settings.state_dir), "REPLYFLOW_MODELS_DIR": str(settings.models_dir),
        "REPLYFLOW_JARS_DIR": str(settings.jars_dir), "REPLYFLOW_JVM_DIR": str(settings.jvm_dir),
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "REPLYFLOW_TOPIC_RAW": settings.topic_raw,
        "REPLYFLOW_TOPIC_ENRICHED": settings.topic_enriched, "REPLYFLOW_TOPIC_DLQ": settings.topic_dlq,
        "REPLYFLOW_STREAM_POST_REPLIES": "false", "REPLYFLOW_SPARK_MASTER": "local[1]",
        "REPLYFLOW_STREAM_TRIGGER_SECONDS": "0.5", "REPLYFLOW_SPARK_DRIVER_MEMORY": "1g",
    })  # fmt: skip
    parquet = Path(settings.parquet_location)
    proc = subprocess.Popen([str(REPO_ROOT / ".venv" / "bin" / "replyflow"), "stream"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not list(parquet.glob("date=*/batch_id=*/*.parquet")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")[-3000:]
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=120)[0].decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output[-3000:]
    assert "SIGTERM received" in output and "Stream stopped" in output
    import pandas as pd

    assert sorted(pd.read_parquet(parquet)["tweet_id"]) == sorted(t.tweet_id for t in tweets)
