"""The reply policy as a decision table (shared by the Spark job and the reply service)."""

from __future__ import annotations

from typing import Any

import pytest

from replyflow.core.policy import REASONS, PolicyConfig, confident_topic, decide

CONFIG = PolicyConfig(our_handles=("united", "replyflowsupport"), reply_min_needs_reply=0.8,
                      reply_ticket_min_needs_reply=0.3, reply_min_topic_confidence=0.7)


def tweet(**kw: Any) -> dict[str, Any]:
    base = {"author_handle": "someone", "text": "@united my bag never arrived", "sentiment": "negative",
            "sentiment_score": 0.9, "topic": "Baggage Issue", "topic_score": 0.9, "needs_reply_score": 0.95}
    base.update(kw)
    return base


CASES = [
    # (overrides, reply_to_positive, needs_reply, auto_reply, reason)
    ({}, False, True, True, "complaint"),
    ({"topic": None, "topic_score": None}, False, True, True, "complaint"),
    ({"sentiment": "neutral", "text": "@united can I bring skis?"}, False, True, True, "question"),
    ({"sentiment": "positive", "text": "@united how do I add my KTN?"}, False, True, True, "question"),
    ({"needs_reply_score": 0.5}, False, True, False, "low_confidence"),
    ({"needs_reply_score": 0.1}, False, False, False, "no_reply_needed"),
    ({"needs_reply_score": 0.1, "sentiment": "positive", "text": "@united great crew!"}, True, True, True, "thanks"),
    ({"needs_reply_score": 0.1, "sentiment": "positive", "text": "@united great crew!"}, False, False, False,
     "no_reply_needed"),
    ({"text": "can't believe @united lost my bag again, never flying them"}, False, True, False, "not_addressed"),
    ({"text": "my bag is lost", "needs_reply_score": 0.2}, False, False, False, "no_reply_needed"),
    ({"author_handle": "United"}, False, False, False, "own_tweet"),
    ({"author_handle": "@replyflowsupport"}, False, False, False, "own_tweet"),
    ({"text": "RT @someone: @united lost my bag"}, False, False, False, "retweet"),
    ({"is_retweet": True}, False, False, False, "retweet"),
    ({"sentiment": None}, False, True, False, "low_confidence"),
    ({"needs_reply_score": float("nan")}, False, False, False, "no_reply_needed"),
    ({"needs_reply_score": "garbage"}, False, False, False, "no_reply_needed"),
    # rows from before the needs-reply model: a confident complaint needs a reply
    ({"needs_reply_score": None}, False, True, True, "complaint"),
    ({"needs_reply_score": None, "sentiment": "neutral"}, False, False, False, "no_reply_needed"),
]


@pytest.mark.parametrize(("overrides", "to_positive", "needs", "auto", "reason"), CASES)
def test_decision_table(overrides, to_positive, needs, auto, reason) -> None:
    config = PolicyConfig(**{**CONFIG.__dict__, "reply_to_positive": to_positive})
    decision = decide(tweet(**overrides), config)
    assert (decision.needs_reply, decision.auto_reply, decision.reason) == (needs, auto, reason)
    assert 0.0 < decision.confidence <= 1.0 if auto else decision.confidence == 0.0
    assert decision.reason in REASONS
    assert not (decision.auto_reply and not decision.needs_reply)


def test_confidence_is_needs_reply_times_topic_when_the_body_names_the_topic() -> None:
    assert decide(tweet(), CONFIG).confidence == pytest.approx(0.95 * 0.9)
    assert decide(tweet(topic_score=0.5), CONFIG).confidence == pytest.approx(0.95)  # general body: topic irrelevant


def test_topic_named_only_when_confident() -> None:
    assert confident_topic(tweet(), CONFIG) == "Baggage Issue"
    assert confident_topic(tweet(topic_score=0.69), CONFIG) is None
    assert confident_topic(tweet(topic=None), CONFIG) is None
    assert confident_topic(tweet(topic_score="garbage"), CONFIG) is None


def test_thresholds_come_from_settings(settings) -> None:
    strict = settings.model_copy(update={"reply_min_needs_reply": 0.99, "our_handles": ["united"]})
    assert decide(tweet(), strict).reason == "low_confidence"
    lax = strict.model_copy(update={"reply_min_needs_reply": 0.5})
    assert decide(tweet(), lax).reason == "complaint"


def test_accepts_any_mapping_and_plain_config(settings) -> None:
    """The Spark job passes PolicyConfig (no secrets), not Settings, and pandas-like rows."""
    assert decide(tweet(author_handle="UNITED"), CONFIG).reason == "own_tweet"
    assert decide(tweet(), CONFIG).as_dict() == {"needs_reply": True, "auto_reply": True, "reason": "complaint",
                                                 "confidence": pytest.approx(0.855)}
    assert decide(tweet(), PolicyConfig.from_settings(settings)) == decide(tweet(), settings)
