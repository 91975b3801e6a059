"""The reply policy as a decision table (shared by the Spark job and the reply service)."""

from __future__ import annotations

from typing import Any

import pytest

from replyflow.core.policy import REASONS, PolicyConfig, decide


def tweet(**kw: Any) -> dict[str, Any]:
    base = {"author_handle": "someone", "text": "hello", "sentiment": "negative", "sentiment_score": 0.9,
            "topic": "Baggage Issue", "topic_score": 0.9}
    base.update(kw)
    return base


CASES = [
    # (overrides, reply_to_positive, needs_reply, auto_reply, reason)
    ({}, False, True, True, "complaint"),
    ({"topic": None, "topic_score": None}, False, True, True, "complaint"),
    ({"sentiment_score": 0.3}, False, True, False, "low_confidence"),
    ({"sentiment": "neutral", "topic_score": 0.7}, False, True, True, "question"),
    ({"sentiment": "neutral", "topic_score": 0.2}, False, False, False, "not_support"),
    ({"sentiment": "neutral", "topic": None}, False, False, False, "not_support"),
    ({"sentiment": "neutral", "sentiment_score": 0.4}, False, True, False, "low_confidence"),
    ({"sentiment": "positive"}, False, False, False, "positive_ignored"),
    ({"sentiment": "positive"}, True, True, True, "thanks"),
    ({"sentiment": "positive", "sentiment_score": 0.1}, True, True, False, "low_confidence"),
    ({"author_handle": "ReplyFlowSupport"}, False, False, False, "own_tweet"),
    ({"author_handle": "@replyflowsupport"}, False, False, False, "own_tweet"),
    ({"text": "RT @someone: my bag is lost"}, False, False, False, "retweet"),
    ({"text": "not an RT @someone"}, False, True, True, "complaint"),
    ({"sentiment": None}, False, True, False, "low_confidence"),
    ({"sentiment_score": float("nan")}, False, True, False, "low_confidence"),
    ({"sentiment_score": None}, False, True, False, "low_confidence"),
    ({"sentiment": "neutral", "topic_score": "garbage"}, False, False, False, "not_support"),
]


@pytest.mark.parametrize(("overrides", "to_positive", "needs", "auto", "reason"), CASES)
def test_decision_table(settings, overrides, to_positive, needs, auto, reason) -> None:
    s = settings.model_copy(update={"reply_to_positive": to_positive})
    decision = decide(tweet(**overrides), s)
    assert (decision.needs_reply, decision.auto_reply, decision.reason) == (needs, auto, reason)
    assert 0.0 < decision.confidence <= 1.0 if auto else decision.confidence == 0.0
    assert decision.reason in REASONS
    assert not (decision.auto_reply and not decision.needs_reply)


def test_thresholds_come_from_settings(settings) -> None:
    strict = settings.model_copy(update={"reply_min_sentiment_confidence": 0.95, "reply_min_topic_confidence": 0.95})
    assert decide(tweet(), strict).reason == "low_confidence"
    assert decide(tweet(sentiment="neutral", topic_score=0.9, sentiment_score=0.99), strict).reason == "not_support"


def test_accepts_any_mapping_and_plain_config(settings) -> None:
    """The Spark job passes PolicyConfig (no secrets), not Settings, and pandas-like rows."""
    config = PolicyConfig(our_handles=("us",))
    assert decide(tweet(author_handle="US"), config).reason == "own_tweet"
    assert decide(tweet(), config).as_dict() == {"needs_reply": True, "auto_reply": True, "reason": "complaint",
                                                 "confidence": 0.9}
    assert decide(tweet(), PolicyConfig.from_settings(settings)) == decide(tweet(), settings)
