"""The reply policy: should this enriched tweet get a ticket, and a public reply?

Pure and dependency-free on purpose: the Spark job calls :func:`decide` on every
enriched row to fill ``needs_reply`` and the reply service calls it again on what it
receives, so both sides always agree (the service never trusts a ``needs_reply``
sent by a client).  "Never twice in a conversation within its ticket" needs state,
so it is enforced by the store, not here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from replyflow.core.labels import SENTIMENT_CLASSES


class PolicySettings(Protocol):
    """The few settings the policy reads (``replyflow.settings.Settings`` has them all)."""

    our_handles: Sequence[str]
    reply_min_sentiment_confidence: float
    reply_min_topic_confidence: float
    reply_to_positive: bool


@dataclass(frozen=True)
class PolicyConfig:
    """The policy's settings as a small value, the one written definition of them.

    Spark workers receive this instead of the whole Settings: that object carries secrets (API
    and X tokens) that have no business in serialized task closures.
    """

    our_handles: tuple[str, ...] = ()
    reply_min_sentiment_confidence: float = 0.5
    reply_min_topic_confidence: float = 0.5
    reply_to_positive: bool = False

    @classmethod
    def from_settings(cls, settings: PolicySettings) -> PolicyConfig:
        return cls(
            our_handles=tuple(h.lstrip("@").lower() for h in settings.our_handles),
            reply_min_sentiment_confidence=float(settings.reply_min_sentiment_confidence),
            reply_min_topic_confidence=float(settings.reply_min_topic_confidence),
            reply_to_positive=bool(settings.reply_to_positive),
        )


@dataclass(frozen=True)
class Decision:
    """What to do with one tweet.

    ``needs_reply``: a ticket is created (or the conversation's open ticket reused).
    ``auto_reply``: a public reply is queued in the outbox (only when ``needs_reply``).
    ``reason``: a stable machine-readable word (see :data:`REASONS`), also shown to agents.
    ``confidence``: how sure the policy is that the automatic public reply is right, in [0, 1]
    (0 without one); the reply service holds replies below its approval threshold for an agent.
    """

    needs_reply: bool
    auto_reply: bool
    reason: str
    confidence: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Every reason :func:`decide` can give, with its meaning (documented in docs/API.md).
REASONS: dict[str, str] = {
    "own_tweet": "written by one of our own handles: never answered",
    "retweet": "a retweet (text starts with 'RT @'): never answered",
    "complaint": "negative with confident sentiment: ticket + public reply",
    "question": "neutral about a support topic with confident topic: ticket + public reply",
    "thanks": "positive and reply_to_positive is on: ticket (resolved) + thank-you reply",
    "positive_ignored": "positive and reply_to_positive is off: nothing",
    "not_support": "neutral without a confident support topic: nothing",
    "low_confidence": "the model is unsure: ticket for a human, no public reply",
}


def _score(value: Any) -> float:
    """A model score as float; missing/NaN/garbage count as 0 (i.e. 'not confident')."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(result) else result


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def decide(tweet: Mapping[str, Any], settings: PolicySettings) -> Decision:
    """Apply the reply policy to one enriched tweet (a dict, a pandas row, a Row.asDict()).

    Reads ``author_handle``, ``text``, ``sentiment``, ``sentiment_score``, ``topic`` and
    ``topic_score``; anything missing is treated as "not confident", never as a reason
    to reply publicly.
    """
    handle = _text(tweet.get("author_handle")).lstrip("@").lower()
    if handle and handle in {h.lstrip("@").lower() for h in settings.our_handles}:
        return Decision(False, False, "own_tweet")
    if _text(tweet.get("text")).lstrip().startswith("RT @"):
        return Decision(False, False, "retweet")

    sentiment = _text(tweet.get("sentiment")).lower()
    sentiment_score = _score(tweet.get("sentiment_score"))

    if sentiment not in SENTIMENT_CLASSES:
        return Decision(True, False, "low_confidence")
    if sentiment_score < settings.reply_min_sentiment_confidence:
        # We cannot tell a complaint from a compliment: let a human look.
        return Decision(True, False, "low_confidence")
    if sentiment == "negative":
        return Decision(True, True, "complaint", sentiment_score)
    if sentiment == "neutral":
        if confident_topic(tweet, settings):
            return Decision(True, True, "question", min(sentiment_score, _score(tweet.get("topic_score"))))
        return Decision(False, False, "not_support")
    if settings.reply_to_positive:
        return Decision(True, True, "thanks", sentiment_score)
    return Decision(False, False, "positive_ignored")


def confident_topic(tweet: Mapping[str, Any], settings: PolicySettings) -> str | None:
    """The tweet's topic if the model is confident enough, else None (ticket code GEN, generic reply).

    A wrong topic in a public reply ("sorry about your bag" to a seat complaint) is worse than
    a generic one.  The same score parsing as :func:`decide`: missing or garbage is not confident.
    """
    topic = tweet.get("topic")
    if not topic or _score(tweet.get("topic_score")) < settings.reply_min_topic_confidence:
        return None
    return str(topic)
