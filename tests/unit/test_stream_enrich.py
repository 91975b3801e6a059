"""Unit tests of the stream job's pure pandas steps (no Spark): parse, dead letters, enrich."""

from __future__ import annotations

import json
import pickle
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import pytest

from replyflow.core.policy import Decision, PolicyConfig
from replyflow.stream.columns import DLQ_COLUMN, ENRICHED_SCHEMA, PARSED_SCHEMA
from replyflow.stream.enrich import (
    EnrichPartitions,
    dead_letter_json,
    enrich_frame,
    parse_frame,
    parse_record,
)

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=timezone.utc)


def raw(**overrides: Any) -> dict[str, Any]:
    tweet = {
        "tweet_id": "570306133677760513",
        "text": "@united my bag is lost, flight UA 123 from SFO",
        "author_id": "12345",
        "author_handle": "cairdin",
        "created_at": "2015-02-24T19:35:52Z",
        "conversation_id": "570306133677760513",
        "in_reply_to_tweet_id": None,
        "lang": "en",
        "source": "replay",
        "matched_rules": ["@united"],
    }
    tweet.update(overrides)
    return tweet


def records(values: list[bytes | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "key": [b"k%d" % i for i in range(len(values))],
            "value": values,
            "topic": "tweets.raw",
            "partition": [i % 3 for i in range(len(values))],
            "offset": list(range(100, 100 + len(values))),
            "timestamp": pd.Timestamp("2026-11-25 11:59:59"),
        }
    )


class FakeEnricher:
    model_version = "fake-1"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def enrich(self, texts: list[str]) -> list[dict[str, Any]]:
        self.calls.append(len(texts))
        out = []
        for text in texts:
            negative = "lost" in text
            out.append(
                {
                    "clean_text": text.lower(),
                    "sentiment": "negative" if negative else "positive",
                    "sentiment_score": 0.9,
                    "topic": "Baggage Issue" if negative else None,
                    "topic_score": 0.8 if negative else None,
                    "entities": [{"text": "SFO", "label": "AIRPORT", "start": 39, "end": 42}] if "SFO" in text else [],
                }
            )
        return out


# --- parse -------------------------------------------------------------------------------
def test_parse_record_valid_and_reasons() -> None:
    tweet, reason = parse_record(json.dumps(raw()).encode())
    assert reason is None and tweet is not None and tweet.tweet_id == "570306133677760513"
    assert parse_record(None) == (None, "empty message (null value)")
    assert "not JSON" in (parse_record(b"{nope")[1] or "")
    assert "tweet_id" in (parse_record(json.dumps(raw(tweet_id="abc")).encode())[1] or "")
    assert "invalid UTF-8" in (parse_record(b"\xff\xfe")[1] or "")


def test_parse_frame_keeps_every_record_and_builds_dead_letters() -> None:
    frame = parse_frame(
        records([json.dumps(raw()).encode(), b"not json", json.dumps(raw(text="   ")).encode()]), now=NOW
    )
    assert list(frame.columns) == PARSED_SCHEMA.fieldNames()
    assert len(frame) == 3
    valid = frame[frame[DLQ_COLUMN].isna()]
    assert list(valid["tweet_id"]) == ["570306133677760513"]
    assert valid["created_at"].iloc[0] == pd.Timestamp("2015-02-24T19:35:52Z")
    assert valid["matched_rules"].iloc[0] == ["@united"]
    dead = [json.loads(v) for v in frame[DLQ_COLUMN].dropna()]
    assert [d["source_offset"] for d in dead] == [101, 102]
    assert dead[0]["stage"] == "stream-parse" and dead[0]["source_topic"] == "tweets.raw"
    assert dead[0]["source_partition"] == 1 and dead[0]["payload"] == "not json"
    assert "not JSON" in dead[0]["reason"] and "blank" in dead[1]["reason"]
    assert frame["kafka_offset"].tolist() == [100, 101, 102]
    assert frame["kafka_key"].iloc[1] == b"k1"


def test_dead_letter_json_is_a_deadletter() -> None:
    from replyflow.core.contracts import DeadLetter

    letter = DeadLetter.model_validate_json(dead_letter_json("bad", b"\xffx", "t", 2, 7, NOW))
    assert letter.reason == "bad" and letter.payload == "\ufffdx" and letter.source_offset == 7
    assert letter.failed_at == NOW


