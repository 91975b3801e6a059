"""SQLAlchemy 2 tables of the reply service: tickets, tweets, outbox, ticket counters.

Invariants live in the schema, not only in code, so that racing requests, two sender
processes or a second API instance cannot break them:

* ``tweets.tweet_id`` unique -> a tweet is ingested once (idempotency key).
* ``tickets.ticket_id`` unique, ``(code, day)`` counter rows -> unique readable IDs.
* ``tickets.open_conversation_id`` unique (NULL once resolved) -> one open ticket per
  conversation.  NULLs do not collide in SQLite or PostgreSQL, so resolved tickets are
  free to pile up.
* ``outbox``: for automatic replies (``kind = 'auto'``) ``tweet_id`` and ``ticket_pk`` are unique
  (partial unique indexes, SQLite and PostgreSQL alike) -> at most one automatic public reply per
  ticket, hence never twice in a conversation within its ticket.  Agents' manual replies
  (``kind = 'manual'``) may be several per ticket; each carries the form's nonce in
  ``request_key`` (unique), so a double submit stores one reply.

The agent workspace's tables (users, ticket events, corrections, reply templates) are in
:mod:`replyflow.reply.worktables`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy import text as sql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from replyflow.core.times import iso, utcnow

TICKET_STATUSES = ("open", "pending", "resolved")
#: ``awaiting_approval`` (held for an agent) -> ``queued`` -> ``sending`` -> ``sent`` | ``failed``;
#: ``awaiting_approval`` -> ``rejected``; ``sending`` -> ``uncertain`` when its sender died
#: mid-post (lease expired): maybe on X, never re-sent automatically.  The sender only ever
#: claims ``queued``.
OUTBOX_STATUSES = ("awaiting_approval", "queued", "sending", "sent", "failed", "uncertain", "rejected")
OUTBOX_KINDS = ("auto", "manual")


class Base(DeclarativeBase):
    pass


class TicketCounter(Base):
    """Last sequence number handed out per (topic code, day)."""

    __tablename__ = "ticket_counters"
    code: Mapped[str] = mapped_column(String(3), primary_key=True)
    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    conversation_id: Mapped[str] = mapped_column(String(32), index=True, nullable=False)
    open_conversation_id: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True, nullable=False, default="open")
    topic: Mapped[str | None] = mapped_column(String(64), index=True)
    topic_code: Mapped[str] = mapped_column(String(3), nullable=False)
    sentiment: Mapped[str | None] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(String(32), nullable=False)
    author_handle: Mapped[str | None] = mapped_column(String(64))
    first_tweet_id: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The agent workspace: who works on it, and the two SLA clocks' end points.
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    first_response_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # first reply sent
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    tweets: Mapped[list[Tweet]] = relationship(back_populates="ticket", order_by="Tweet.created_at")
    replies: Mapped[list[OutboxEntry]] = relationship(back_populates="ticket", order_by="OutboxEntry.id")

    __table_args__ = (
        # The queues of the workspace: open/pending tickets by age (the first-response time makes the
        # "SLA breached" count an index-only scan), per agent, per reason.
        Index("ix_tickets_status_created", "status", "created_at", "first_response_at"),
        Index("ix_tickets_assignee_status", "assignee_id", "status", "created_at"),
        Index("ix_tickets_reason_status", "reason", "status", "created_at"),
    )

    @property
    def auto_reply(self) -> OutboxEntry | None:
        """The automatic reply (at most one per ticket), what the API shows as ``outbox``."""
        return next((r for r in self.replies if r.kind == "auto"), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ticket_id": self.ticket_id,
            "status": self.status,
            "topic": self.topic,
            "topic_code": self.topic_code,
            "sentiment": self.sentiment,
            "reason": self.reason,
            "conversation_id": self.conversation_id,
            "author_handle": self.author_handle,
            "first_tweet_id": self.first_tweet_id,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


class Tweet(Base):
    """Every enriched tweet the service received, whether it got a ticket or not."""

    __tablename__ = "tweets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tweet_id: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    clean_text: Mapped[str | None] = mapped_column(Text)
    author_id: Mapped[str] = mapped_column(String(64), nullable=False)
    author_handle: Mapped[str] = mapped_column(String(64), index=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, nullable=False)
    conversation_id: Mapped[str] = mapped_column(String(32), index=True, nullable=False)
    in_reply_to_tweet_id: Mapped[str | None] = mapped_column(String(32))
    lang: Mapped[str | None] = mapped_column(String(8))
    source: Mapped[str | None] = mapped_column(String(32))
    matched_rules: Mapped[list[str]] = mapped_column(JSON, default=list)
    sentiment: Mapped[str] = mapped_column(String(16), index=True, nullable=False)
    sentiment_score: Mapped[float] = mapped_column(Float, nullable=False)
    topic: Mapped[str | None] = mapped_column(String(64), index=True)
    topic_score: Mapped[float | None] = mapped_column(Float)
    needs_reply_score: Mapped[float | None] = mapped_column(Float)
    entities: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    model_version: Mapped[str | None] = mapped_column(String(64))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    needs_reply: Mapped[bool] = mapped_column(Boolean, nullable=False)
    auto_reply: Mapped[bool] = mapped_column(Boolean, nullable=False)
    reason: Mapped[str] = mapped_column(String(32), index=True, nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, default=utcnow)
    ticket_pk: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)

    ticket: Mapped[Ticket | None] = relationship(back_populates="tweets")

    def to_dict(self) -> dict[str, Any]:
        return {
            "tweet_id": self.tweet_id,
            "text": self.text,
            "clean_text": self.clean_text,
            "author_id": self.author_id,
            "author_handle": self.author_handle,
            "created_at": iso(self.created_at),
            "conversation_id": self.conversation_id,
            "in_reply_to_tweet_id": self.in_reply_to_tweet_id,
            "lang": self.lang,
            "source": self.source,
            "matched_rules": self.matched_rules or [],
            "sentiment": self.sentiment,
            "sentiment_score": self.sentiment_score,
            "topic": self.topic,
            "topic_score": self.topic_score,
            "needs_reply_score": self.needs_reply_score,
            "entities": self.entities or [],
            "model_version": self.model_version,
            "processed_at": iso(self.processed_at),
            "needs_reply": self.needs_reply,
            "auto_reply": self.auto_reply,
            "reason": self.reason,
            "received_at": iso(self.received_at),
            "ticket_id": self.ticket.ticket_id if self.ticket else None,
        }


class OutboxEntry(Base):
    """One public reply to post (``tweet_id``: the tweet it answers).  ``status``: see :data:`OUTBOX_STATUSES`."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tweet_id: Mapped[str] = mapped_column(String(32), nullable=False)
    ticket_pk: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True, nullable=False)
    ticket_id: Mapped[str] = mapped_column(String(32), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(24), index=True, nullable=False, default="queued")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(String(64))
    posted_tweet_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The agent workspace: automatic or written by an agent, and the review of held replies.
    kind: Mapped[str] = mapped_column(String(8), nullable=False, default="auto", server_default="auto")
    confidence: Mapped[float | None] = mapped_column(Float)  # the policy's, for automatic replies
    created_by: Mapped[str | None] = mapped_column(String(64))  # the agent of a manual reply
    request_key: Mapped[str | None] = mapped_column(String(64), unique=True)  # form nonce of a manual reply
    reviewed_by: Mapped[str | None] = mapped_column(String(64))  # who approved, edited or rejected it
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    review_note: Mapped[str | None] = mapped_column(Text)  # why it was rejected

    ticket: Mapped[Ticket] = relationship(back_populates="replies")

    __table_args__ = (
        Index("uq_outbox_auto_ticket", "ticket_pk", unique=True,
              sqlite_where=sql("kind = 'auto'"), postgresql_where=sql("kind = 'auto'")),
        Index("uq_outbox_auto_tweet", "tweet_id", unique=True,
              sqlite_where=sql("kind = 'auto'"), postgresql_where=sql("kind = 'auto'")),
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "tweet_id": self.tweet_id,
            "ticket_id": self.ticket_id,
            "text": self.text,
            "status": self.status,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "note": self.note,
            "posted_tweet_id": self.posted_tweet_id,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "sent_at": iso(self.sent_at),
        }
