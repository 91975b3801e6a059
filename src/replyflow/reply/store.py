"""The ticket store: engine set-up for SQLite/PostgreSQL and the idempotent ingest.

Why the care: the stream job retries batches (at-least-once), several API threads or
instances may receive the same tweet at once, and a public reply must never go out
twice.  Every write runs in one short transaction; the database's unique constraints
(see :mod:`replyflow.reply.models`) are the referee, and an ``IntegrityError`` simply
means "somebody else won the race": we roll back and re-read their result.

SQLite: WAL (readers never block the writer), a busy timeout, and ``BEGIN IMMEDIATE`` for
write transactions so two writers queue up instead of deadlocking on a lock upgrade.
PostgreSQL (``postgresql://`` URLs use psycopg 3): READ COMMITTED plus the constraints.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from replyflow.reply.models import Base, OutboxEntry, Ticket, TicketCounter, Tweet, as_utc, utcnow
from replyflow.reply.policy import Decision
from replyflow.reply.render import render_reply
from replyflow.reply.tickets import format_ticket_id, topic_code

log = logging.getLogger(__name__)

_MAX_RACE_RETRIES = 8


def normalise_url(url: str) -> str:
    """``postgresql://`` / ``postgres://`` -> psycopg 3 driver (SQLAlchemy defaults to psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str) -> Engine:
    """An engine configured for concurrent use by API threads and the sender."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=10)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        readonly = conn.get_execution_options().get("replyflow_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


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


class Store:
    """All database access of the reply service (API, dashboard and sender share it)."""

    def __init__(self, url: str, signature: str = "", min_topic_confidence: float = 0.0) -> None:
        self.min_topic_confidence = min_topic_confidence
        self.engine = make_engine(url)
        self.signature = signature
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(replyflow_readonly=True), expire_on_commit=False
        )
        # SQLite has one writer at a time anyway; queueing writers on a lock here is much
        # faster than letting them spin in SQLite's busy handler (which sleeps up to 100 ms).
        self._write_lock: Any = threading.Lock() if self.engine.dialect.name == "sqlite" else nullcontext()

    @classmethod
    def from_settings(cls, settings: Any) -> Store:
        return cls(settings.db_url, signature=settings.support_signature,
                   min_topic_confidence=settings.reply_min_topic_confidence)

    def confident_topic(self, tweet: Mapping[str, Any]) -> str | None:
        """The topic if the model is confident enough, else None (ticket code GEN, generic reply).

        A wrong topic in a public reply ("sorry about your bag" to a seat complaint) is
        worse than a generic one.
        """
        topic = tweet.get("topic")
        score = tweet.get("topic_score")
        if not topic or score is None or float(score) < self.min_topic_confidence:
            return None
        return str(topic)

    def create_all(self) -> None:
        """Create missing tables (no migrations yet: the schema is new)."""
        Base.metadata.create_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        with self._write_lock, self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read_sessions() as session, session.begin():
            yield session

    # --- ingest ------------------------------------------------------------------------
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
                with self.write() as session:
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
                with self.write() as session:
                    return self._ingest_batch(session, items)
            except IntegrityError:
                log.debug("race inside a batch of %d, falling back to one transaction per tweet", len(items))
            except OperationalError as exc:
                if "locked" not in str(exc).lower():
                    raise
        return [self.ingest(tweet, decision) for tweet, decision in items]

    def _ingest_batch(self, session: Session, items: Sequence[tuple[Mapping[str, Any], Decision]]) -> list[IngestResult]:
        """Ingest ``items`` in the caller's transaction: the one code path of :meth:`ingest` (a single
        item) and :meth:`ingest_many`.  A race with another writer surfaces as IntegrityError at the
        final flush, and the caller retries."""
        now = utcnow()
        ids = list({str(t["tweet_id"]) for t, _ in items})
        conversations = list({str(t.get("conversation_id") or t["tweet_id"]) for t, _ in items})
        seen: dict[str, IngestResult] = {}
        for row, ticket_id in session.execute(
            select(Tweet, Ticket.ticket_id).outerjoin(Ticket, Tweet.ticket_pk == Ticket.id).where(Tweet.tweet_id.in_(ids))
        ).all():
            stored = Decision(row.needs_reply, row.auto_reply, row.reason)
            seen[row.tweet_id] = IngestResult(row.tweet_id, stored, ticket_id, False, True)
        open_tickets: dict[str, Ticket] = {
            t.open_conversation_id: t  # type: ignore[misc]
            for t in session.scalars(select(Ticket).where(Ticket.open_conversation_id.in_(conversations))).all()
        }
        replied: set[str] = set(
            session.scalars(
                select(Ticket.ticket_id).join(OutboxEntry, OutboxEntry.ticket_pk == Ticket.id)
                .where(Ticket.id.in_([t.id for t in open_tickets.values()]))
            ).all()
        ) if open_tickets else set()
        counters: dict[tuple[str, str], list[int]] = {}  # (code, day) -> [value, value at start or -1 if new]

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
                ticket = self._build_ticket(tweet, decision, conversation_id, now, next_sequence)
                session.add(ticket)
                if ticket.open_conversation_id:
                    open_tickets[conversation_id] = ticket
            elif ticket is not None:
                ticket.updated_at = now
            session.add(self._build_tweet(tweet, decision, conversation_id, now, ticket))
            queued = False
            if ticket is not None and decision.needs_reply and decision.auto_reply and ticket.ticket_id not in replied:
                session.add(self._build_outbox(tweet, decision, ticket, now))
                replied.add(ticket.ticket_id)
                queued = True
            result = IngestResult(tweet_id, decision, ticket.ticket_id if ticket else None, queued, False)
            seen[tweet_id] = result
            results.append(result)

        for (code, day), (value, start) in counters.items():
            if start < 0:
                session.add(TicketCounter(code=code, day=day, value=value))
            else:
                session.execute(
                    update(TicketCounter).where(TicketCounter.code == code, TicketCounter.day == day)
                    .values(value=value).execution_options(synchronize_session=False)
                )
        session.flush()
        return results

    # --- row builders -----------------------------------------------------------------------
    def _build_ticket(
        self, tweet: Mapping[str, Any], decision: Decision, conversation_id: str, now: datetime,
        next_sequence: Any,
    ) -> Ticket:
        topic = self.confident_topic(tweet)
        code = topic_code(topic)
        day: date = (as_utc(tweet.get("created_at")) or now).date()
        sequence = int(next_sequence(code, day))
        # A thank-you needs no follow-up: the ticket is born resolved (and frees the conversation).
        status = "resolved" if decision.reason == "thanks" else "open"
        return Ticket(
            ticket_id=format_ticket_id(code, day, sequence),
            conversation_id=conversation_id,
            open_conversation_id=None if status == "resolved" else conversation_id,
            status=status,
            topic=topic,
            topic_code=code,
            sentiment=tweet.get("sentiment"),
            reason=decision.reason,
            author_handle=tweet.get("author_handle"),
            first_tweet_id=str(tweet["tweet_id"]),
            created_at=now,
            updated_at=now,
        )

    @staticmethod
    def _build_tweet(
        tweet: Mapping[str, Any], decision: Decision, conversation_id: str, now: datetime, ticket: Ticket | None
    ) -> Tweet:
        return Tweet(
            tweet_id=str(tweet["tweet_id"]),
            text=tweet["text"],
            clean_text=tweet.get("clean_text"),
            author_id=str(tweet["author_id"]),
            author_handle=str(tweet["author_handle"]),
            created_at=tweet["created_at"],
            conversation_id=conversation_id,
            in_reply_to_tweet_id=tweet.get("in_reply_to_tweet_id"),
            lang=tweet.get("lang"),
            source=tweet.get("source"),
            matched_rules=list(tweet.get("matched_rules") or []),
            sentiment=tweet["sentiment"],
            sentiment_score=float(tweet["sentiment_score"]),
            topic=tweet.get("topic"),
            topic_score=tweet.get("topic_score"),
            entities=[dict(e) for e in tweet.get("entities") or []],
            model_version=tweet.get("model_version"),
            processed_at=tweet.get("processed_at"),
            needs_reply=decision.needs_reply,
            auto_reply=decision.auto_reply,
            reason=decision.reason,
            received_at=now,
            ticket=ticket,
        )

    def _build_outbox(self, tweet: Mapping[str, Any], decision: Decision, ticket: Ticket, now: datetime) -> OutboxEntry:
        return OutboxEntry(
            tweet_id=str(tweet["tweet_id"]),
            ticket=ticket,
            ticket_id=ticket.ticket_id,
            text=render_reply({**tweet, "topic": ticket.topic}, decision.reason, ticket.ticket_id, self.signature),
            status="queued",
            created_at=now,
            updated_at=now,
        )

    # --- tickets -----------------------------------------------------------------------
    def list_tickets(
        self,
        *,
        status: str | None = None,
        topic: str | None = None,
        sentiment: str | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        q: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> tuple[list[dict[str, Any]], int]:
        """Tickets newest first, filtered; ``q`` matches ticket ID, handle or any tweet text."""
        query = select(Ticket)
        if status:
            query = query.where(Ticket.status == status)
        if topic:
            query = query.where(or_(Ticket.topic == topic, Ticket.topic_code == topic.upper()))
        if sentiment:
            query = query.where(Ticket.sentiment == sentiment)
        if date_from:
            query = query.where(Ticket.created_at >= datetime.combine(date_from, datetime.min.time(), timezone.utc))
        if date_to:
            query = query.where(Ticket.created_at < datetime.combine(date_to, datetime.max.time(), timezone.utc))
        if q:
            pattern = f"%{q.lower()}%"
            matching = select(Tweet.ticket_pk).where(func.lower(Tweet.text).like(pattern), Tweet.ticket_pk.is_not(None))
            query = query.where(
                or_(
                    func.lower(Ticket.ticket_id).like(pattern),
                    func.lower(Ticket.author_handle).like(pattern),
                    Ticket.id.in_(matching),
                )
            )
        with self.read() as session:
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
                    select(OutboxEntry.ticket_pk, OutboxEntry.status).where(OutboxEntry.ticket_pk.in_([t.id for t in rows]))
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
        """One ticket with its tweets (oldest first) and its outbox entry."""
        with self.read() as session:
            ticket = session.scalars(
                select(Ticket)
                .options(selectinload(Ticket.tweets), selectinload(Ticket.outbox))
                .where(Ticket.ticket_id == ticket_id)
            ).first()
            if ticket is None:
                return None
            data = ticket.to_dict()
            data["tweets"] = [tw.to_dict() | {"ticket_id": ticket.ticket_id} for tw in ticket.tweets]
            data["outbox"] = ticket.outbox.to_dict() if ticket.outbox else None
            return data

    def set_status(self, ticket_id: str, status: str) -> dict[str, Any] | None:
        """Change a ticket's status; re-opening fails (ValueError) if the conversation has another open ticket."""
        try:
            with self.write() as session:
                ticket = session.scalars(select(Ticket).where(Ticket.ticket_id == ticket_id)).first()
                if ticket is None:
                    return None
                ticket.status = status
                ticket.open_conversation_id = None if status == "resolved" else ticket.conversation_id
                ticket.updated_at = utcnow()
                session.flush()
        except IntegrityError as exc:
            raise ValueError("another ticket of this conversation is already open") from exc
        return self.get_ticket(ticket_id)

    # --- stats -------------------------------------------------------------------------
    def outbox_counts(self) -> dict[str, int]:
        with self.read() as session:
            rows = session.execute(select(OutboxEntry.status, func.count()).group_by(OutboxEntry.status)).all()
        counts = {s: 0 for s in ("queued", "sending", "sent", "failed")}
        counts.update({s: int(n) for s, n in rows})
        return counts

    def stats(self) -> dict[str, Any]:
        """Counts for the dashboard and the demo summary."""

        def grouped(session: Session, column: Any) -> dict[str, int]:
            rows = session.execute(select(column, func.count()).group_by(column)).all()
            return {str(k) if k is not None else "none": int(n) for k, n in rows}

        with self.read() as session:
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
        data["outbox"] = self.outbox_counts()
        return data

    def tweet_times(self, limit: int = 100_000) -> list[datetime]:
        """Creation times of the latest tweets, for the volume chart."""
        with self.read() as session:
            rows = session.scalars(select(Tweet.created_at).order_by(Tweet.id.desc()).limit(limit)).all()
        return [as_utc(r) for r in rows if r is not None]  # type: ignore[misc]

    def ping(self) -> bool:
        try:
            with self.read() as session:
                session.execute(select(1))
            return True
        except Exception:  # noqa: BLE001 - health check reports, never raises
            log.warning("database ping failed", exc_info=True)
            return False
