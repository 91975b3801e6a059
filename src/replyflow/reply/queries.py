"""What agents and the API read about tickets: lists with filters, one ticket, counts; status changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from replyflow.core.times import as_utc, utcnow
from replyflow.reply.db import Database
from replyflow.reply.tables import OutboxEntry, Ticket, Tweet
from replyflow.reply.worktables import TicketEvent

#: Highest page number accepted: a huge OFFSET overflowed SQLite (a 500).
MAX_PAGE = 1_000_000
#: Most tickets per page.
MAX_PER_PAGE = 200


@dataclass(frozen=True)
class TicketFilter:
    """Which tickets a list shows; every field optional (None: no filter)."""

    status: str | None = None
    topic: str | None = None  # a class name or a 3-letter code
    sentiment: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    q: str | None = None  # substring of ticket ID, author handle or any tweet text


def clamp_page(page: int, per_page: int) -> tuple[int, int]:
    """The page and its size clamped to 1..MAX_PAGE, 1..MAX_PER_PAGE."""
    return min(max(1, page), MAX_PAGE), min(max(1, per_page), MAX_PER_PAGE)


def filter_clauses(filters: TicketFilter) -> list[Any]:
    """The WHERE clauses of a :class:`TicketFilter` (the API's list and the workspace's ticket list)."""
    clauses: list[Any] = []
    if filters.status:
        clauses.append(Ticket.status == filters.status)
    if filters.topic:
        clauses.append(or_(Ticket.topic == filters.topic, Ticket.topic_code == filters.topic.upper()))
    if filters.sentiment:
        clauses.append(Ticket.sentiment == filters.sentiment)
    if filters.date_from:
        clauses.append(Ticket.created_at >= datetime.combine(filters.date_from, datetime.min.time(), timezone.utc))
    if filters.date_to:
        clauses.append(Ticket.created_at < datetime.combine(filters.date_to, datetime.max.time(), timezone.utc))
    if filters.q:
        pattern = f"%{filters.q.lower()}%"
        matching = select(Tweet.ticket_pk).where(func.lower(Tweet.text).like(pattern), Tweet.ticket_pk.is_not(None))
        clauses.append(or_(func.lower(Ticket.ticket_id).like(pattern), func.lower(Ticket.author_handle).like(pattern),
                           Ticket.id.in_(matching)))
    return clauses


class TicketQueries:
    """Reads (and status changes) of tickets and tweets."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def list_tickets(
        self, filters: TicketFilter = TicketFilter(), page: int = 1, per_page: int = 50
    ) -> tuple[list[dict[str, Any]], int]:
        """Tickets newest first, filtered; the page and its size are clamped to 1..MAX_PAGE, 1..MAX_PER_PAGE."""
        page, per_page = clamp_page(page, per_page)
        query = select(Ticket).where(*filter_clauses(filters))
        with self.db.read() as session:
            total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
            rows = session.scalars(
                query.order_by(Ticket.created_at.desc(), Ticket.id.desc()).offset((page - 1) * per_page).limit(per_page)
            ).all()
            counts = dict(
                session.execute(
                    select(Tweet.ticket_pk, func.count()).where(Tweet.ticket_pk.in_([t.id for t in rows])).group_by(Tweet.ticket_pk)
                ).all()
            ) if rows else {}
            outbox = dict(
                session.execute(
                    select(OutboxEntry.ticket_pk, OutboxEntry.status)
                    .where(OutboxEntry.ticket_pk.in_([t.id for t in rows]), OutboxEntry.kind == "auto")
                ).all()
            ) if rows else {}
            items = []
            for t in rows:
                item = t.to_dict()
                item["tweet_count"] = int(counts.get(t.id, 0))
                item["reply_status"] = outbox.get(t.id)
                item["first_text"] = None
                items.append(item)
            first = {t.first_tweet_id for t in rows}
            if first:
                texts = dict(session.execute(select(Tweet.tweet_id, Tweet.text).where(Tweet.tweet_id.in_(first))).all())
                for item in items:
                    item["first_text"] = texts.get(item["first_tweet_id"])
        return items, total

    def get_ticket(self, ticket_id: str) -> dict[str, Any] | None:
        """One ticket with its tweets (oldest first) and its automatic reply (``outbox``), as the API shows it."""
        with self.db.read() as session:
            ticket = session.scalars(
                select(Ticket)
                .options(selectinload(Ticket.tweets), selectinload(Ticket.replies))
                .where(Ticket.ticket_id == ticket_id)
            ).first()
            if ticket is None:
                return None
            data = ticket.to_dict()
            data["tweets"] = [tw.to_dict() | {"ticket_id": ticket.ticket_id} for tw in ticket.tweets]
            auto = ticket.auto_reply
            data["outbox"] = auto.to_dict() if auto else None
            return data

    def set_status(self, ticket_id: str, status: str, actor: str | None = None) -> dict[str, Any] | None:
        """Change a ticket's status and record who did it (``actor``: a user name; None: the API token).

        Re-opening fails (ValueError) if the conversation has another open ticket."""
        try:
            with self.db.write() as session:
                ticket = session.scalars(select(Ticket).where(Ticket.ticket_id == ticket_id)).first()
                if ticket is None:
                    return None
                apply_status(session, ticket, status, actor)
                session.flush()
        except IntegrityError as exc:
            raise ValueError("another ticket of this conversation is already open") from exc
        return self.get_ticket(ticket_id)

    def stats(self) -> dict[str, Any]:
        """Counts for the dashboard and the demo summary."""

        def grouped(session: Session, column: Any) -> dict[str, int]:
            rows = session.execute(select(column, func.count()).group_by(column)).all()
            return {str(k) if k is not None else "none": int(n) for k, n in rows}

        with self.db.read() as session:
            data = {
                "tweets": {
                    "total": int(session.scalar(select(func.count(Tweet.id))) or 0),
                    "by_sentiment": grouped(session, Tweet.sentiment),
                    "by_topic": grouped(session, Tweet.topic),
                    "by_reason": grouped(session, Tweet.reason),
                },
                "tickets": {
                    "total": int(session.scalar(select(func.count(Ticket.id))) or 0),
                    "by_status": grouped(session, Ticket.status),
                    "by_topic": grouped(session, Ticket.topic_code),
                    "by_sentiment": grouped(session, Ticket.sentiment),
                },
            }
        return data

    def tweet_times(self, limit: int = 100_000) -> list[datetime]:
        """Creation times of the latest tweets, for the volume chart."""
        with self.db.read() as session:
            rows = session.scalars(select(Tweet.created_at).order_by(Tweet.id.desc()).limit(limit)).all()
        return [as_utc(r) for r in rows if r is not None]  # type: ignore[misc]


def apply_status(session: Session, ticket: Ticket, status: str, actor: str | None) -> bool:
    """Set ``ticket``'s status in the caller's transaction, with the resolution time and an event.

    Returns False (and records nothing) when the status is already ``status``."""
    if ticket.status == status:
        return False
    now = utcnow()
    session.add(TicketEvent(ticket_pk=ticket.id, kind="status", actor=actor, created_at=now,
                            data={"from": ticket.status, "to": status, **({} if actor else {"via": "api"})}))
    ticket.status = status
    ticket.open_conversation_id = None if status == "resolved" else ticket.conversation_id
    ticket.resolved_at = now if status == "resolved" else None
    ticket.updated_at = now
    return True
