"""TweetProducer against confluent-kafka's in-process mock cluster (fast; the real broker is in integration/)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from confluent_kafka import Consumer, TopicPartition

from replyflow.core.contracts import DeadLetter, RawTweet
from replyflow.ingest.producer import DeliveryError, TweetProducer

TWEET = RawTweet(
    tweet_id="123",
    text="@united where is my bag",
    author_id="9",
    author_handle="bob",
    created_at=datetime(2026, 11, 24, 10, tzinfo=timezone.utc),
    conversation_id="123",
    source="replay",
)


def test_publish_and_dead_letter_on_mock_cluster(settings) -> None:
    with TweetProducer(settings, {"test.mock.num.brokers": 1}) as producer:
        producer.publish(TWEET)
        producer.publish(TWEET.model_copy(update={"tweet_id": "124"}))
        producer.dead_letter(b"{broken", "line 3: not JSON", "ingest-replay")
    assert (producer.sent, producer.dlq, producer.failed) == (2, 1, 0)


def test_delivery_failure_is_counted_and_raised(settings) -> None:
    s = settings.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1"})  # nothing listens there
    producer = TweetProducer(s, {"message.timeout.ms": 300, "reconnect.backoff.max.ms": 100})
    producer.publish(TWEET)
    with pytest.raises(DeliveryError, match="1 messages failed delivery"):
        producer.flush(timeout=10)
    assert producer.failed == 1 and producer.sent == 0
    producer.flush(timeout=1)  # already reported: not raised twice


def test_full_local_queue_waits_then_fails_loudly(settings) -> None:
    s = settings.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1"})
    producer = TweetProducer(s, {"queue.buffering.max.messages": 1, "message.timeout.ms": 500}, buffer_full_timeout=0.3)
    producer.publish(TWEET)
    with pytest.raises(DeliveryError, match="queue stayed full"):
        producer.publish(TWEET)
    producer.flush(timeout=10, raise_on_failure=False)
    assert producer.failed == 1


def test_messages_are_keyed_by_tweet_id(settings) -> None:
    """Mock cluster round trip: key = tweet_id, value = wire JSON, DLQ envelope parses."""
    config = {"test.mock.num.brokers": 1}
    producer = TweetProducer(settings, config)
    producer.publish(TWEET)
    producer.dead_letter("{x", "bad", "ingest-x")
    producer.flush()
    bootstrap = producer._producer.list_topics(timeout=5).orig_broker_name.split("/")[0]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "t", "auto.offset.reset": "earliest"})
    metadata = consumer.list_topics(timeout=5).topics
    consumer.assign(
        [TopicPartition(t, p, 0) for t in (settings.topic_raw, settings.topic_dlq) for p in metadata[t].partitions]
    )
    got = {}
    for _ in range(40):
        for msg in consumer.consume(10, timeout=0.25):
            if msg.error() is None:
                got[msg.topic()] = msg
        if len(got) == 2:
            break
    consumer.close()
    assert got[settings.topic_raw].key() == b"123"
    assert RawTweet.model_validate_json(got[settings.topic_raw].value()) == TWEET
    letter = DeadLetter.model_validate_json(got[settings.topic_dlq].value())
    assert (letter.payload, letter.reason, letter.stage) == ("{x", "bad", "ingest-x")
