"""The real local broker: start/stop/status, idempotent start, topics and end offsets."""

from __future__ import annotations

import pytest

from replyflow.kafka import broker
from replyflow.kafka.topics import describe_topics, end_offsets, ensure_topics
from replyflow.ops.background import free_port

pytestmark = pytest.mark.integration


def test_session_broker_answers(kafka_broker) -> None:
    assert broker.status(kafka_broker) is True
    assert broker.broker_answers(kafka_broker)


def test_start_is_idempotent_and_stop_is_clean(settings, repo_root) -> None:
    """A second broker of its own (own ports and state): start twice, stop, restart keeps data."""
    s = settings.model_copy(update={"kafka_local_port": free_port(), "kafka_controller_port": free_port()})
    assert broker.status(s) is False
    broker.start(s, die_with_parent=True)
    try:
        pid = broker.running_pid(s)
        assert pid is not None
        broker.start(s)  # already running: no second JVM
        assert broker.running_pid(s) == pid
        assert broker.status(s) is True
        assert (s.kafka_data_dir / "server.properties").is_file()
        assert (s.logs_dir / "kafka-server.log").is_file()
        ensure_topics(s, [s.topic_raw])
        from replyflow.ingest.producer import TweetProducer

        producer = TweetProducer(s)
        producer._produce(s.topic_raw, b"{}", b"1", None)
        producer.flush()
    finally:
        assert broker.stop(s) is True
    assert broker.running_pid(s) is None
    assert broker.status(s) is False
    assert broker.stop(s) is False  # nothing to stop
    # Storage is formatted once; a restart keeps the topic and its messages.
    broker.start(s, die_with_parent=True)
    try:
        assert end_offsets(s, s.topic_raw) == 1
    finally:
        broker.stop(s)


def test_external_cluster_is_left_alone(settings, caplog) -> None:
    s = settings.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1"})
    broker.start(s)
    assert broker.stop(s) is False
    assert not s.kafka_data_dir.exists()


def test_ensure_topics_idempotent_and_described(kafka_settings) -> None:
    s = kafka_settings
    assert ensure_topics(s) == []  # the fixture created them already
    rows = describe_topics(s)
    assert [r["topic"] for r in rows] == [s.topic_raw, s.topic_enriched, s.topic_dlq]
    assert all(r["partitions"] == s.topic_partitions and r["replication"] == 1 for r in rows)
    assert end_offsets(s, s.topic_raw) == 0


def test_spark_connector_jars(kafka_broker) -> None:
    jars = broker.spark_connector_jars(kafka_broker)
    names = [j.name for j in jars]
    assert any(n.startswith("spark-sql-kafka-0-10_2.13-") for n in names)
    assert any(n.startswith("kafka-clients-") for n in names)
    assert broker.jars_current(kafka_broker, broker.SPARK_KAFKA_JARS)
