"""A corpus of bad and hostile input, shared by the ingest, stream, API and dashboard tests.

Why one module: every entry point (Kafka producer/replay, the Spark parse step, the reply
API, the dashboard) must handle the *same* hostile inputs, so a new nasty case added here
is exercised everywhere at once.  Each raw entry says what the validator must answer
(``reason``: a substring of the ``ValueError`` / DLQ reason), so a test cannot pass by
rejecting things for the wrong reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SQL_INJECTION = "'; DROP TABLE tickets; --"
SQL_INJECTION_2 = "1' OR '1'='1"
SCRIPT = "<script>alert(1)</script>"
IMG_ONERROR = '"><img src=x onerror=alert(1)>'
HOSTILE_TEXTS: tuple[str, ...] = (SQL_INJECTION, SQL_INJECTION_2, SCRIPT, IMG_ONERROR,
                                  "Robert'); DROP TABLE tweets;--", "{{7*7}} ${7*7} %s %n", "\u202eevil\u202c",
                                  "tab\tbell\x07esc\x1b[31m")


def valid_raw(**overrides: Any) -> dict[str, Any]:
    """A valid ``tweets.raw`` message as a dict (what :func:`parse_raw` accepts)."""
    tweet: dict[str, Any] = {
        "tweet_id": "1000000000000000001",
        "text": "@united my bag is lost, flight UA123",
        "author_id": "42",
        "author_handle": "traveller_jo",
        "created_at": "2026-11-24T09:30:00Z",
        "conversation_id": "1000000000000000001",
        "in_reply_to_tweet_id": None,
        "lang": "en",
        "source": "replay",
        "matched_rules": [],
    }
    tweet.update(overrides)
    return tweet


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def _without(field: str) -> bytes:
    data = valid_raw()
    del data[field]
    return _json(data)


@dataclass(frozen=True)
class BadMessage:
    """One raw message for ``tweets.raw`` that must be rejected, and why."""

    name: str
    payload: bytes
    reason: str  # substring the rejection reason must contain

    @property
    def single_line(self) -> bool:
        """Usable as one JSONL line (the replay file format splits on newlines)."""
        return b"\n" not in self.payload and b"\r" not in self.payload


#: ~1.5 MB: above Kafka's default 1 MB message limit, so a naive dead letter of it cannot be produced.
MULTI_MB_TEXT = "x" * 1_500_000

BAD_MESSAGES: tuple[BadMessage, ...] = (
    BadMessage("not-json", b"this is not json", "not JSON"),
    BadMessage("truncated-json", b'{"tweet_id": "1", "text": ', "not JSON"),
    BadMessage("json-array", b"[1, 2, 3]", "not a JSON object but list"),
    BadMessage("json-string", b'"just a string"', "not a JSON object but str"),
    BadMessage("json-null", b"null", "not a JSON object but NoneType"),
    BadMessage("empty", b"", "not JSON"),
    BadMessage("invalid-utf8", b'{"text": "\xff\xfe\xfd"}', "invalid UTF-8"),
    BadMessage("lone-surrogate-escape", _json(valid_raw()).replace(b'"@united', b'"\\ud800 @united'), "text"),
    BadMessage("missing-tweet-id", _without("tweet_id"), "tweet_id"),
    BadMessage("missing-text", _without("text"), "text"),
    BadMessage("missing-created-at", _without("created_at"), "created_at"),
    BadMessage("tweet-id-not-digits", _json(valid_raw(tweet_id="x1")), "tweet_id"),
    BadMessage("tweet-id-number-type", _json(valid_raw(tweet_id=[1])), "tweet_id"),
    BadMessage("text-wrong-type", _json(valid_raw(text={"a": 1})), "text"),
    BadMessage("created-at-garbage", _json(valid_raw(created_at="yesterday")), "created_at"),
    BadMessage("created-at-naive", _json(valid_raw(created_at="2026-11-24T09:30:00")), "created_at"),
    BadMessage("unknown-source", _json(valid_raw(source="carrier-pigeon")), "source"),
    BadMessage("extra-field", _json(valid_raw(admin=True)), "admin"),
    BadMessage("empty-text", _json(valid_raw(text="")), "text"),
    BadMessage("nul-in-text", _json(valid_raw(text="null\x00byte")), "NUL"),
    BadMessage("nul-in-rules", _json(valid_raw(matched_rules=["a\x00"])), "NUL"),
    BadMessage("blank-text", _json(valid_raw(text="   \t ")), "text is blank"),
    BadMessage("text-10kB", _json(valid_raw(text="a" * 10_000)), "text"),
    BadMessage("text-multi-MB", _json(valid_raw(text=MULTI_MB_TEXT)), "text"),
    BadMessage("sql-in-handle", _json(valid_raw(author_handle=SQL_INJECTION)), "author_handle"),
    BadMessage("sql-in-tweet-id", _json(valid_raw(tweet_id=SQL_INJECTION)), "tweet_id"),
    BadMessage("script-in-handle", _json(valid_raw(author_handle=SCRIPT)), "author_handle"),
    BadMessage("img-in-author-id", _json(valid_raw(author_id=IMG_ONERROR)), "author_id"),
    BadMessage("script-in-lang", _json(valid_raw(lang=SCRIPT)), "lang"),
    BadMessage("deeply-nested", b"[" * 100_000 + b"]" * 100_000, "not"),
)

#: Hostile but *valid* tweets: they must be accepted and carried verbatim (escaped on output).
HOSTILE_VALID: tuple[dict[str, Any], ...] = tuple(
    valid_raw(tweet_id=str(2000000000000000000 + i), conversation_id=str(2000000000000000000 + i), text=text)
    for i, text in enumerate(HOSTILE_TEXTS)
)


# --- reply API bodies --------------------------------------------------------------------------
def api_bad_bodies(make_tweet: Any, max_batch: int, max_text: int) -> list[tuple[str, Any, int]]:
    """``(name, json body, expected status)`` for POST /api/v1/replies; every one is a 4xx."""
    nested: dict[str, Any] = {}
    cur = nested
    for _ in range(50):
        cur["a"] = {}
        cur = cur["a"]
    return [
        ("array-body", [1, 2], 400),
        ("string-body", "tweet", 400),
        ("number-body", 42, 400),
        ("null-body", None, 400),
        ("empty-object", {}, 400),
        ("nested-object", nested, 400),
        ("tweets-not-list", {"tweets": "many"}, 400),
        ("tweets-empty", {"tweets": []}, 400),
        ("tweets-items-not-objects", {"tweets": [1, "two", None]}, 400),
        ("missing-tweet-id", {k: v for k, v in make_tweet().items() if k != "tweet_id"}, 400),
        ("missing-sentiment", {k: v for k, v in make_tweet().items() if k != "sentiment"}, 400),
        ("tweet-id-int-list", make_tweet(tweet_id=[1]), 400),
        ("sentiment-unknown", make_tweet(sentiment="furious"), 400),
        ("score-out-of-range", make_tweet(sentiment_score=7.5), 400),
        ("score-string", make_tweet(sentiment_score="high"), 400),
        ("score-nan-string", make_tweet(sentiment_score="NaN"), 400),
        ("topic-unknown", make_tweet(topic="Free Upgrade"), 400),
        ("entities-wrong", make_tweet(entities=[{"text": 1}]), 400),
        ("created-garbage", make_tweet(created_at="yesterday"), 400),
        ("empty-text", make_tweet(text=""), 400),
        ("nul-in-text", make_tweet(text="null\x00byte"), 400),
        ("nul-in-entity", make_tweet(entities=[{"text": "\x00", "label": "X", "start": 0, "end": 1}]), 400),
        ("text-10kB", make_tweet(text="a" * 10_000), 400),
        ("text-over-limit", make_tweet(text="b" * (max_text + 1)), 400),
        ("sql-handle", make_tweet(author_handle=SQL_INJECTION), 400),
        ("script-handle", make_tweet(author_handle=SCRIPT), 400),
        ("img-handle", make_tweet(author_handle=IMG_ONERROR), 400),
        ("sql-tweet-id", make_tweet(tweet_id=SQL_INJECTION), 400),
        ("sql-topic", make_tweet(topic=SQL_INJECTION), 400),
        ("script-topic", make_tweet(topic=SCRIPT), 400),
        ("batch-over-max", {"tweets": [make_tweet(tweet_id=str(70_000 + i)) for i in range(max_batch + 1)]}, 400),
        ("batch-one-bad", {"tweets": [make_tweet(tweet_id="80001"), make_tweet(tweet_id="x")]}, 400),
    ]
