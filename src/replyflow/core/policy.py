"""The reply policy: should this enriched tweet get a ticket, and a public reply with which body?

Judged by what the customer receives (docs/MODEL_CARD.md, "Reply policy"): a public reply goes
only to a tweet written to us (:func:`replyflow.core.addressing.is_addressed`) that the model is
confident needs one; it names a topic only when the topic is confident, else it uses the general
body; everything else that may need an answer becomes a ticket for a human, with no public reply.
The thresholds are settings, chosen on the validation split (``replyflow evaluate`` reports what
they give on test and on the out-of-time 2021 set).

Pure and dependency-free on purpose: the Spark job calls :func:`decide` on every enriched row to
fill ``needs_reply`` and the reply service calls it again on what it receives, so both sides always
agree (the service never trusts a ``needs_reply`` sent by a client).  "Never twice in a
conversation within its ticket" needs state, so it is enforced by the store, not here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from replyflow.core.addressing import handle_set, is_addressed
from replyflow.core.labels import SENTIMENT_CLASSES


class PolicySettings(Protocol):
    """The few settings the policy reads (``replyflow.settings.Settings`` has them all)."""

    our_handles: Sequence[str]
    reply_min_needs_reply: float
    reply_ticket_min_needs_reply: float
    reply_min_topic_confidence: float
    reply_to_positive: bool


@dataclass(frozen=True)
class PolicyConfig:
    """The policy's settings as a small value, the one written definition of them.

    Spark workers receive this instead of the whole Settings: that object carries secrets (API
    and X tokens) that have no business in serialized task closures.  Defaults: the settings'.
    """

    our_handles: tuple[str, ...] = ()
    reply_min_needs_reply: float = 0.81
    reply_ticket_min_needs_reply: float = 0.3
    reply_min_topic_confidence: float = 0.92
    reply_to_positive: bool = False

    @classmethod
    def from_settings(cls, settings: PolicySettings) -> PolicyConfig:
        return cls(
            our_handles=tuple(h.lstrip("@").lower() for h in settings.our_handles),
            reply_min_needs_reply=float(settings.reply_min_needs_reply),
            reply_ticket_min_needs_reply=float(settings.reply_ticket_min_needs_reply),
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
    "retweet": "a retweet: never answered",
    "complaint": "negative, written to us, confidently needs a reply: ticket + public reply",
    "question": "not negative, written to us, confidently needs a reply: ticket + public reply",
    "thanks": "positive, written to us, reply_to_positive is on: ticket (resolved) + thank-you reply",
    "not_addressed": "may need an answer but talks about us to others: ticket for a human, no public reply",
    "low_confidence": "may need an answer, the model is not sure: ticket for a human, no public reply",
    "no_reply_needed": "needs no answer (praise, chatter, news, jokes): nothing",
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


def needs_reply_probability(tweet: Mapping[str, Any]) -> float:
    """The model's probability that an agent would answer; rows from before the needs-reply model
    (no ``needs_reply_score``) fall back to "a confident complaint needs one"."""
    if tweet.get("needs_reply_score") is not None:
        return _score(tweet.get("needs_reply_score"))
    return _score(tweet.get("sentiment_score")) if _text(tweet.get("sentiment")).lower() == "negative" else 0.0


def decide(tweet: Mapping[str, Any], settings: PolicySettings) -> Decision:
    """Apply the reply policy to one enriched tweet (a dict, a pandas row, a Row.asDict()).

    Reads ``author_handle``, ``text``, ``is_retweet``, ``sentiment``, ``sentiment_score``, ``topic``,
    ``topic_score`` and ``needs_reply_score``; anything missing is treated as "not confident",
    never as a reason to reply publicly.
    """
    ours = handle_set(settings.our_handles)
    handle = _text(tweet.get("author_handle")).lstrip("@").lower()
    if handle and handle in ours:
        return Decision(False, False, "own_tweet")
    text = _text(tweet.get("text"))
    if tweet.get("is_retweet") is True or text.lstrip().startswith("RT @"):
        return Decision(False, False, "retweet")

    sentiment = _text(tweet.get("sentiment")).lower()
    need = needs_reply_probability(tweet)
    addressed = is_addressed(text, ours)
    if need < settings.reply_ticket_min_needs_reply:
        if settings.reply_to_positive and addressed and sentiment == "positive":
            return Decision(True, True, "thanks", _score(tweet.get("sentiment_score")) * (1.0 - need))
        return Decision(False, False, "no_reply_needed")
    if not addressed:
        return Decision(True, False, "not_addressed")
    if need < settings.reply_min_needs_reply or sentiment not in SENTIMENT_CLASSES:
        return Decision(True, False, "low_confidence")
    topic_confidence = _score(tweet.get("topic_score")) if confident_topic(tweet, settings) else 1.0
    reason = "complaint" if sentiment == "negative" else "question"
    return Decision(True, True, reason, need * topic_confidence)


def confident_topic(tweet: Mapping[str, Any], settings: PolicySettings) -> str | None:
    """The tweet's topic if the model is confident enough, else None (ticket code GEN, general body).

    A wrong topic in a public reply ("sorry about your bag" to a delay) is worse than a general
    one.  The same score parsing as :func:`decide`: missing or garbage is not confident.
    """
    topic = tweet.get("topic")
    if not topic or _score(tweet.get("topic_score")) < settings.reply_min_topic_confidence:
        return None
    return str(topic)
