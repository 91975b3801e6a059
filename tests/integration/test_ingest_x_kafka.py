"""Mentions from a simulated X API land on the real broker, and since_id survives a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
import tweepy

from replyflow.core.contracts import parse_raw
from replyflow.ingest.producer import TweetProducer
from replyflow.ingest.x_mentions import poll_mentions

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parents[1] / "data" / "x_api"
MENTIONS = "https://api.twitter.com/2/users/42/mentions"


@responses.activate
def test_mentions_to_kafka(kafka_settings, kafka_consume) -> None:
    responses.add_passthru("http://127.0.0.1")  # nothing of Kafka goes through requests, but be explicit
    for name in ("mentions_page1.json", "mentions_page2.json", "mentions_empty.json"):
        responses.get(MENTIONS, json=json.loads((DATA / name).read_text()))
    s = kafka_settings.model_copy(update={"x_support_user_id": "42"})
    client = tweepy.Client(bearer_token="t")
    with TweetProducer(s) as producer:
        poll_mentions(s, once=True, client=client, producer=producer, sleep=lambda _: None)
        poll_mentions(s, once=True, client=client, producer=producer, sleep=lambda _: None)  # restart: nothing new
    assert (producer.sent, producer.dlq, producer.failed) == (3, 1, 0)
    messages = kafka_consume(s, s.topic_raw, 3)
    assert sorted(m.key().decode() for m in messages) == [
        "1861000000000000001", "1861000000000000002", "1861000000000000003",
    ]  # fmt: skip
    assert all(parse_raw(m.value()).source == "x-mentions" for m in messages)
    assert len(kafka_consume(s, s.topic_dlq, 1)) == 1
