"""Service levels: first-response and resolution time per ticket, against targets from the settings.

The two clocks start when the ticket is created.  First response stops when the first reply to
the ticket is *sent* (automatic or an agent's; ``tickets.first_response_at``, set by the outbox
when the sender records a post), resolution when the ticket is resolved (``tickets.resolved_at``).
A clock that is still running counts as breached as soon as its target has passed, so the
"SLA breached" queue shows tickets while something can still be done about them.

Figures (per agent, per topic) are aggregated in SQL over the tickets of the last
``sla_window_days``: the page stays fast with 100,000 tickets.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, extract, func, or_, select

from replyflow.core.labels import topic_label
from replyflow.core.times import as_utc
from replyflow.reply.db import Database
from replyflow.reply.tables import Ticket
from replyflow.reply.worktables import User

OPEN_STATUSES = ("open", "pending")


@dataclass(frozen=True)
class SlaTargets:
    first_response: timedelta
    resolution: timedelta

    @classmethod
    def from_settings(cls, settings: Any) -> SlaTargets:
        return cls(timedelta(minutes=settings.sla_first_response_minutes), timedelta(hours=settings.sla_resolution_hours))


@dataclass(frozen=True)
class Clock:
    """One SLA clock of one ticket: ``state`` is ``met``, ``breached`` or ``running``."""

    state: str
    seconds: float  # elapsed until it stopped, or until now while running
    target_seconds: float

    @property
    def label(self) -> str:
        return format_duration(self.seconds)


def format_duration(seconds: float | None) -> str:
    """``45s``, ``12m``, ``3h 05m``, ``2d 04h``: short enough for a table cell."""
    if seconds is None:
        return "—"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def clock(start: datetime | None, stop: datetime | None, target: timedelta, now: datetime) -> Clock:
    start, stop = as_utc(start), as_utc(stop)
    if start is None:
        return Clock("running", 0.0, target.total_seconds())
    elapsed = ((stop or now) - start).total_seconds()
    if elapsed > target.total_seconds():
        return Clock("breached", elapsed, target.total_seconds())
    return Clock("met" if stop else "running", elapsed, target.total_seconds())


def ticket_clocks(created_at: datetime | None, first_response_at: datetime | None, resolved_at: datetime | None,
                  targets: SlaTargets, now: datetime) -> dict[str, Clock]:
    return {"first_response": clock(created_at, first_response_at, targets.first_response, now),
            "resolution": clock(created_at, resolved_at, targets.resolution, now)}


def breached_now(targets: SlaTargets, now: datetime) -> ColumnElement[bool]:
    """Open or pending tickets past a target: no reply yet after the first-response target, or not
    resolved after the resolution target (what the "SLA breached" queue lists)."""
    return and_(
        Ticket.status.in_(OPEN_STATUSES),
        Ticket.created_at < now - targets.first_response,
        or_(Ticket.first_response_at.is_(None), Ticket.created_at < now - targets.resolution),
    )


def _seconds(dialect: str, later: Any, earlier: Any) -> Any:
    """``later - earlier`` in seconds, in SQL (SQLite stores datetimes as text, PostgreSQL as timestamps)."""
    if dialect == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return extract("epoch", later - earlier)


class SlaFigures:
    """First-response and resolution figures per agent and per topic."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def figures(self, targets: SlaTargets, now: datetime, window: timedelta) -> dict[str, Any]:
        """``{"overall": row, "agents": [row], "topics": [row]}`` over tickets created within ``window``.

        Each row: ``tickets``, ``answered``, ``first_response_avg`` (s), ``first_response_met`` (share of
        answered within target), ``resolved``, ``resolution_avg`` (s), ``resolution_met``, ``breached``.
        One scan grouped by (agent, topic); the three views are sums of its groups."""
        fr = _seconds(self.db.dialect, Ticket.first_response_at, Ticket.created_at)
        res = _seconds(self.db.dialect, Ticket.resolved_at, Ticket.created_at)
        fr_target, res_target = targets.first_response.total_seconds(), targets.resolution.total_seconds()
        fr_breach = or_(and_(Ticket.first_response_at.is_(None), Ticket.status.in_(OPEN_STATUSES),
                             Ticket.created_at < now - targets.first_response),
                        and_(Ticket.first_response_at.is_not(None), fr > fr_target))
        res_breach = or_(and_(Ticket.resolved_at.is_(None), Ticket.created_at < now - targets.resolution),
                         and_(Ticket.resolved_at.is_not(None), res > res_target))
        sums = [
            func.count(Ticket.id),
            func.count(Ticket.first_response_at),
            func.sum(case((Ticket.first_response_at.is_not(None), fr), else_=0)),
            func.sum(case((and_(Ticket.first_response_at.is_not(None), fr <= fr_target), 1), else_=0)),
            func.count(Ticket.resolved_at),
            func.sum(case((Ticket.resolved_at.is_not(None), res), else_=0)),
            func.sum(case((and_(Ticket.resolved_at.is_not(None), res <= res_target), 1), else_=0)),
            func.sum(case((or_(fr_breach, res_breach), 1), else_=0)),
        ]
        with self.db.read() as session:
            groups = session.execute(
                select(User.username, Ticket.topic_code, *sums).select_from(Ticket)
                .outerjoin(User, User.id == Ticket.assignee_id)
                .where(Ticket.created_at >= now - window).group_by(User.username, Ticket.topic_code)
            ).all()
        overall, agents, topics = [0.0] * 8, defaultdict(lambda: [0.0] * 8), defaultdict(lambda: [0.0] * 8)
        for username, code, *values in groups:
            for totals in (overall, agents[username or ""], topics[code]):
                for i, value in enumerate(values):
                    totals[i] += float(value or 0)
        return {
            "overall": _row("all tickets", overall),
            "agents": sorted((_row(name or "(unassigned)", v) for name, v in agents.items()), key=lambda r: r["name"]),
            "topics": sorted((_row(topic_label(code), v) for code, v in topics.items()), key=lambda r: -r["tickets"]),
        }


def _row(name: str, totals: list[float]) -> dict[str, Any]:
    tickets, answered, fr_sum, fr_met, resolved, res_sum, res_met, breached = totals
    return {
        "name": name, "tickets": int(tickets), "answered": int(answered),
        "first_response_avg": fr_sum / answered if answered else None,
        "first_response_met": fr_met / answered if answered else None,
        "resolved": int(resolved),
        "resolution_avg": res_sum / resolved if resolved else None,
        "resolution_met": res_met / resolved if resolved else None,
        "breached": int(breached),
    }
