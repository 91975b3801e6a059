"""The messages that cross stage boundaries, as pydantic models, with their ID patterns.

* :class:`RawTweet`: one message on ``tweets.raw`` (key = ``tweet_id``). Every source (X filtered
  stream, mentions polling, dataset replay) produces it; the Spark job validates the same JSON
  again with the same rules (:func:`parse_raw`), so a message is valid everywhere or rejected
  everywhere with the same reason.  We reject rather than guess.
* :class:`DeadLetter`: what goes to ``tweets.dlq``: the original payload and why it was rejected.
* :class:`EnrichedTweet`: the enriched row the stream posts to the reply service (design.md,
  "Enriched row"); the API validates it and its OpenAPI schema is generated from it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from replyflow.core.labels import Sentiment, Topic
from replyflow.core.times import as_utc

#: X tweet, conversation and user ids: decimal digits.
TWEET_ID_PATTERN = r"^[0-9]{1,20}$"
HANDLE_PATTERN = r"^[A-Za-z0-9_]{1,50}$"
AUTHOR_ID_PATTERN = r"^[0-9A-Za-z_]{1,32}$"
MAX_TEXT_CHARS = 1000  # X allows 280 (25,000 for premium long posts we do not handle).
#: Longest payload kept in a dead letter. JSON escaping may double it: still far below Kafka's
#: 1 MB message limit, so one huge bad input can never block the DLQ write (a poison message).
MAX_DLQ_PAYLOAD_CHARS = 64 * 1024
NUL = "\x00"
_ESCAPED_NUL = "\\u0000"

Source = Literal["x-stream", "x-mentions", "replay"]


def contains_nul(value: Any, depth: int = 0) -> bool:
    """True if a NUL character occurs in any string inside ``value`` (dicts, lists).

    Why: PostgreSQL text and jsonb cannot store NUL; such a tweet made the reply service
    answer 500, which the stream retries forever.  No real tweet contains one.
    """
    if isinstance(value, str):
        return NUL in value
    if depth > 20:
        return False
    if isinstance(value, dict):
        return any(contains_nul(k, depth + 1) or contains_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(contains_nul(v, depth + 1) for v in value)
    return False


def _reject_nul(data: Any) -> Any:
    """Model validator of both tweet models: PostgreSQL cannot store NUL in text/jsonb, so reject (400) early."""
    if contains_nul(data):
        raise ValueError("contains a NUL character (\\x00)")
    return data


class RawTweet(BaseModel):
    """One tweet as published to ``tweets.raw`` (key = ``tweet_id``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, strict=False)

    tweet_id: str = Field(pattern=TWEET_ID_PATTERN)
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    author_id: str = Field(pattern=AUTHOR_ID_PATTERN)
    author_handle: str = Field(pattern=HANDLE_PATTERN)
    created_at: datetime
    conversation_id: str = Field(pattern=TWEET_ID_PATTERN)
    in_reply_to_tweet_id: str | None = Field(default=None, pattern=TWEET_ID_PATTERN)
    lang: str = Field(default="en", max_length=8)
    source: Source
    matched_rules: list[str] = Field(default_factory=list)
    # Marked, not dropped: the reply policy decides (never answer retweets); the record stays complete.
    is_retweet: bool = False

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        return _reject_nul(data)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is blank")
        return value

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("created_at must carry a timezone (ISO-8601 UTC)")
        return value.astimezone(timezone.utc)

    def to_json(self) -> bytes:
        """Serialise as the wire format: compact JSON, ``created_at`` as ISO-8601 with ``Z``."""
        data = self.model_dump(mode="json")
        data["created_at"] = self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class DeadLetter(BaseModel):
    """What goes to ``tweets.dlq``: the original bytes (as text, lossy if not UTF-8) and why."""

    reason: str
    stage: str  # ingest-replay, ingest-x, stream-parse, ...
    payload: str
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    failed_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    @field_validator("payload", mode="before")
    @classmethod
    def _payload_text(cls, value: Any) -> Any:
        # Writers hand in what they got: Kafka bytes (maybe not UTF-8), text, or nothing at all.
        if value is None:
            return ""
        if isinstance(value, (bytes, bytearray)):
            return bytes(value).decode("utf-8", errors="replace")
        return value

    @model_validator(mode="after")
    def _cap_payload(self) -> "DeadLetter":
        # Every writer of dead letters (ingest, the Spark job) goes through this model, so the
        # cap lives here: keep the head of the payload and say in the reason that it was cut.
        if len(self.payload) > MAX_DLQ_PAYLOAD_CHARS:
            self.reason = (
                f"{self.reason} (payload truncated from {len(self.payload)} to {MAX_DLQ_PAYLOAD_CHARS} characters)"
            )
            self.payload = self.payload[:MAX_DLQ_PAYLOAD_CHARS]
        return self

    def to_json(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: Any) -> Any:
    """An RFC 3339 date-time string (what JSON clients send; offset required) or a datetime.

    Why not pydantic's lax parsing: it also takes ``0``, ``"1700000000"`` and ``"2020-01-01"`` for a
    timestamp, values the API's OpenAPI document (``format: date-time``) says are invalid."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("expected an RFC 3339 date-time with a UTC offset, e.g. 2026-11-24T09:30:00Z")
    return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))


#: A timestamp field of a JSON payload.
JsonDateTime = Annotated[datetime, BeforeValidator(_rfc3339)]


def _integral(value: Any) -> Any:
    """JSON Schema counts 7.0 as an integer; strict pydantic would not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: An integer field of a JSON payload (strict: no strings, no booleans; 7.0 is 7).
