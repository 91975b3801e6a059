"""SQLAlchemy tables of the agent workspace: users, ticket events, corrections, reply templates.

Same :class:`~replyflow.reply.tables.Base` (one schema, created together by
:meth:`replyflow.reply.db.Database.create_all`).  Invariants in the schema:

* ``users.username`` unique; ``users.session_version`` is copied into each login session and
  bumped to end every session of a user at once (disable, password reset, "log out everywhere").
* ``ticket_events.request_key`` unique (nullable): a note submitted twice is stored once.
* ``reply_templates.name`` unique; ``reply_templates.slot`` unique (nullable): the template
  an automatic reply of that kind uses (``complaint:Baggage Issue``, ``question``...); canned
  responses without a slot are only offered to agents.
* ``corrections`` keeps every correction (who, when, and what the model said at the time);
  the latest per tweet is the one exported for training.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from replyflow.core.times import utcnow
from replyflow.reply.tables import Base

ROLES = ("agent", "admin")


class User(Base):
    """A person who signs in to the workspace (``agent`` or ``admin``)."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(8), nullable=False, default="agent")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    session_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    failed_logins: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TicketEvent(Base):
    """Something that happened to a ticket: status change, assignment, note, reply, review, correction."""

    __tablename__ = "ticket_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_pk: Mapped[int] = mapped_column(ForeignKey("tickets.id"), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    actor: Mapped[str | None] = mapped_column(String(64))  # a username; None: the system
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    body: Mapped[str | None] = mapped_column(Text)  # a note's text, a rejection's reason
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # e.g. {"from": "open", "to": "pending"}
    request_key: Mapped[str | None] = mapped_column(String(64), unique=True)

    __table_args__ = (Index("ix_ticket_events_ticket", "ticket_pk", "id"),)


class Correction(Base):
    """An agent's labels for one tweet, next to the model's labels at the time."""

    __tablename__ = "corrections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tweet_pk: Mapped[int] = mapped_column(ForeignKey("tweets.id"), index=True, nullable=False)
    sentiment: Mapped[str] = mapped_column(String(16), nullable=False)
    topic: Mapped[str | None] = mapped_column(String(64))  # None: no support topic
    needs_reply: Mapped[bool] = mapped_column(Boolean, nullable=False)
    model_sentiment: Mapped[str | None] = mapped_column(String(16))
    model_topic: Mapped[str | None] = mapped_column(String(64))
    model_needs_reply: Mapped[bool | None] = mapped_column(Boolean)
    corrected_by: Mapped[str] = mapped_column(String(64), nullable=False)
    corrected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True, default=utcnow, nullable=False)


class ReplyTemplate(Base):
    """A reply body: the text of one kind of automatic reply (``slot``) or a canned response."""

    __tablename__ = "reply_templates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True, nullable=False)
    slot: Mapped[str | None] = mapped_column(String(64), unique=True)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    updated_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Meta(Base):
    """Small facts about the database itself, e.g. that the templates were seeded once."""

    __tablename__ = "replyflow_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), nullable=False)
