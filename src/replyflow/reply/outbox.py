"""The outbox: public replies waiting to be posted, and every state change of one.

``status``: queued -> sending -> sent | failed, or sending -> uncertain (the workspace adds the
states before ``queued``: held for approval, rejected; see :mod:`replyflow.reply.approvals`).
Claiming is a conditional UPDATE (``queued -> sending``) that also starts a lease
(``claimed_at``), so two senders never post the same entry.  A live sender renews the lease
while it waits for X; an entry still ``sending`` after its lease ran out belongs to a sender
that died mid-post, and is marked ``uncertain``: X may or may not have the reply, so it is
never re-posted automatically, and agents see it (workspace failures queue, ``replyflow
status``, the metrics).
The sender (:mod:`replyflow.reply.sender`) owns *when*; this module owns the SQL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update

from replyflow.core.times import utcnow
from replyflow.reply.db import Database
from replyflow.reply.tables import OUTBOX_STATUSES, OutboxEntry, Ticket

log = logging.getLogger(__name__)

INTERRUPTED = ("uncertain: its sender stopped while posting it (lease expired); it may or may not be on X; "
               "not re-posted (at-most-once): check the conversation and reply by hand")


@dataclass(frozen=True)
class PendingReply:
    """A queued outbox entry: what the sender needs to post it."""

    id: int
    tweet_id: str
    text: str


@dataclass(frozen=True)
class SendOutcome:
    status: str  # sent | failed
    posted_tweet_id: str | None = None
    note: str | None = None
    error: str | None = None


class OutboxRepository:
    """All outbox SQL of the sender and the health/stats views."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def reclaim_expired(self, lease: timedelta) -> list[str]:
        """Mark entries whose ``sending`` lease expired ``uncertain``; returns their tweet ids."""
        cutoff = utcnow() - lease
        expired = (OutboxEntry.status == "sending") & (OutboxEntry.claimed_at < cutoff)
        with self.db.write() as session:
            tweet_ids = [str(t) for t in session.execute(select(OutboxEntry.tweet_id).where(expired)).scalars()]
            if tweet_ids:
                session.execute(
                    update(OutboxEntry)
                    .where(expired, OutboxEntry.tweet_id.in_(tweet_ids))
                    .values(status="uncertain", updated_at=utcnow(), last_error=INTERRUPTED)
                    .execution_options(synchronize_session=False)
                )
            return tweet_ids

    def renew(self, entry_id: int) -> None:
        """Extend the lease of an entry this sender is still posting (it waits for X)."""
        with self.db.write() as session:
            session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id == entry_id, OutboxEntry.status == "sending")
                .values(claimed_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    def claim(self, entry_id: int) -> bool:
        """Atomically take one queued entry; False if another sender got it first."""
        now = utcnow()
        with self.db.write() as session:
            result = session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id == entry_id, OutboxEntry.status == "queued")
                .values(status="sending", claimed_at=now, updated_at=now, attempts=OutboxEntry.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]

    def queued(self, limit: int) -> list[PendingReply]:
        """The oldest queued entries, at most ``limit``."""
        with self.db.read() as session:
            rows = session.execute(
                select(OutboxEntry.id, OutboxEntry.tweet_id, OutboxEntry.text)
                .where(OutboxEntry.status == "queued")
                .order_by(OutboxEntry.id)
                .limit(limit)
            ).all()
        return [PendingReply(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def record(self, entry_id: int, outcome: SendOutcome) -> None:
        """Store what happened to a claimed entry; the first reply sent stops the ticket's first-response clock."""
        now = utcnow()
        with self.db.write() as session:
            session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id == entry_id)
                .values(status=outcome.status, posted_tweet_id=outcome.posted_tweet_id, note=outcome.note,
                        last_error=outcome.error, updated_at=now, sent_at=now if outcome.status == "sent" else None)
                .execution_options(synchronize_session=False)
            )
            if outcome.status == "sent":
                session.execute(
                    update(Ticket)
                    .where(Ticket.id == select(OutboxEntry.ticket_pk).where(OutboxEntry.id == entry_id).scalar_subquery(),
                           Ticket.first_response_at.is_(None))
                    .values(first_response_at=now)
                    .execution_options(synchronize_session=False)
                )

    def counts(self) -> dict[str, int]:
        """Entries per status (every status present, 0 when none)."""
        with self.db.read() as session:
            rows = session.execute(select(OutboxEntry.status, func.count()).group_by(OutboxEntry.status)).all()
        counts = dict.fromkeys(OUTBOX_STATUSES, 0)
        counts.update({s: int(n) for s, n in rows})
        return counts
