"""What the /api/v1 endpoints accept and answer, as pydantic models.

The request validation and the OpenAPI document (:mod:`replyflow.reply.openapi`) are generated
from the same models, so the document cannot drift from what the API does.  Errors name the
field: ``{"loc": "tweets.3.sentiment", "msg": "..."}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from replyflow.core.contracts import EnrichedTweet, Entity
from replyflow.core.labels import GENERAL_CODE, TOPIC_CLASSES, TOPIC_CODES, Sentiment, Topic
from replyflow.core.policy import REASONS
from replyflow.reply.queries import MAX_PAGE, MAX_PER_PAGE, TicketFilter

TicketStatus = Literal["open", "pending", "resolved"]
OutboxStatus = Literal[
    "awaiting_approval", "queued", "sending", "sent", "failed", "uncertain", "rejected"
]
Reason = Literal[tuple(REASONS)]  # type: ignore[valid-type]
#: What ``topic=`` filters on: a class name or its 3-letter code (``GEN``: tickets without a topic).
TopicFilter = Literal[(*TOPIC_CLASSES, *TOPIC_CODES.values(), GENERAL_CODE)]  # type: ignore[valid-type]
_FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class BodyError(ValueError):
    """The request is unusable; ``details`` are ``{"loc", "msg"}`` items."""

    def __init__(self, message: str, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


def error_details(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        out.append({"loc": f"{prefix}{loc}" if loc else prefix.rstrip(".") or "body", "msg": err["msg"]})
    return out


def _summary(details: list[dict[str, str]]) -> str:
    text = "; ".join(f"{d['loc']}: {d['msg']}" for d in details[:5])
    return text + (f" (+{len(details) - 5} more)" if len(details) > 5 else "")


# --- requests ---------------------------------------------------------------------------
class TweetBatch(BaseModel):
    """``POST /replies`` with several tweets: ``{"tweets": [...]}``."""

    model_config = ConfigDict(extra="forbid")
    tweets: list[EnrichedTweet] = Field(min_length=1)


def parse_body(payload: Any, *, max_batch: int, max_text_chars: int) -> tuple[list[EnrichedTweet], bool]:
    """Validate a ``POST /replies`` body.  Returns (tweets, is_batch) or raises :class:`BodyError`.

    A batch is all-or-nothing at validation time: one malformed item rejects the request
    (400, nothing stored) because a malformed row is a producer bug, not a transient
    state, and partial acceptance would hide it.
    """
    if not isinstance(payload, dict):
        raise BodyError("body must be a JSON object", [{"loc": "body", "msg": "Input should be an object"}])
    is_batch = "tweets" in payload
    items = payload["tweets"] if is_batch else [payload]
    if is_batch and isinstance(items, list) and len(items) > max_batch:
        raise BodyError(f"batch too large: {len(items)} tweets, at most {max_batch}",
                        [{"loc": "tweets", "msg": f"at most {max_batch} items"}])
    try:
        tweets = TweetBatch.model_validate(payload).tweets if is_batch else [EnrichedTweet.model_validate(payload)]
    except ValidationError as exc:
        details = error_details(exc)
        raise BodyError(f"invalid tweet data: {_summary(details)}", details) from None
    prefix = "tweets.{i}." if is_batch else ""
    details = [{"loc": f"{prefix.format(i=i)}text", "msg": f"text too long: {len(t.text)} characters, at most {max_text_chars}"}
               for i, t in enumerate(tweets) if len(t.text) > max_text_chars]
    if details:
        raise BodyError(f"invalid tweet data: {_summary(details)}", details)
    return tweets, is_batch


class TicketQuery(BaseModel):
    """The query parameters of ``GET /tickets``."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: TicketStatus | None = None
    topic: TopicFilter | None = Field(None, description="Topic class name or 3-letter code (BAG ... GEN)")
    sentiment: Sentiment | None = None
    date_from: date | None = Field(None, alias="from", description="Tickets created on or after this day (UTC)")
    date_to: date | None = Field(None, alias="to", description="Tickets created on or before this day (UTC)")
    q: str | None = Field(None, max_length=200, description="Substring of ticket ID, author handle or any tweet text")
    page: int = Field(1, ge=1, le=MAX_PAGE)
    per_page: int = Field(50, ge=1, le=MAX_PER_PAGE)

    @field_validator("date_from", "date_to", mode="before")
    @classmethod
    def _full_date(cls, value: Any) -> Any:
        if isinstance(value, str) and not _FULL_DATE.match(value):
            raise ValueError("expected a date YYYY-MM-DD")
        return value

    def filters(self) -> TicketFilter:
        return TicketFilter(status=self.status, topic=self.topic, sentiment=self.sentiment, date_from=self.date_from,
                            date_to=self.date_to, q=self.q)

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> TicketQuery:
        try:
            return cls.model_validate(dict(args))
        except ValidationError as exc:
            details = error_details(exc)
            for d in details:  # name the parameter as the client sent it
                d["loc"] = {"date_from": "from", "date_to": "to"}.get(d["loc"], d["loc"])
            raise BodyError(f"invalid query: {_summary(details)}", details) from None


