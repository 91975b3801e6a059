"""X API ingestion (x_tweets, x_stream, x_mentions) against simulated X API v2 HTTP responses (``responses``; no network, no waiting)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
import tweepy
from pydantic import SecretStr

from replyflow.core.xapi import XApiConfigError, rate_limit_wait
from replyflow.ingest.x_mentions import load_since_id, poll_mentions
from replyflow.ingest.x_stream import StreamBackoff, _Stream, plan_rule_sync, run_filtered_stream
from replyflow.ingest.x_tweets import IngestStats, users_by_id, x_tweet_to_raw

DATA = Path(__file__).resolve().parents[1] / "data" / "x_api"
API = "https://api.twitter.com"
SUPPORT_ID = "1500000000000000000"
NOW = 1_800_000_000.0


def _json(name: str) -> Any:
    return json.loads((DATA / name).read_text())


class FakeProducer:
    def __init__(self) -> None:
        self.tweets: list[Any] = []
        self.dead: list[tuple[Any, str, str]] = []
        self.flushes = 0

    def publish(self, tweet: Any) -> None:
        self.tweets.append(tweet)

    def dead_letter(self, payload: Any, reason: str, stage: str) -> None:
        self.dead.append((payload, reason, stage))

    def poll(self, timeout: float = 0.0) -> int:
        return 0

    def flush(self, *args: Any, **kwargs: Any) -> None:
        self.flushes += 1


@pytest.fixture()
def x_settings(settings):
    return settings.model_copy(
        update={"x_bearer_token": SecretStr("AAAAbearer-test-token"), "x_support_user_id": SUPPORT_ID}
    )


# --- pure conversion ---------------------------------------------------------------------------
def test_x_tweet_to_raw_maps_every_field() -> None:
    page = _json("mentions_page1.json")
    users = users_by_id(page["includes"])
    reply = x_tweet_to_raw(page["data"][1], users, "x-mentions")
    assert reply.tweet_id == "1861000000000000002" and reply.author_handle == "X" and reply.author_id == "783214"
    assert reply.conversation_id == "1860999999999999000"
    assert reply.in_reply_to_tweet_id == "1860999999999999001"
    assert reply.created_at == datetime(2026, 11, 24, 10, 1, tzinfo=timezone.utc)
    assert reply.source == "x-mentions" and reply.lang == "en" and not reply.is_retweet
    first = x_tweet_to_raw(page["data"][0], users, "x-stream", ["@replyflowsupport -is:retweet"])
    assert first.in_reply_to_tweet_id is None and first.matched_rules == ["@replyflowsupport -is:retweet"]


def test_html_escaped_text_from_x_is_unescaped_once() -> None:
    """X delivers ``&amp;``, ``&lt;``, ``&gt;`` in tweet text; Kafka and everything after hold the real text."""
    page = _json("mentions_page1.json")
    tweet = {**page["data"][0], "text": "@replyflowsupport bags &amp; seats &lt;3 &amp;amp;"}
    raw = x_tweet_to_raw(tweet, users_by_id(page["includes"]), "x-mentions")
    assert raw.text == "@replyflowsupport bags & seats <3 &amp;"  # once: a literal "&amp;" typed by the customer stays


def test_retweets_are_marked_not_dropped() -> None:
    page = _json("mentions_page2.json")
    rt = x_tweet_to_raw(page["data"][0], users_by_id(page["includes"]), "x-mentions")
    assert rt.is_retweet


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"author_id": None}, "author_id"),
        ({"author_id": "555"}, "username of author 555"),
        ({"created_at": None}, "created_at"),
        ({"text": ""}, "text"),
        ({"id": "12ab"}, "tweet_id"),
    ],
)
def test_x_tweet_to_raw_rejects_incomplete_tweets(change: dict[str, Any], reason: str) -> None:
    page = _json("mentions_page1.json")
    with pytest.raises(ValueError, match=reason):
        x_tweet_to_raw({**page["data"][0], **change}, users_by_id(page["includes"]), "x-stream")


def test_plan_rule_sync() -> None:
    existing = [{"id": "1", "value": "a"}, {"id": "2", "value": "stale"}]
    assert plan_rule_sync(existing, ["a", "b", "b"]) == (["b"], ["2"])
    assert plan_rule_sync([], []) == ([], [])


def test_rate_limit_wait_uses_reset_header() -> None:
    assert rate_limit_wait({"x-rate-limit-reset": str(int(NOW) + 30)}, NOW) == 31.0
    assert rate_limit_wait({"x-rate-limit-reset": str(int(NOW) - 5)}, NOW) == 1.0  # clock skew: still wait a bit
    assert rate_limit_wait({}, NOW) == 60.0
    assert rate_limit_wait({"x-rate-limit-reset": "soon"}, NOW) == 60.0


def test_stream_backoff_follows_x_guidance() -> None:
    backoff = StreamBackoff()
    assert [backoff.next("network") for _ in range(3)] == [0.0, 0.25, 0.5]
    assert [backoff.next("http", 503) for _ in range(8)] == [5, 10, 20, 40, 80, 160, 320, 320]
    backoff.reset()
    assert backoff.next("http", 429, {}, NOW) == 60.0
    assert backoff.next("http", 429, {"x-rate-limit-reset": str(int(NOW) + 900)}, NOW) == 901.0


# --- mentions polling (simulated HTTP) -----------------------------------------------------------
MENTIONS = f"{API}/2/users/{SUPPORT_ID}/mentions"


@responses.activate
def test_poll_mentions_rate_limit_5xx_pagination_and_since_id(x_settings) -> None:
    reset = str(int(NOW) + 30)
    responses.get(MENTIONS, status=429, json={"title": "Too Many Requests"}, headers={"x-rate-limit-reset": reset})
    responses.get(MENTIONS, status=503, json={"title": "Service Unavailable"})
    responses.get(MENTIONS, json=_json("mentions_page1.json"))
    responses.get(MENTIONS, json=_json("mentions_page2.json"))
    responses.get(MENTIONS, json=_json("mentions_empty.json"))
    slept: list[float] = []
    producer = FakeProducer()
    client = tweepy.Client(bearer_token="AAAAbearer-test-token")

    stats = poll_mentions(x_settings, once=True, client=client, producer=producer, sleep=slept.append, clock=lambda: NOW)  # type: ignore[arg-type]

    assert slept == [31.0, 4.0]  # until x-rate-limit-reset, then exponential for the 5xx
    assert [t.tweet_id for t in producer.tweets] == ["1861000000000000003", "1861000000000000002", "1861000000000000001"]
    assert [t.source for t in producer.tweets] == ["x-mentions"] * 3
    assert producer.tweets[2].is_retweet
    assert len(producer.dead) == 1 and "username of author 999" in producer.dead[0][1]
    assert stats.published == 3 and stats.dead_lettered == 1 and stats.polls == 1
    page2 = responses.calls[3].request
    assert "pagination_token=7140dibdnow9c7btw4b0p3mfo1yqs5w0ou0hqgh3mrzfl" in page2.url
    assert "expansions=author_id" in page2.url and "since_id" not in page2.url
    assert page2.headers["Authorization"] == "Bearer AAAAbearer-test-token"
    assert load_since_id(x_settings) == "1861000000000000003"

    # A restart (new call) continues after the saved id and does not re-ingest.
    stats2 = poll_mentions(x_settings, once=True, client=client, producer=producer, sleep=slept.append, clock=lambda: NOW)  # type: ignore[arg-type]
    assert "since_id=1861000000000000003" in responses.calls[4].request.url
    assert stats2.published == 0 and len(producer.tweets) == 3
    assert load_since_id(x_settings) == "1861000000000000003"


@responses.activate
def test_poll_mentions_gives_up_after_persistent_5xx(x_settings) -> None:
    responses.get(MENTIONS, status=500, json={"title": "Internal Error"})
    slept: list[float] = []
    with pytest.raises(tweepy.TwitterServerError):
        poll_mentions(x_settings, once=True, client=tweepy.Client(bearer_token="t"), producer=FakeProducer(), sleep=slept.append)  # type: ignore[arg-type]
    assert slept == [2.0, 4.0, 8.0, 16.0, 32.0]
    assert load_since_id(x_settings) is None


@responses.activate
def test_poll_mentions_loops_with_interval(x_settings) -> None:
    responses.get(MENTIONS, json=_json("mentions_empty.json"))
    slept: list[float] = []
    s = x_settings.model_copy(update={"x_poll_interval_seconds": 7.5})
    stats = poll_mentions(s, client=tweepy.Client(bearer_token="t"), producer=FakeProducer(), sleep=slept.append, max_polls=3)  # type: ignore[arg-type]
    assert stats.polls == 3 and slept == [7.5, 7.5]


@responses.activate
def test_poll_mentions_looks_up_the_support_account_once(x_settings) -> None:
    by_name = responses.get(f"{API}/2/users/by/username/replyflowsupport",
                            json={"data": {"id": SUPPORT_ID, "name": "Support", "username": "replyflowsupport"}})
    responses.get(MENTIONS, json=_json("mentions_empty.json"))
    s = x_settings.model_copy(update={"x_support_user_id": None, "our_handles": ["replyflowsupport"]})
    stats = poll_mentions(s, client=tweepy.Client(bearer_token="t"), producer=FakeProducer(), sleep=lambda _: None, max_polls=3)  # type: ignore[arg-type]
    assert stats.polls == 3 and by_name.call_count == 1  # not once per poll: it costs rate limit


def test_missing_bearer_token_is_a_clear_error(settings) -> None:
    with pytest.raises(XApiConfigError, match="X_BEARER_TOKEN"):
        poll_mentions(settings, once=True, producer=FakeProducer())  # type: ignore[arg-type]


# --- filtered stream (simulated streaming HTTP) --------------------------------------------------
STREAM = f"{API}/2/tweets/search/stream"
RULES = f"{API}/2/tweets/search/stream/rules"


def _stream_body(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


@responses.activate
def test_filtered_stream_rules_keepalive_disconnects_and_backoff(x_settings) -> None:
    responses.get(
        RULES,
        json={"data": [{"id": "1", "value": "@replyflowsupport -is:retweet"}, {"id": "9", "value": "old rule"}],
              "meta": {"sent": "2026-11-24T10:00:00.000Z", "result_count": 2}},
    )  # fmt: skip
    responses.post(RULES, json={"meta": {"sent": "2026-11-24T10:00:00.000Z", "summary": {"deleted": 1, "not_deleted": 0}}})
    responses.post(
        RULES,
        json={"data": [{"id": "2", "value": "#replyflowhelp -is:retweet", "tag": "#replyflowhelp -is:retweet"}],
              "meta": {"sent": "2026-11-24T10:00:00.000Z", "summary": {"created": 1, "not_created": 0, "valid": 1, "invalid": 0}}},
    )  # fmt: skip
    body = (DATA / "stream_body.ndjson").read_text().splitlines()
    # 1: two tweets, a keep-alive (blank line), an operational-disconnect message, then the server closes.
    responses.get(STREAM, body=_stream_body(*body))
    # 2: rate limited (too many connections), 3: server error, 4: network error.
    responses.get(STREAM, status=429, json={"title": "ConnectionException"}, headers={"x-rate-limit-reset": str(int(NOW) + 120)})
    responses.get(STREAM, status=503, json={"title": "Service Unavailable"})
    responses.get(STREAM, body=requests.ConnectionError("connection reset by peer"))
    # 5: a broken line and a tweet without its author expansion -> both to the DLQ, then keep-alive.
    incomplete = json.loads(body[0])
    incomplete["data"]["id"], incomplete["includes"] = "1861000000000000012", {}
    responses.get(STREAM, body=_stream_body("{not json", json.dumps(incomplete), ""))

    producer = FakeProducer()
    slept: list[float] = []
    stats = run_filtered_stream(x_settings, producer=producer, sleep=slept.append, clock=lambda: NOW, max_connections=5)  # type: ignore[arg-type]

    # Rules synced: stale deleted, missing added with tag = value.
    rule_posts = [json.loads(c.request.body) for c in responses.calls if c.request.method == "POST"]
    assert rule_posts == [{"delete": {"ids": ["9"]}}, {"add": [{"value": "#replyflowhelp -is:retweet", "tag": "#replyflowhelp -is:retweet"}]}]
    stream_call = next(c for c in responses.calls if c.request.url.startswith(STREAM + "?"))
    assert "expansions=author_id" in stream_call.request.url and "created_at" in stream_call.request.url

    assert [(t.tweet_id, t.matched_rules, t.source) for t in producer.tweets] == [
        ("1861000000000000010", ["@replyflowsupport -is:retweet"], "x-stream"),
        ("1861000000000000011", ["#replyflowhelp -is:retweet"], "x-stream"),
    ]
    assert [d[1].split(":")[0] for d in producer.dead] == ["x-stream", "x-stream tweet 1861000000000000012"]
    assert stats.keep_alives >= 2 and stats.connections == 2
    # closed -> reconnect at once; 429 -> until x-rate-limit-reset (>= 60 s); 503 -> doubled http wait;
    # network error -> the linear network schedule goes on (0, 0.25, ...) until a connection delivers again.
    assert slept == [0.0, 121.0, 120.0, 0.25]


@responses.activate
def test_filtered_stream_unauthorized_is_not_retried(x_settings) -> None:
    responses.get(RULES, json={"meta": {"sent": "2026-11-24T10:00:00.000Z", "result_count": 0}})
    responses.post(RULES, json={"data": [], "meta": {"summary": {"created": 2}}})
    responses.get(STREAM, status=401, json={"title": "Unauthorized"})
    slept: list[float] = []
    with pytest.raises(XApiConfigError, match="HTTP 401"):
        run_filtered_stream(x_settings, producer=FakeProducer(), sleep=slept.append)  # type: ignore[arg-type]
    assert slept == []


def test_stream_messages_that_are_not_json_objects_are_dead_lettered_not_raised() -> None:

    producer, stats = FakeProducer(), IngestStats()
    stream = _Stream("bearer-token", producer, stats)  # type: ignore[arg-type]
    for raw in (b"[" * 100_000, b"\xff\xfe", b"[1, 2]", b"{not json"):
        stream.on_data(raw)  # a RecursionError here used to end the ingester
    assert [reason.split(":")[0] for _, reason, _ in producer.dead] == ["x-stream"] * 4
    assert "nested too deeply" in producer.dead[0][1] and stats.dead_lettered == 4 and producer.tweets == []
