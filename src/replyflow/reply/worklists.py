"""What agents look at: ticket queues with counts, the ticket list, one ticket's whole thread, freshness.

Queues are WHERE clauses over ``tickets`` (open and pending tickets only) served by the composite
indexes of :mod:`replyflow.reply.tables`, so a page costs a count and one indexed page of rows
even with 100,000 tickets (``bench/bench_workspace.py``).  Work queues list the oldest ticket first;
the ticket list the newest first.  Replies held for approval and failed replies are queues of
outbox entries: :mod:`replyflow.reply.approvals`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from replyflow.core.times import as_utc, iso
from replyflow.reply.db import Database
from replyflow.reply.queries import TicketFilter, clamp_page, filter_clauses
from replyflow.reply.sla import OPEN_STATUSES, SlaTargets, breached_now, ticket_clocks
from replyflow.reply.tables import OutboxEntry, Ticket, Tweet
from replyflow.reply.worktables import Correction, TicketEvent, User

#: The ticket queues, in the order the workspace shows them.
QUEUES: dict[str, str] = {
    "unassigned": "Unassigned",
    "mine": "Mine",
    "low_confidence": "Low confidence",
    "breached": "SLA breached",
}
#: Replies that need a person: stuck while sending, failed, or interrupted mid-post (``uncertain``:
#: they may or may not be on X).
PROBLEM_STATUSES = ("sending", "failed", "uncertain")
#: Most tweets of one conversation shown on a ticket page.
THREAD_LIMIT = 500


class UnknownQueue(KeyError):
    pass


@dataclass(frozen=True)
class Freshness:
    """When the service last received a tweet, and when the stream last enriched one."""

    last_received: datetime | None
    last_processed: datetime | None


class Worklists:
    """Reads of the agent workspace."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- queues ------------------------------------------------------------------------------
    def _queue_clauses(self, name: str, user_id: int | None, targets: SlaTargets, now: datetime) -> list[Any]:
        open_ = Ticket.status.in_(OPEN_STATUSES)
        if name == "unassigned":
            return [open_, Ticket.assignee_id.is_(None)]
        if name == "mine":
            return [open_, Ticket.assignee_id == user_id]
        if name == "low_confidence":
            return [open_, Ticket.reason == "low_confidence"]
        if name == "breached":
            return [breached_now(targets, now)]
        raise UnknownQueue(name)

    def queue(self, name: str, user_id: int | None, targets: SlaTargets, now: datetime, page: int = 1,
              per_page: int = 50) -> tuple[list[dict[str, Any]], int]:
        """One page of a queue, oldest ticket first, and the queue's length."""
        return self._page(self._queue_clauses(name, user_id, targets, now), page, per_page, targets, now, oldest_first=True)

    def tickets(self, filters: TicketFilter, targets: SlaTargets, now: datetime, page: int = 1,
                per_page: int = 50) -> tuple[list[dict[str, Any]], int]:
        """The ticket list (every status), newest first, filtered like the API's."""
        return self._page(filter_clauses(filters), page, per_page, targets, now, oldest_first=False)

    def counts(self, user_id: int | None, targets: SlaTargets, now: datetime) -> dict[str, int]:
        """Length of every queue (the navigation's badges), plus held and failed replies."""
        with self.db.read() as session:
            counts = {name: int(session.scalar(select(func.count(Ticket.id))
                                               .where(*self._queue_clauses(name, user_id, targets, now))) or 0)
                      for name in QUEUES}
            counts["approvals"] = int(session.scalar(
                select(func.count(OutboxEntry.id)).where(OutboxEntry.status == "awaiting_approval")) or 0)
            counts["failures"] = int(session.scalar(
                select(func.count(OutboxEntry.id)).where(OutboxEntry.status.in_(PROBLEM_STATUSES))) or 0)
        return counts

    def _page(self, clauses: list[Any], page: int, per_page: int, targets: SlaTargets, now: datetime,
              oldest_first: bool) -> tuple[list[dict[str, Any]], int]:
        page, per_page = clamp_page(page, per_page)
        order = (Ticket.created_at.asc(), Ticket.id.asc()) if oldest_first else (Ticket.created_at.desc(), Ticket.id.desc())
        with self.db.read() as session:
            total = int(session.scalar(select(func.count(Ticket.id)).where(*clauses)) or 0)
            # The page's ids first (sorted from an index alone), then only those rows: sorting whole rows
            # of a 40,000-ticket queue to keep 50 cost ten times more on SQLite.
            ids = session.scalars(select(Ticket.id).where(*clauses).order_by(*order)
                                  .offset((page - 1) * per_page).limit(per_page)).all()
            rows = session.execute(
                select(Ticket, User.username).outerjoin(User, User.id == Ticket.assignee_id)
                .where(Ticket.id.in_(ids)).order_by(*order)
            ).all() if ids else []
            items = [self._item(t, assignee, targets, now) for t, assignee in rows]
            self._add_texts_and_replies(session, items)
        return items, total

    @staticmethod
    def _item(t: Ticket, assignee: str | None, targets: SlaTargets, now: datetime) -> dict[str, Any]:
        return {**t.to_dict(), "pk": t.id, "assignee": assignee,
                "sla": ticket_clocks(t.created_at, t.first_response_at, t.resolved_at, targets, now)}

    @staticmethod
    def _add_texts_and_replies(session: Session, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        pks = [i["pk"] for i in items]
        texts = dict(session.execute(
            select(Tweet.tweet_id, Tweet.text).where(Tweet.tweet_id.in_([i["first_tweet_id"] for i in items]))).tuples().all())
        replies: dict[int, list[str]] = {}
        for pk, status in session.execute(
                select(OutboxEntry.ticket_pk, OutboxEntry.status).where(OutboxEntry.ticket_pk.in_(pks))
                .order_by(OutboxEntry.id)).tuples().all():
            replies.setdefault(pk, []).append(status)
        for item in items:
            item["first_text"] = texts.get(item["first_tweet_id"])
            item["reply_statuses"] = replies.get(item["pk"], [])

    # --- one ticket -----------------------------------------------------------------------------
    def ticket(self, ticket_id: str, targets: SlaTargets, now: datetime) -> dict[str, Any] | None:
        """A ticket with its whole conversation: every tweet (with the latest correction of each),
        every reply to any ticket of the conversation, and this ticket's events, oldest first."""
        with self.db.read() as session:
            found = session.execute(
                select(Ticket, User.username).outerjoin(User, User.id == Ticket.assignee_id)
                .where(Ticket.ticket_id == ticket_id)).first()
            if found is None:
                return None
            ticket, assignee = found
            data = self._item(ticket, assignee, targets, now)
            data["assignee_id"] = ticket.assignee_id
            tweets = session.scalars(
                select(Tweet).where(Tweet.conversation_id == ticket.conversation_id)
                .order_by(Tweet.created_at, Tweet.id).limit(THREAD_LIMIT)).all()
            corrections = _latest_corrections(session, [t.id for t in tweets])
            tickets_of = dict(session.execute(
                select(Ticket.id, Ticket.ticket_id).where(Ticket.conversation_id == ticket.conversation_id)).tuples().all())
            replies = session.scalars(
                select(OutboxEntry).where(OutboxEntry.ticket_pk.in_(list(tickets_of))).order_by(OutboxEntry.id)).all()
            events = session.scalars(
                select(TicketEvent).where(TicketEvent.ticket_pk == ticket.id).order_by(TicketEvent.id)).all()
            data["tweets"] = [{**t.to_dict(), "pk": t.id, "ticket_id": tickets_of.get(t.ticket_pk or -1),
                               "correction": corrections.get(t.id)} for t in tweets]
            data["replies"] = [reply_view(r, tickets_of.get(r.ticket_pk)) for r in replies]
            data["events"] = [{"kind": e.kind, "actor": e.actor, "at": iso(e.created_at), "body": e.body,
                               "data": e.data or {}} for e in events]
        data["timeline"] = sorted(
            [("tweet", t["created_at"] or "", t) for t in data["tweets"]]
            + [("reply", r["sent_at"] or r["created_at"] or "", r) for r in data["replies"]]
            + [("event", e["at"] or "", e) for e in data["events"]],
            key=lambda entry: entry[1])
        return data

    def freshness(self) -> Freshness:
        with self.db.read() as session:  # two statements: each max() alone is one step down its index
            received = session.scalar(select(func.max(Tweet.received_at)))
            processed = session.scalar(select(func.max(Tweet.processed_at)))
        return Freshness(as_utc(received), as_utc(processed))


def reply_view(entry: OutboxEntry, ticket_id: str | None = None) -> dict[str, Any]:
    """An outbox entry as the workspace shows it (the API's fields plus the review's)."""
    return {**entry.to_dict(), "id": entry.id, "kind": entry.kind, "confidence": entry.confidence,
            "created_by": entry.created_by, "reviewed_by": entry.reviewed_by, "reviewed_at": iso(entry.reviewed_at),
            "review_note": entry.review_note, "ticket_id": ticket_id or entry.ticket_id}


def _latest_corrections(session: Session, tweet_pks: list[int]) -> dict[int, dict[str, Any]]:
    if not tweet_pks:
        return {}
    latest: dict[int, dict[str, Any]] = {}
    for c in session.scalars(select(Correction).where(Correction.tweet_pk.in_(tweet_pks)).order_by(Correction.id)).all():
        latest[c.tweet_pk] = {"sentiment": c.sentiment, "topic": c.topic, "needs_reply": c.needs_reply,
                              "by": c.corrected_by, "at": iso(c.corrected_at)}
    return latest
