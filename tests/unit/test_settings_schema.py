from __future__ import annotations

import json

import pytest

from replyflow.core.contracts import RawTweet, parse_raw


def _valid() -> dict:
    return {
        "tweet_id": "570306133677760513",
        "text": "@united my bag is lost, flight UA 1234",
        "author_id": "123",
        "author_handle": "jane_doe",
        "created_at": "2015-02-24T11:35:52Z",
        "conversation_id": "570306133677760513",
        "in_reply_to_tweet_id": None,
        "lang": "en",
        "source": "replay",
        "matched_rules": [],
    }


def test_settings_defaults_are_local(settings):
    assert settings.kafka_is_local
    assert settings.bootstrap_servers == f"127.0.0.1:{settings.kafka_local_port}"
    assert settings.db_url.startswith("sqlite:///")
    assert settings.spark_master == "local[*]"
    assert settings.dry_run is True


def test_external_kafka_by_environment(monkeypatch, settings):
    from replyflow.settings import Settings

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    s = Settings(_env_file=None)
    assert not s.kafka_is_local
    assert s.bootstrap_servers == "kafka-1:9092,kafka-2:9092"


def test_secret_not_in_repr(settings):
    assert "test-token-123456" not in repr(settings)
    assert settings.secret("api_token") == "test-token-123456"


def test_raw_tweet_roundtrip():
    tweet = parse_raw(json.dumps(_valid()))
    assert isinstance(tweet, RawTweet)
    again = parse_raw(tweet.to_json())
    assert again == tweet


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "invalid UTF-8"),
        (b"[1,2]", "not a JSON object"),
        (json.dumps({**_valid(), "tweet_id": "abc"}).encode(), "tweet_id"),
        (json.dumps({k: v for k, v in _valid().items() if k != "text"}).encode(), "text"),
        (json.dumps({**_valid(), "text": "   "}).encode(), "blank"),
        (json.dumps({**_valid(), "text": "x" * 5000}).encode(), "text"),
        (json.dumps({**_valid(), "created_at": "2015-02-24T11:35:52"}).encode(), "timezone"),
        (json.dumps({**_valid(), "source": "carrier-pigeon"}).encode(), "source"),
    ],
)
def test_parse_raw_rejects_with_reason(payload, reason):
    with pytest.raises(ValueError, match=reason):
        parse_raw(payload)


def test_settings_round_trip_through_child_environment(settings, monkeypatch):
    """Services started as subprocesses must see exactly the parent's settings."""
    from replyflow.settings import Settings

    parent = settings.model_copy(update={"our_handles": ["foo", "bar"], "dry_run": False, "api_port": 18123})
    for key, value in parent.to_env().items():
        monkeypatch.setenv(key, value)
    assert Settings(_env_file=None) == parent


def test_dead_letter_caps_huge_payloads_for_every_writer():
    """A near-1 MB bad input must not make a dead letter too large for Kafka (a poison message)."""
    from replyflow.core.contracts import MAX_DLQ_PAYLOAD_CHARS, DeadLetter

    letter = DeadLetter(reason="not JSON", stage="stream-parse", payload='"' * 600_000)
    assert len(letter.payload) == MAX_DLQ_PAYLOAD_CHARS
    assert "truncated from 600000" in letter.reason
    assert len(letter.to_json()) < 1_000_000
    small = DeadLetter(reason="x", stage="s", payload="abc")
    assert small.payload == "abc" and small.reason == "x"


def test_every_secret_field_is_known_for_redaction(settings) -> None:
    from pydantic import SecretStr

    names = [n for n, f in type(settings).model_fields.items() if "SecretStr" in str(f.annotation)]
    assert len(names) >= 6  # api_token and the five X credentials
    s = settings.model_copy(update={n: SecretStr(f"value-of-{n}") for n in names})
    assert sorted(s.secret_values()) == sorted(f"value-of-{n}" for n in names)