# --- enrich ------------------------------------------------------------------------------
def _valid_frame(n: int = 3) -> pd.DataFrame:
    values = [json.dumps(raw(tweet_id=str(1000 + i), conversation_id=str(1000 + i),
                             text="my bag is lost at SFO" if i % 2 == 0 else "thanks, great flight")).encode()
              for i in range(n)]  # fmt: skip
    frame = parse_frame(records(values), now=NOW)
    return frame[frame[DLQ_COLUMN].isna()]


def test_enrich_frame_one_model_call_and_row_shape() -> None:
    enricher = FakeEnricher()
    out = enrich_frame(_valid_frame(3), enricher, PolicyConfig(our_handles=["replyflowsupport"]), now=NOW)
    assert enricher.calls == [3]  # batched, never per row
    assert list(out.columns) == ENRICHED_SCHEMA.fieldNames()
    first = out.iloc[0]
    assert first["sentiment"] == "negative" and first["topic"] == "Baggage Issue"
    assert first["entities"] == [{"text": "SFO", "label": "AIRPORT", "start": 39, "end": 42}]
    assert bool(first["needs_reply"]) is True  # the real policy: a confident complaint
    assert bool(out.iloc[1]["needs_reply"]) is False  # positive, reply_to_positive off
    assert out["ticket_id"].isna().all()
    assert set(out["model_version"]) == {"fake-1"}
    assert set(out["date"]) == {"2015-02-24"}  # the tweet's date, not today's: replay-stable
    assert out["processed_at"].iloc[0] == pd.Timestamp(NOW)
    assert out["kafka_offset"].tolist() == [100, 101, 102]


def test_enrich_frame_uses_given_policy_and_handles_empty() -> None:
    seen: list[dict[str, Any]] = []

    def decide(row: Any, policy: Any) -> Decision:
        seen.append(dict(row))
        return Decision(True, False, "low_confidence")

    out = enrich_frame(_valid_frame(2), FakeEnricher(), PolicyConfig(), decide=decide)
    assert out["needs_reply"].all()
    assert {"sentiment", "topic_score", "author_handle", "text"} <= set(seen[0])
    empty = enrich_frame(_valid_frame(0), FakeEnricher(), PolicyConfig())
    assert empty.empty and list(empty.columns) == ENRICHED_SCHEMA.fieldNames()


def test_enrich_frame_rejects_mismatched_model_output() -> None:
    class Broken(FakeEnricher):
        def enrich(self, texts: list[str]) -> list[dict[str, Any]]:
            return []

    with pytest.raises(RuntimeError, match="0 results for 2"):
        enrich_frame(_valid_frame(2), Broken(), PolicyConfig())


def test_enrich_partitions_loads_model_once_and_chunks() -> None:
    enricher = FakeEnricher()
    loads: list[tuple[str, float, int]] = []

    def loader(models_dir: str, cascade_threshold: float, threads: int) -> FakeEnricher:
        loads.append((models_dir, cascade_threshold, threads))
        return enricher

    fn = EnrichPartitions("/models", PolicyConfig(), cascade_threshold=0.7, threads=1, loader=loader, chunk_size=2)
    frames = list(fn(iter([_valid_frame(3), _valid_frame(2)])))
    assert loads == [("/models", 0.7, 1)]
    assert enricher.calls == [2, 1, 2]
    assert sum(len(f) for f in frames) == 5


def test_enrich_partitions_carries_what_workers_need(settings: Any) -> None:
    """Spark pickles the object to its workers: models folder, cascade threshold and policy travel inside it."""
    fn = EnrichPartitions("/models", PolicyConfig.from_settings(settings), cascade_threshold=0.7)
    back = pickle.loads(pickle.dumps(fn))
    assert (back.models_dir, back.cascade_threshold, back.policy) == ("/models", 0.7, fn.policy)
    assert "test-token" not in pickle.dumps(fn).decode("latin-1")  # no secrets travel


def test_policy_config_from_settings(settings: Any) -> None:
    policy = PolicyConfig.from_settings(settings)
    assert policy.our_handles == tuple(settings.our_handles)
    assert policy.reply_min_topic_confidence == settings.reply_min_topic_confidence
    assert not hasattr(policy, "api_token")
