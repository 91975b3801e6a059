"""Validation of what clients POST: one enriched tweet, or ``{"tweets": [...]}``.

pydantic gives precise errors; :func:`error_details` turns them into
``{"loc": "tweets.3.sentiment", "msg": "..."}`` items so a caller can see which field of
which item is wrong.  Unknown extra fields are ignored (the enriched row grows over
time: ``ticket_id``, partition columns), but every field we use is checked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from replyflow.ingest.schema import contains_nul
from replyflow.reply.models import as_utc
from replyflow.settings import TOPIC_CLASSES

_ID = r"^[0-9]{1,20}$"


class Entity(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str
    label: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class EnrichedTweet(BaseModel):
    """An enriched tweet (design.md "Enriched row"); ``needs_reply`` is recomputed anyway."""

    model_config = ConfigDict(extra="ignore")

    tweet_id: str = Field(pattern=_ID)
    text: str = Field(min_length=1)
    author_id: str = Field(min_length=1, max_length=64)
    author_handle: str = Field(pattern=r"^@?[A-Za-z0-9_]{1,50}$")
    created_at: datetime
    conversation_id: str | None = Field(default=None, pattern=_ID)
    in_reply_to_tweet_id: str | None = Field(default=None, pattern=_ID)
    lang: str | None = Field(default=None, max_length=8)
    source: str | None = Field(default=None, max_length=32)
    matched_rules: list[str] = Field(default_factory=list)
    clean_text: str | None = None
    sentiment: Literal["negative", "neutral", "positive"]
    sentiment_score: float = Field(ge=0.0, le=1.0)
    topic: str | None = None
    topic_score: float | None = Field(default=None, ge=0.0, le=1.0)
    entities: list[Entity] = Field(default_factory=list)
    model_version: str | None = Field(default=None, max_length=64)
    processed_at: datetime | None = None
    needs_reply: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # PostgreSQL cannot store NUL in text/jsonb: reject (400) instead of failing with a 500.
        if contains_nul(data):
            raise ValueError("contains a NUL character (\\x00)")
        return data

    @field_validator("topic", mode="before")
    @classmethod
    def _topic(cls, value: Any) -> Any:
        if value in ("", None):
            return None
        if isinstance(value, str) and value not in TOPIC_CLASSES:
            raise ValueError(f"unknown topic {value!r}; expected one of {', '.join(TOPIC_CLASSES)} or null")
        return value

    @field_validator("matched_rules", "entities", mode="before")
    @classmethod
    def _null_list(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("author_handle")
    @classmethod
    def _handle(cls, value: str) -> str:
        return value.lstrip("@")

    @field_validator("created_at", "processed_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # Naive timestamps are read as UTC: the whole pipeline speaks UTC.
        return as_utc(value)

    def to_record(self) -> dict[str, Any]:
        data = self.model_dump()
        data["conversation_id"] = self.conversation_id or self.tweet_id
        return data


class BodyError(ValueError):
    """The request body is unusable; ``details`` are ``{"loc", "msg"}`` items."""

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


def parse_body(payload: Any, *, max_batch: int, max_text_chars: int) -> tuple[list[EnrichedTweet], bool]:
    """Validate a POST body.  Returns (tweets, is_batch) or raises :class:`BodyError`.

    A batch is all-or-nothing at validation time: one malformed item rejects the request
    (400, nothing stored) because a malformed row is a producer bug, not a transient
    state, and partial acceptance would hide it.
    """
    if isinstance(payload, dict) and "tweets" in payload:
        items = payload["tweets"]
        if not isinstance(items, list):
            raise BodyError("'tweets' must be a list", [{"loc": "tweets", "msg": "Input should be a valid list"}])
        if len(items) > max_batch:
            raise BodyError(
                f"batch too large: {len(items)} tweets, at most {max_batch}",
                [{"loc": "tweets", "msg": f"at most {max_batch} items"}],
            )
        if not items:
            raise BodyError("'tweets' is empty", [{"loc": "tweets", "msg": "at least 1 item"}])
        prefix, is_batch = "tweets.{i}.", True
    elif isinstance(payload, dict):
        items, prefix, is_batch = [payload], "", False
    else:
        raise BodyError("body must be a JSON object", [{"loc": "body", "msg": "Input should be an object"}])

    tweets: list[EnrichedTweet] = []
    details: list[dict[str, str]] = []
    for i, item in enumerate(items):
        where = prefix.format(i=i)
        if not isinstance(item, dict):
            details.append({"loc": where.rstrip(".") or "body", "msg": "Input should be an object"})
            continue
        try:
            tweet = EnrichedTweet.model_validate(item)
        except ValidationError as exc:
            details.extend(error_details(exc, where))
            continue
        if len(tweet.text) > max_text_chars:
            details.append({"loc": f"{where}text", "msg": f"text too long: {len(tweet.text)} characters, at most {max_text_chars}"})
            continue
        tweets.append(tweet)
    if details:
        summary = "; ".join(f"{d['loc']}: {d['msg']}" for d in details[:5])
        more = f" (+{len(details) - 5} more)" if len(details) > 5 else ""
        raise BodyError(f"invalid tweet data: {summary}{more}", details)
    return tweets, is_batch