JsonInt = Annotated[int, BeforeValidator(_integral)]


class Entity(BaseModel):
    """A named entity: character offsets into the original tweet text."""

    model_config = ConfigDict(extra="ignore", strict=True)
    text: str
    label: str
    start: JsonInt = Field(ge=0)
    end: JsonInt = Field(ge=0)


class EnrichedTweet(BaseModel):
    """An enriched tweet as the stream posts it to the reply service; ``needs_reply`` is recomputed there.

    Unknown extra fields are ignored (the enriched row grows over time: ``ticket_id``, partition
    columns), but every field the service uses is checked, strictly as JSON types: a string is
    not a number, a number is not a timestamp.
    """

    model_config = ConfigDict(extra="ignore", strict=True)

    tweet_id: str = Field(pattern=TWEET_ID_PATTERN)
    text: str = Field(min_length=1)
    author_id: str = Field(min_length=1, max_length=64)
    author_handle: str = Field(pattern=r"^@?[A-Za-z0-9_]{1,50}$")
    created_at: JsonDateTime
    conversation_id: str | None = Field(default=None, pattern=TWEET_ID_PATTERN, description="defaults to tweet_id")
    in_reply_to_tweet_id: str | None = Field(default=None, pattern=TWEET_ID_PATTERN)
    lang: str | None = Field(default=None, max_length=8)
    source: str | None = Field(default=None, max_length=32)
    matched_rules: list[str] | None = Field(default_factory=list, description="null is read as []")
    clean_text: str | None = None
    sentiment: Sentiment
    sentiment_score: float = Field(ge=0.0, le=1.0)
    topic: Topic | None = None
    topic_score: float | None = Field(default=None, ge=0.0, le=1.0)
    needs_reply_score: float | None = Field(default=None, ge=0.0, le=1.0,
                                            description="the model's probability that an agent would answer")
    is_retweet: bool | None = None
    entities: list[Entity] | None = Field(default_factory=list, description="null is read as []")
    model_version: str | None = Field(default=None, max_length=64)
    processed_at: JsonDateTime | None = None
    needs_reply: bool | None = Field(default=None, description="ignored: the reply service applies the policy itself")

    @model_validator(mode="after")
    def _no_nul(self) -> "EnrichedTweet":
        # After validation: only the fields we keep count (ignored extra fields never reach the database).
        # pydantic-core's JSON writes a NUL as \u0000, so one search of that string clears almost every
        # tweet (~4 us against ~13 us for walking the dumped dict); only a hit, which may be an escaped
        # backslash followed by "u0000" in the text, is checked exactly.
        if _ESCAPED_NUL in self.model_dump_json():
            _reject_nul(self.model_dump())
        return self

    @field_validator("topic", mode="before")
    @classmethod
    def _empty_topic(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("matched_rules", "entities", mode="after")
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
        return as_utc(value)  # the whole pipeline speaks UTC

    def to_record(self) -> dict[str, Any]:
        data = self.model_dump()
        data["conversation_id"] = self.conversation_id or self.tweet_id
        return data


def describe_error(exc: ValidationError) -> str:
    """A short, human-readable reason from a pydantic error, e.g. ``text: field required``."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def load_json_object(payload: bytes | str) -> dict[str, Any]:
    """Decode one message into a JSON object; every way it can fail is a ``ValueError`` with a reason."""
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"invalid UTF-8 at byte {exc.start}") from None
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        # e.g. 100,000 nested brackets: Python's decoder gives up with RecursionError, which
        # callers (replay, the stream's parse step, the X stream) would not catch: a poison message.
        raise ValueError("not JSON we accept: nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError(f"not a JSON object but {type(data).__name__}")
    return data


def parse_raw(payload: bytes | str | dict[str, Any]) -> RawTweet:
    """Parse and validate one raw message; raises ``ValueError`` with a clear reason.

    Used by the producer before publishing and by the stream job after consuming.
    """
    data = payload if isinstance(payload, dict) else load_json_object(payload)
    try:
        return RawTweet.model_validate(data)
    except ValidationError as exc:
        raise ValueError(describe_error(exc)) from None
