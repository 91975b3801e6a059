"""Pure parts of the replay: dataset row mapping, author ids, timestamps, file readers, rate limiting."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from replyflow.ingest.replay import (
    TokenBucket,
    author_id_for,
    csv_row_to_tweet,
    iter_file,
    parse_dataset_time,
    replay_file,
)

ROW = {
    "tweet_id": "570306133677760513",
    "airline_sentiment": "neutral",
    "airline": "Virgin America",
    "name": "cairdin",
    "text": "@VirginAmerica What @dhepburn said.",
    "tweet_created": "2015-02-24 11:35:52 -0800",
}


def test_csv_row_maps_to_raw_tweet() -> None:
    tweet = csv_row_to_tweet(ROW)
    assert tweet.tweet_id == tweet.conversation_id == "570306133677760513"
    assert tweet.author_handle == "cairdin" and tweet.author_id == author_id_for("cairdin")
    assert tweet.created_at == datetime(2015, 2, 24, 19, 35, 52, tzinfo=timezone.utc)
    assert tweet.source == "replay" and tweet.in_reply_to_tweet_id is None and tweet.matched_rules == []
    assert json.loads(tweet.to_json())["created_at"] == "2015-02-24T19:35:52Z"


def test_csv_text_is_html_unescaped_once() -> None:
    """The dataset holds the text as X delivered it (``&amp;``): unescaped once at ingest."""
    assert csv_row_to_tweet({**ROW, "text": "@united bags &amp; seats &gt; 3 &amp;amp;"}).text == "@united bags & seats > 3 &amp;"


def test_author_id_is_stable_numeric_and_case_insensitive() -> None:
    assert author_id_for("JetBlue") == author_id_for("jetblue") == author_id_for(" jetblue ")
    assert author_id_for("jetblue") != author_id_for("united")
    assert author_id_for("jetblue").isdigit()
    assert author_id_for("jetblue") == "148768120049889085"  # sha256-based: same on every machine


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({**ROW, "tweet_id": ""}, "tweet_id"),
        ({**ROW, "text": "   "}, "text"),
        ({**ROW, "tweet_id": "57030613367776051x"}, "tweet_id"),
        ({**ROW, "tweet_created": "yesterday"}, "tweet_created"),
        ({**ROW, "tweet_created": "2015-02-24 11:35:52"}, "timezone"),
        ({**ROW, "name": "Late Flightncy"}, "author_handle"),  # the dataset's "late" -> "Late Flight" damage
    ],
)
def test_invalid_rows_are_rejected_with_reason(row: dict[str, str], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        csv_row_to_tweet(row)


def test_parse_dataset_time_accepts_iso() -> None:
    assert parse_dataset_time("2026-11-24T10:00:00Z") == datetime(2026, 11, 24, 10, tzinfo=timezone.utc)
    assert parse_dataset_time("2026-11-24T12:00:00+02:00") == datetime(2026, 11, 24, 10, tzinfo=timezone.utc)


def test_csv_reader_reports_row_and_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "tweet_id,text,name,tweet_created\n"
        '1,"multi\nline text",alice,2015-02-24 11:35:52 -0800\n'
        "x2,bad id,bob,2015-02-24 11:35:52 -0800\n"
        "3,too,many,2015-02-24 11:35:52 -0800,extra\n",
        encoding="utf-8",
    )
    items = list(iter_file(path))
    assert items[0][2] is not None and items[0][2].text == "multi\nline text"
    assert items[1][0] == "t.csv row 2 (line 4)" and "tweet_id" in (items[1][3] or "")
    assert items[2][2] is None and "fields" in (items[2][3] or "")


def test_csv_without_dataset_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="header lacks"):
        list(iter_file(path))


class FakeProducer:
    def __init__(self) -> None:
        self.published: list[str] = []
        self.dead: list[tuple[str, str, str]] = []

    def publish(self, tweet) -> None:  # noqa: ANN001
        self.published.append(tweet.tweet_id)

    def dead_letter(self, payload, reason, stage) -> None:  # noqa: ANN001
        self.dead.append((payload, reason, stage))

    def poll(self, timeout: float = 0.0) -> int:
        return 0


def test_replay_counts_duplicates_blank_and_dlq(settings, tmp_path: Path) -> None:
    good = {
        "tweet_id": "1", "text": "hi", "author_id": "4", "author_handle": "a",
        "created_at": "2026-11-24T10:00:00Z", "conversation_id": "1", "source": "replay",
    }  # fmt: skip
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([json.dumps(good), "", json.dumps(good), "{oops", json.dumps({**good, "tweet_id": "2"})]))
    fake = FakeProducer()
    stats = replay_file(settings, path, producer=fake, progress=False)  # type: ignore[arg-type]
    assert fake.published == ["1", "2"]
    assert (stats.rows, stats.published, stats.duplicates, stats.blank, stats.dead_lettered) == (5, 2, 1, 1, 1)
    payload, reason, stage = fake.dead[0]
    assert payload == "{oops" and reason.startswith("in.jsonl line 4: not JSON") and stage == "ingest-replay"


def test_replay_limit_counts_input_rows(settings, repo_root: Path) -> None:
    fake = FakeProducer()
    stats = replay_file(settings, repo_root / "data" / "airline_tweets_sentiment.csv", limit=10, producer=fake, progress=False)  # type: ignore[arg-type]
    assert stats.rows == 10 and len(fake.published) == 10


def test_token_bucket_paces_without_real_sleep() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(rate=10, burst=1, clock=lambda: now[0], sleep=sleep)
    for _ in range(21):
        bucket.acquire()
    assert now[0] == pytest.approx(2.0)  # 21 tokens at 10/s with a burst of 1
    waited = len(slept)
    unlimited = TokenBucket(rate=0, clock=lambda: now[0], sleep=sleep)
    for _ in range(1000):
        unlimited.acquire()
    assert len(slept) == waited and now[0] == pytest.approx(2.0)  # rate 0: never waits


def test_replay_missing_file(settings, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        replay_file(settings, tmp_path / "nope.csv", producer=FakeProducer(), progress=False)  # type: ignore[arg-type]


def test_distinct_tweets_skips_invalid_rows_and_repeated_ids(tmp_path):
    from replyflow.ingest.replay import distinct_tweets

    ok = '{"tweet_id":"%s","text":"hi","author_id":"1","author_handle":"a","created_at":"2015-02-24T11:35:52Z",' \
         '"conversation_id":"%s","source":"replay"}'
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([ok % (1, 1), "not json", ok % (1, 1), ok % (2, 2), ok % (3, 3)]) + "\n")
    assert [t.tweet_id for t in distinct_tweets(path, 5)] == ["1", "2", "3"]
    assert [t.tweet_id for t in distinct_tweets(path, 1, skip=1)] == ["2"]
