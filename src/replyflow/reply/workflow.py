"""What agents do to tickets: assign, change the status, write internal notes, answer, correct labels.

Each action is one short transaction that also writes a :class:`~replyflow.reply.worktables.TicketEvent`
(who, when, what), so the ticket page can show its history.  Forms that create something carry a
nonce (``request_key``, unique in the database), so a double submit stores it once.

A manual reply is an outbox entry like any other (``kind = 'manual'``, queued at once: an agent
wrote it) and goes out through the same sender; it answers the conversation's latest tweet from
the customer unless told otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from replyflow.core.labels import SENTIMENT_CLASSES, TOPIC_CLASSES
from replyflow.core.times import utcnow
from replyflow.reply.db import Database
from replyflow.reply.queries import apply_status
from replyflow.reply.render import check_reply_text
from replyflow.reply.tables import TICKET_STATUSES, OutboxEntry, Ticket, Tweet
from replyflow.reply.worktables import Correction, TicketEvent, User

MAX_NOTE_CHARS = 4000


class WorkflowError(ValueError):
    """An action that does not apply (unknown ticket or user, bad value): the message is for the agent."""


@dataclass(frozen=True)
class Created:
    """Outcome of a create action: the new row's id, and False when the nonce had been used (a double submit)."""

    id: int
    created: bool


def _ticket(session: Session, ticket_id: str) -> Ticket:
    ticket = session.scalars(select(Ticket).where(Ticket.ticket_id == ticket_id).with_for_update()).first()
    if ticket is None:
        raise WorkflowError(f"no ticket {ticket_id}")
    return ticket


class TicketWork:
    """Agents' writes to tickets, tweets and the outbox."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def assign(self, ticket_id: str, username: str | None, actor: str) -> None:
        """Assign to an active user (None: unassign)."""
        with self.db.write() as session:
            ticket = _ticket(session, ticket_id)
            user_id = None
            if username:
                user = session.scalars(select(User).where(User.username == username, User.active.is_(True))).first()
                if user is None:
                    raise WorkflowError(f"no active user {username}")
                user_id = user.id
            if ticket.assignee_id == user_id:
                return
            before = session.scalar(select(User.username).where(User.id == ticket.assignee_id)) if ticket.assignee_id else None
            ticket.assignee_id, ticket.updated_at = user_id, utcnow()
            session.add(TicketEvent(ticket_pk=ticket.id, kind="assign", actor=actor, created_at=utcnow(),
                                    data={"from": before, "to": username or None}))

    def set_status(self, ticket_id: str, status: str, actor: str) -> None:
        if status not in TICKET_STATUSES:
            raise WorkflowError(f"unknown status {status!r}")
        try:
            with self.db.write() as session:
                apply_status(session, _ticket(session, ticket_id), status, actor)
                session.flush()
        except IntegrityError:
            raise WorkflowError("another ticket of this conversation is open: resolve that one first") from None

    def add_note(self, ticket_id: str, body: str, actor: str, request_key: str) -> Created:
        """An internal note (never posted)."""
        body = body.replace("\r\n", "\n").strip()
        if not body or len(body) > MAX_NOTE_CHARS or "\x00" in body:
            raise WorkflowError(f"a note has 1 to {MAX_NOTE_CHARS} characters")
        return self._create(request_key, TicketEvent, lambda session: TicketEvent(
            ticket_pk=_ticket(session, ticket_id).id, kind="note", actor=actor, created_at=utcnow(), body=body,
            request_key=request_key))

    def reply(self, ticket_id: str, text: str, actor: str, request_key: str, template: str | None = None) -> Created:
        """A manual reply: checked (280 characters, names the ticket), queued for the sender at once."""

        def build(session: Session) -> OutboxEntry:
            ticket = _ticket(session, ticket_id)
            checked = check_reply_text(text, ticket.ticket_id)  # ReplyTextError when not postable
            answers = session.scalars(
                select(Tweet.tweet_id).where(Tweet.conversation_id == ticket.conversation_id,
                                             Tweet.author_handle == ticket.author_handle)
                .order_by(Tweet.created_at.desc(), Tweet.id.desc()).limit(1)).first() or ticket.first_tweet_id
            now = utcnow()
            entry = OutboxEntry(tweet_id=answers, ticket=ticket, ticket_id=ticket.ticket_id, text=checked, status="queued",
                                kind="manual", created_by=actor, request_key=request_key, created_at=now, updated_at=now)
            session.add(entry)
            session.flush()
            session.add(TicketEvent(ticket_pk=ticket.id, kind="reply", actor=actor, created_at=now,
                                    data={"reply": entry.id, **({"template": template} if template else {})}))
            ticket.updated_at = now
            return entry

        return self._create(request_key, OutboxEntry, build)

    def _create(self, request_key: str, table: Any, build: Any) -> Created:
        """Insert what ``build(session)`` makes unless a row with this nonce exists (a double submit)."""
        if not request_key or len(request_key) > 64:
            raise WorkflowError("the form has expired: reload the page and try again")
        for _ in range(2):
            with self.db.read() as session:
                existing = session.scalar(select(table.id).where(table.request_key == request_key))
            if existing is not None:
                return Created(int(existing), False)
            try:
                with self.db.write() as session:
                    row = build(session)
                    session.add(row)
                    session.flush()
                    return Created(int(row.id), True)
            except IntegrityError:
                continue  # the same form raced in twice: the other one won; read its row
        raise WorkflowError("the form was submitted twice at once: reload the page")

    def correct(self, tweet_id: str, sentiment: str, topic: str | None, needs_reply: bool, actor: str) -> None:
        """Store an agent's labels for a tweet next to the model's (the training data of tomorrow)."""
        if sentiment not in SENTIMENT_CLASSES:
            raise WorkflowError(f"unknown sentiment {sentiment!r}")
        if topic is not None and topic not in TOPIC_CLASSES:
            raise WorkflowError(f"unknown topic {topic!r}")
        with self.db.write() as session:
            tweet = session.scalars(select(Tweet).where(Tweet.tweet_id == tweet_id)).first()
            if tweet is None:
                raise WorkflowError(f"no tweet {tweet_id}")
            now = utcnow()
            session.add(Correction(tweet_pk=tweet.id, sentiment=sentiment, topic=topic, needs_reply=needs_reply,
                                   model_sentiment=tweet.sentiment, model_topic=tweet.topic,
                                   model_needs_reply=tweet.needs_reply, corrected_by=actor, corrected_at=now))
            if tweet.ticket_pk is not None:
                session.add(TicketEvent(ticket_pk=tweet.ticket_pk, kind="correction", actor=actor, created_at=now,
                                        data={"tweet": tweet_id, "sentiment": sentiment, "topic": topic,
                                              "needs_reply": needs_reply}))