class StatusChange(BaseModel):
    """``PATCH /tickets/{ticket_id}``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    status: TicketStatus


# --- responses --------------------------------------------------------------------------
class ErrorItem(BaseModel):
    loc: str
    msg: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[ErrorItem] | None = None


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"code", "message", "details"?}}``."""

    error: ErrorDetail


class ReplyResult(BaseModel):
    """What happened to one posted tweet."""

    tweet_id: str
    decision: Literal["reply", "ticket", "ignore"]
    needs_reply: bool
    auto_reply: bool
    reason: Reason
    ticket_id: str | None
    reply_queued: bool
    duplicate: bool


class ReplyResults(BaseModel):
    """The answer to a batch: one result per tweet, in request order."""

    results: list[ReplyResult]


class TicketOut(BaseModel):
    ticket_id: str = Field(examples=["BAG-20261124-0042"])
    status: TicketStatus
    topic: Topic | None
    topic_code: str
    sentiment: Sentiment | None
    reason: str
    conversation_id: str
    author_handle: str | None
    first_tweet_id: str
    created_at: str
    updated_at: str


class TicketListItem(TicketOut):
    tweet_count: int
    reply_status: OutboxStatus | None
    first_text: str | None


class TicketPage(BaseModel):
    items: list[TicketListItem]
    total: int
    page: int
    per_page: int


class StoredTweet(BaseModel):
    tweet_id: str
    text: str
    clean_text: str | None
    author_id: str
    author_handle: str
    created_at: str
    conversation_id: str
    in_reply_to_tweet_id: str | None
    lang: str | None
    source: str | None
    matched_rules: list[str]
    sentiment: Sentiment
    sentiment_score: float
    topic: Topic | None
    topic_score: float | None
    needs_reply_score: float | None
    entities: list[Entity]
    model_version: str | None
    processed_at: str | None
    needs_reply: bool
    auto_reply: bool
    reason: str
    received_at: str | None
    ticket_id: str | None


class OutboxOut(BaseModel):
    tweet_id: str
    ticket_id: str
    text: str
    status: OutboxStatus
    attempts: int
    last_error: str | None
    note: str | None
    posted_tweet_id: str | None
    created_at: str | None
    updated_at: str | None
    sent_at: str | None


class TicketDetail(TicketOut):
    tweets: list[StoredTweet]
    outbox: OutboxOut | None


class OutboxCounts(BaseModel):
    awaiting_approval: int = Field(description="automatic replies held for an agent's approval")
    queued: int
    sending: int
    sent: int
    failed: int
    uncertain: int = Field(description="interrupted mid-post (sender died): maybe on X, never re-sent automatically")
    rejected: int = Field(description="held replies an agent rejected (never posted)")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    outbox: OutboxCounts | None = None


class Stats(BaseModel):
    tweets: dict[str, Any]
    tickets: dict[str, Any]
    outbox: OutboxCounts
