"""Replay into the real broker: every valid row is one message keyed by its id, every invalid row one DLQ message."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from replyflow.core.contracts import DeadLetter, parse_raw
from replyflow.ingest.producer import TweetProducer
from replyflow.ingest.replay import replay_file
from replyflow.kafka.topics import end_offsets

pytestmark = pytest.mark.integration


def _dataset_rows(repo_root: Path, n: int) -> tuple[list[str], list[dict[str, str]]]:
    """The first ``n`` valid dataset rows with distinct tweet ids."""
    from replyflow.ingest.replay import csv_row_to_tweet

    with (repo_root / "data" / "airline_tweets_sentiment.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows, seen = [], set()
        for row in reader:
            try:
                csv_row_to_tweet(row)
            except ValueError:
                continue
            if row["tweet_id"] not in seen:
                seen.add(row["tweet_id"])
                rows.append(row)
            if len(rows) == n:
                break
        return list(reader.fieldnames or []), rows


def test_replay_1000_dataset_tweets_exactly_once(kafka_settings, kafka_consume, repo_root, tmp_path) -> None:
    fields, rows = _dataset_rows(repo_root, 1000)
    path = tmp_path / "tweets.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        writer.writerows(rows[:25])  # the same tweets again: one tweet is one message
    stats = replay_file(kafka_settings, path, progress=False)
    assert (stats.rows, stats.published, stats.duplicates, stats.dead_lettered) == (1025, 1000, 25, 0)

    messages = kafka_consume(kafka_settings, kafka_settings.topic_raw, 1000)
    keys = [m.key().decode() for m in messages]
    assert len(messages) == 1000  # nothing lost, nothing twice
    assert sorted(keys) == sorted(r["tweet_id"] for r in rows)
    assert end_offsets(kafka_settings, kafka_settings.topic_raw) == 1000
    for msg in messages[:50]:
        tweet = parse_raw(msg.value())  # what the stream job does
        assert tweet.tweet_id == msg.key().decode()
        assert tweet.source == "replay" and tweet.created_at.utcoffset().total_seconds() == 0
    assert end_offsets(kafka_settings, kafka_settings.topic_dlq) == 0


def test_replay_real_dataset_with_limit(kafka_settings, kafka_consume, repo_root) -> None:
    """The unmodified dataset, first 1,000 rows: messages == distinct valid ids among them."""
    stats = replay_file(kafka_settings, repo_root / "data" / "airline_tweets_sentiment.csv", limit=1000, progress=False)
    assert stats.rows == 1000
    assert stats.published + stats.duplicates + stats.dead_lettered == 1000
    messages = kafka_consume(kafka_settings, kafka_settings.topic_raw, stats.published)
    assert len(messages) == stats.published
    assert len({m.key() for m in messages}) == stats.published


def test_50_malformed_lines_give_50_dead_letters(kafka_settings, kafka_consume, tmp_path) -> None:
    good = {
        "tweet_id": "1", "text": "@united my bag is lost", "author_id": "42", "author_handle": "alice",
        "created_at": "2026-11-24T10:00:00Z", "conversation_id": "1", "source": "replay",
    }  # fmt: skip
    lines: list[str] = []
    bad_kinds = [
        "{not json",
        json.dumps({**good, "tweet_id": "abc"}),
        json.dumps({**good, "text": ""}),
        json.dumps({k: v for k, v in good.items() if k != "created_at"}),
        json.dumps([1, 2, 3]),
    ]
    for i in range(100):
        if i % 2:
            lines.append(bad_kinds[i % len(bad_kinds)])
        else:
            lines.append(json.dumps({**good, "tweet_id": str(1000 + i), "conversation_id": str(1000 + i)}))
    lines.insert(10, "")  # blank lines are not messages
    path = tmp_path / "raw.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with TweetProducer(kafka_settings) as producer:
        stats = replay_file(kafka_settings, path, producer=producer, progress=False)
    assert producer.failed == 0 and producer.sent == 50 and producer.dlq == 50
    assert (stats.published, stats.dead_lettered, stats.blank) == (50, 50, 1)

    letters = [DeadLetter.model_validate_json(m.value()) for m in kafka_consume(kafka_settings, kafka_settings.topic_dlq, 50)]
    assert len(letters) == 50
    assert all(letter.stage == "ingest-replay" and "raw.jsonl line " in letter.reason for letter in letters)
    reasons = " | ".join(letter.reason for letter in letters)
    assert "not JSON" in reasons and "tweet_id" in reasons and "created_at" in reasons and "text" in reasons
    # The line numbers point at the input file (line 11 is the inserted blank line).
    numbers = sorted(int(letter.reason.split("line ")[1].split(":")[0]) for letter in letters)
    assert numbers == [n for n in range(1, 102) if n != 11 and not _is_good_line(n)]
    assert end_offsets(kafka_settings, kafka_settings.topic_raw) == 50


def _is_good_line(n: int) -> bool:
    index = n - 1 if n < 11 else n - 2  # undo the inserted blank line
    return index % 2 == 0
