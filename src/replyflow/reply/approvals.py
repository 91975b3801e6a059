"""What agents do to outbox entries: approve, edit or reject held replies; retry failed ones.

Every action is one transaction that first checks the entry is still in the state the agent saw
(the row is locked on PostgreSQL; SQLite has one writer at a time), so two agents clicking at
once, or a double click, change it once and the second gets a clear :class:`ActionError`.

Nothing here posts: approving or retrying only moves an entry to ``queued``, and the sender
(:mod:`replyflow.reply.sender`), which only ever claims ``queued`` entries, does the rest with its
at-most-once rules unchanged.  An entry whose post was interrupted (``uncertain``, or ``failed``
with the sender's "interrupted" error) may already be on X: it is re-queued only when the agent
confirms it is not.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from replyflow.core.times import utcnow
from replyflow.reply.db import Database
from replyflow.reply.outbox import INTERRUPTED
from replyflow.reply.queries import clamp_page
from replyflow.reply.render import check_reply_text
from replyflow.reply.tables import OutboxEntry, Ticket, Tweet
from replyflow.reply.worklists import PROBLEM_STATUSES, reply_view
from replyflow.reply.worktables import TicketEvent


class ActionError(ValueError):
    """The action does not apply (any more): the message says why, for the agent."""


def needs_confirmation(status: str, last_error: str | None) -> bool:
    """True when the entry may already be on X (its post was interrupted)."""
    return status == "uncertain" or (status == "failed" and last_error == INTERRUPTED)


class Approvals:
    """Held and failed replies, and the agents' actions on them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- lists ---------------------------------------------------------------------------------
    def held(self, page: int = 1, per_page: int = 50) -> tuple[list[dict[str, Any]], int]:
        """Replies waiting for approval, oldest first, with the tweet they answer."""
        return self._list([OutboxEntry.status == "awaiting_approval"], page, per_page)

    def problems(self, page: int = 1, per_page: int = 50) -> tuple[list[dict[str, Any]], int]:
        """Replies stuck in ``sending``, ``failed`` or ``uncertain``, oldest first."""
        return self._list([OutboxEntry.status.in_(PROBLEM_STATUSES)], page, per_page)

    def _list(self, clauses: list[Any], page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
        page, per_page = clamp_page(page, per_page)
        with self.db.read() as session:
            total = int(session.scalar(select(func.count(OutboxEntry.id)).where(*clauses)) or 0)
            rows = session.execute(
                select(OutboxEntry, Ticket.reason, Ticket.author_handle, Tweet.text)
                .join(Ticket, Ticket.id == OutboxEntry.ticket_pk)
                .outerjoin(Tweet, Tweet.tweet_id == OutboxEntry.tweet_id)
                .where(*clauses).order_by(OutboxEntry.id).offset((page - 1) * per_page).limit(per_page)
            ).all()
            items = [{**reply_view(entry), "reason": reason, "author_handle": handle, "answers_text": text,
                      "needs_confirmation": needs_confirmation(entry.status, entry.last_error)}
                     for entry, reason, handle, text in rows]
        return items, total

    def entry(self, entry_id: int) -> dict[str, Any] | None:
        with self.db.read() as session:
            entry = session.get(OutboxEntry, entry_id)
            return reply_view(entry) if entry else None

    # --- actions -------------------------------------------------------------------------------
    def approve(self, entry_id: int, actor: str, text: str | None = None) -> dict[str, Any]:
        """Queue a held reply for the sender, as it is or with ``text`` (an edit: checked like any reply)."""
        with self.db.write() as session:
            entry = self._locked(session, entry_id, ("awaiting_approval",))
            before = entry.text
            if text is not None:
                entry.text = check_reply_text(text, entry.ticket_id)  # ReplyTextError if not postable
            edited = entry.text != before
            self._review(session, entry, actor, "queued", "edit" if edited else "approve",
                         {"before": before} if edited else {})
            return reply_view(entry)

    def reject(self, entry_id: int, actor: str, reason: str) -> dict[str, Any]:
        """Never post a held reply; ``reason`` is kept for the record."""
        reason = " ".join(reason.split())[:500]
        if not reason:
            raise ActionError("say why the reply is rejected")
        if "\x00" in reason:
            raise ActionError("NUL characters are not allowed")
        with self.db.write() as session:
            entry = self._locked(session, entry_id, ("awaiting_approval",))
            entry.review_note = reason
            self._review(session, entry, actor, "rejected", "reject", {}, body=reason)
            return reply_view(entry)

    def retry(self, entry_id: int, actor: str, confirmed_not_on_x: bool = False) -> dict[str, Any]:
        """Queue a failed reply again; one that may be on X already only with ``confirmed_not_on_x``."""
        with self.db.write() as session:
            entry = self._locked(session, entry_id, ("failed", "uncertain"))
            if needs_confirmation(entry.status, entry.last_error) and not confirmed_not_on_x:
                raise ActionError("this reply was interrupted while being posted and may be on X already: "
                                  "check the customer's thread on X, then confirm it is not there to send it again")
            data = {"from": entry.status, "error": entry.last_error, **({"confirmed_not_on_x": True}
                                                                          if confirmed_not_on_x else {})}
            entry.last_error, entry.note = None, None
            self._review(session, entry, actor, "queued", "retry", data)
            return reply_view(entry)

    @staticmethod
    def _locked(session: Session, entry_id: int, allowed: tuple[str, ...]) -> OutboxEntry:
        entry = session.scalars(select(OutboxEntry).where(OutboxEntry.id == entry_id).with_for_update()).first()
        if entry is None:
            raise ActionError(f"no reply {entry_id}")
        if entry.status not in allowed:
            by = f" (by {entry.reviewed_by})" if entry.reviewed_by and entry.status in ("queued", "rejected") else ""
            raise ActionError(f"this reply is {entry.status.replace('_', ' ')} now{by}: nothing was changed")
        return entry

    @staticmethod
    def _review(session: Session, entry: OutboxEntry, actor: str, status: str, kind: str, data: dict[str, Any],
                body: str | None = None) -> None:
        now = utcnow()
        entry.status, entry.reviewed_by, entry.reviewed_at, entry.updated_at = status, actor, now, now
        session.add(TicketEvent(ticket_pk=entry.ticket_pk, kind=kind, actor=actor, created_at=now, body=body,
                                data={"reply": entry.id, **data}))
        session.flush()

