"""The ingest write path of the reply service: enriched tweet -> tweet row, ticket, outbox entry.

Exactly once per ``tweet_id``, whatever the races: the stream retries batches (at-least-once),
and several API threads or instances may receive the same tweet or the same conversation at
once.  The database's unique constraints are the referee (:mod:`replyflow.reply.tables`): an
``IntegrityError`` means "somebody else won the race", so we roll back and re-read their rows.

An automatic reply is held (``awaiting_approval``, not ``queued``) when :class:`ApprovalRule`
says an agent must approve it first; the sender never sees it until then.  Its text comes from
the stored reply templates (admins edit them), read once per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from replyflow.core.labels import topic_code
from replyflow.core.policy import Decision, PolicySettings, confident_topic
from replyflow.core.times import as_utc, utcnow
from replyflow.reply.db import Database
from replyflow.reply.render import render_reply
from replyflow.reply.tables import OutboxEntry, Ticket, TicketCounter, Tweet
from replyflow.reply.tickets import format_ticket_id
from replyflow.reply.worktables import ReplyTemplate

log = logging.getLogger(__name__)

_MAX_RACE_RETRIES = 8


@dataclass(frozen=True)
class IngestResult:
    """Outcome for one tweet, as returned by the API (see docs/API.md)."""

    tweet_id: str
    decision: Decision
    ticket_id: str | None
    reply_queued: bool
    duplicate: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "tweet_id": self.tweet_id,
            "decision": "reply" if self.decision.auto_reply else ("ticket" if self.decision.needs_reply else "ignore"),
            "needs_reply": self.decision.needs_reply,
            "auto_reply": self.decision.auto_reply,
            "reason": self.decision.reason,
            "ticket_id": self.ticket_id,
            "reply_queued": self.reply_queued,
            "duplicate": self.duplicate,
        }


@dataclass(frozen=True)
class ApprovalRule:
    """When an automatic reply waits for an agent: always (``review_all``) or below a confidence."""

    review_all: bool = False
    below: float = 0.0

    def holds(self, decision: Decision) -> bool:
        return self.review_all or decision.confidence < self.below


class TicketIntake:
    """Stores enriched tweets and acts on their reply decisions (tickets, outbox entries)."""

    def __init__(self, db: Database, policy: PolicySettings, signature: str = "",
                 approval: ApprovalRule = ApprovalRule()) -> None:
        self.db = db
        self.policy = policy
        self.signature = signature
        self.approval = approval

    def ingest(self, tweet: Mapping[str, Any], decision: Decision) -> IngestResult:
        """Store one enriched tweet and act on the decision, exactly once per ``tweet_id``.

        ``tweet`` is the validated dict (``created_at`` a datetime).  Racing callers with
        the same tweet, or with tweets of the same conversation, end with one tweet row,
        one open ticket and at most one outbox entry: the loser of a race hits a unique
        constraint, rolls back and re-reads the winner's rows.
        """
        last_exc: Exception | None = None
        for attempt in range(_MAX_RACE_RETRIES):
            try:
                with self.db.write() as session:
                    return self._ingest_batch(session, [(tweet, decision)])[0]
            except IntegrityError as exc:
                last_exc = exc
                log.debug("ingest race on tweet %s (attempt %d), re-reading", tweet["tweet_id"], attempt + 1)
            except OperationalError as exc:  # SQLite 'database is locked' past the busy timeout
                if "locked" not in str(exc).lower():
                    raise
                last_exc = exc
        assert last_exc is not None
        raise last_exc

    def ingest_many(self, items: Sequence[tuple[Mapping[str, Any], Decision]]) -> list[IngestResult]:
        """Ingest a batch in one transaction (fast path); on any race, item by item.

        Results are identical to calling :meth:`ingest` per item in order: duplicates and
        conversations inside the batch see the earlier items.  The fast path reads what
        it needs with a handful of ``IN`` queries and writes with bulk inserts; if another
        writer interferes (unique violation), the batch is rolled back and replayed tweet
        by tweet through the race-safe :meth:`ingest`.
        """
        if len(items) > 1:
            try:
                with self.db.write() as session:
                    return self._ingest_batch(session, items)
            except IntegrityError:
                log.debug("race inside a batch of %d, falling back to one transaction per tweet", len(items))
            except OperationalError as exc:
                if "locked" not in str(exc).lower():
                    raise
        return [self.ingest(tweet, decision) for tweet, decision in items]

    def _ingest_batch(self, session: Session, items: Sequence[tuple[Mapping[str, Any], Decision]]) -> list[IngestResult]:
        """Ingest ``items`` in the caller's transaction: the one code path of :meth:`ingest` (a single
        item) and :meth:`ingest_many`.  A race with another writer surfaces as IntegrityError at an
        insert, and the caller retries.

        Rows are written with Core ``executemany`` inserts, not ORM objects: the ORM inserts rows
        with generated keys one statement at a time, which made the unit of work most of the reply
        service's intake cost (measured: three statements per tweet)."""
        now = utcnow()
        ids = list({str(t["tweet_id"]) for t, _ in items})
        conversations = list({str(t.get("conversation_id") or t["tweet_id"]) for t, _ in items})
        seen: dict[str, IngestResult] = {}
        for tweet_id, needs_reply, auto_reply, reason, ticket_id in session.execute(
            select(Tweet.tweet_id, Tweet.needs_reply, Tweet.auto_reply, Tweet.reason, Ticket.ticket_id)
            .outerjoin(Ticket, Tweet.ticket_pk == Ticket.id).where(Tweet.tweet_id.in_(ids))
        ).tuples():
            seen[tweet_id] = IngestResult(tweet_id, Decision(needs_reply, auto_reply, reason), ticket_id, False, True)
        open_tickets: dict[str, _TicketRef] = {
            conversation_id: _TicketRef(ticket_id, topic, pk)
            for pk, ticket_id, topic, conversation_id in session.execute(
                select(Ticket.id, Ticket.ticket_id, Ticket.topic, Ticket.open_conversation_id)
                .where(Ticket.open_conversation_id.in_(conversations))
            ).tuples()
        }
        existing_pks = [t.pk for t in open_tickets.values()]
        replied: set[str] = set(
            session.scalars(
                select(Ticket.ticket_id).join(OutboxEntry, OutboxEntry.ticket_pk == Ticket.id).where(Ticket.id.in_(existing_pks))
            ).all()
        ) if existing_pks else set()
        counters: dict[tuple[str, str], list[int]] = {}  # (code, day) -> [value, value at start or -1 if new]
        bodies: dict[str, str] | None = None  # the stored reply templates, read when the first reply is built

        def next_sequence(code: str, day: date) -> int:
            key = (code, day.strftime("%Y%m%d"))
            if key not in counters:
                current = session.scalar(
                    select(TicketCounter.value).where(TicketCounter.code == key[0], TicketCounter.day == key[1])
                    .with_for_update()
                )
                counters[key] = [int(current or 0), -1 if current is None else int(current)]
            counters[key][0] += 1
            return counters[key][0]

        new_tickets: list[dict[str, Any]] = []
        new_tweets: list[tuple[dict[str, Any], _TicketRef | None]] = []
        new_replies: list[tuple[dict[str, Any], _TicketRef]] = []
        touched: set[int] = set()  # existing open tickets that received a tweet
        results: list[IngestResult] = []
        for tweet, decision in items:
            tweet_id = str(tweet["tweet_id"])
            if tweet_id in seen:
                prior = seen[tweet_id]
                results.append(IngestResult(tweet_id, prior.decision, prior.ticket_id, False, True))
                continue
            conversation_id = str(tweet.get("conversation_id") or tweet_id)
            ticket = open_tickets.get(conversation_id)
            if ticket is None and decision.needs_reply:
                row = self._ticket_row(tweet, decision, conversation_id, now, next_sequence)
                new_tickets.append(row)
                ticket = _TicketRef(row["ticket_id"], row["topic"])
                if row["open_conversation_id"]:
                    open_tickets[conversation_id] = ticket
            elif ticket is not None and ticket.pk is not None:
                touched.add(ticket.pk)
            new_tweets.append((self._tweet_row(tweet, decision, conversation_id, now), ticket))
            queued = False
            if ticket is not None and decision.needs_reply and decision.auto_reply and ticket.ticket_id not in replied:
                if bodies is None:
                    bodies = dict(session.execute(
                        select(ReplyTemplate.slot, ReplyTemplate.body).where(ReplyTemplate.slot.is_not(None))).tuples().all())
                entry = self._outbox_row(tweet, decision, ticket, now, bodies)
                new_replies.append((entry, ticket))
                replied.add(ticket.ticket_id)
                queued = entry["status"] == "queued"
            result = IngestResult(tweet_id, decision, ticket.ticket_id if ticket else None, queued, False)
            seen[tweet_id] = result
            results.append(result)

        # Tickets first (tweets and replies point at their generated keys), then the rest.
        pks: dict[str, int] = {t.ticket_id: t.pk for t in open_tickets.values() if t.pk is not None}
        if new_tickets:
            session.execute(insert(Ticket.__table__), new_tickets)
            pks.update(session.execute(
                select(Ticket.ticket_id, Ticket.id).where(Ticket.ticket_id.in_([t["ticket_id"] for t in new_tickets]))
            ).tuples().all())
        if touched:
            session.execute(update(Ticket).where(Ticket.id.in_(touched)).values(updated_at=now)
                            .execution_options(synchronize_session=False))
        if new_tweets:
            session.execute(insert(Tweet.__table__), [
                {**row, "ticket_pk": pks[ticket.ticket_id] if ticket else None} for row, ticket in new_tweets])
        if new_replies:
            session.execute(insert(OutboxEntry.__table__), [{**row, "ticket_pk": pks[ticket.ticket_id]} for row, ticket in new_replies])
        for (code, day), (value, start) in counters.items():
            if start < 0:
                session.execute(insert(TicketCounter).values(code=code, day=day, value=value))
            else:
                session.execute(
                    update(TicketCounter).where(TicketCounter.code == code, TicketCounter.day == day)
                    .values(value=value).execution_options(synchronize_session=False)
                )
        return results

    # --- row builders -----------------------------------------------------------------------
    def _ticket_row(
        self, tweet: Mapping[str, Any], decision: Decision, conversation_id: str, now: datetime,
        next_sequence: Any,
    ) -> dict[str, Any]:
        topic = confident_topic(tweet, self.policy)
        code = topic_code(topic)
        day: date = (as_utc(tweet.get("created_at")) or now).date()
        sequence = int(next_sequence(code, day))
        # A thank-you needs no follow-up: the ticket is born resolved (and frees the conversation).
        status = "resolved" if decision.reason == "thanks" else "open"
        return {
            "ticket_id": format_ticket_id(code, day, sequence),
            "conversation_id": conversation_id,
            "open_conversation_id": None if status == "resolved" else conversation_id,
            "status": status,
            "topic": topic,
            "topic_code": code,
            "sentiment": tweet.get("sentiment"),
            "reason": decision.reason,
            "author_handle": tweet.get("author_handle"),
            "first_tweet_id": str(tweet["tweet_id"]),
            "created_at": now,
            "updated_at": now,
            "resolved_at": now if status == "resolved" else None,
        }

    @staticmethod
    def _tweet_row(tweet: Mapping[str, Any], decision: Decision, conversation_id: str, now: datetime) -> dict[str, Any]:
        return {
            "tweet_id": str(tweet["tweet_id"]),
            "text": tweet["text"],
            "clean_text": tweet.get("clean_text"),
            "author_id": str(tweet["author_id"]),
            "author_handle": str(tweet["author_handle"]),
            "created_at": tweet["created_at"],
            "conversation_id": conversation_id,
            "in_reply_to_tweet_id": tweet.get("in_reply_to_tweet_id"),
            "lang": tweet.get("lang"),
            "source": tweet.get("source"),
            "matched_rules": list(tweet.get("matched_rules") or []),
            "sentiment": tweet["sentiment"],
            "sentiment_score": float(tweet["sentiment_score"]),
            "topic": tweet.get("topic"),
            "topic_score": tweet.get("topic_score"),
            "needs_reply_score": tweet.get("needs_reply_score"),
            "entities": [dict(e) for e in tweet.get("entities") or []],
            "model_version": tweet.get("model_version"),
            "processed_at": tweet.get("processed_at"),
            "needs_reply": decision.needs_reply,
            "auto_reply": decision.auto_reply,
            "reason": decision.reason,
            "received_at": now,
        }

    def _outbox_row(self, tweet: Mapping[str, Any], decision: Decision, ticket: _TicketRef, now: datetime,
                    bodies: Mapping[str, str]) -> dict[str, Any]:
        return {
            "tweet_id": str(tweet["tweet_id"]),
            "ticket_id": ticket.ticket_id,
            "text": render_reply({**tweet, "topic": ticket.topic}, decision.reason, ticket.ticket_id, self.signature, bodies),
            "status": "awaiting_approval" if self.approval.holds(decision) else "queued",
            "kind": "auto",
            "confidence": decision.confidence,
            "created_at": now,
            "updated_at": now,
        }


@dataclass(frozen=True)
class _TicketRef:
    """What the intake needs of a ticket: its public ID, topic (for the reply body) and, once stored, its key."""

    ticket_id: str
    topic: str | None
    pk: int | None = None
