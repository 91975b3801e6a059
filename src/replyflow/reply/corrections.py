"""Agents' corrections of the model's labels: the CSV export for training, and model-vs-agent agreement.

The export holds the latest correction of each tweet (an agent may change their mind), with the
columns ``tweet_id,text,sentiment,topic,needs_reply,corrected_by,corrected_at``; ``replyflow train``
reads it as extra training rows only (never validation or test: the agents' labels are not blind).
An empty ``topic`` means "no support topic".

Agreement is measured per week of the correction and per class of the agent's label: of the tweets
an agent labelled ``Baggage Issue`` that week, the share the model had labelled the same.  It shows
where the model is wrong in production, and whether retraining helped.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from replyflow.core.times import as_utc, iso
from replyflow.reply.db import Database
from replyflow.reply.tables import Tweet
from replyflow.reply.worktables import Correction

EXPORT_COLUMNS = ("tweet_id", "text", "sentiment", "topic", "needs_reply", "corrected_by", "corrected_at")
NO_TOPIC = "none"
FIELDS = ("sentiment", "topic", "needs_reply")


def week_of(moment: datetime) -> str:
    """The Monday of ``moment``'s ISO week, ``2026-11-23``: a sortable label for a weekly bucket."""
    return (moment.date() - timedelta(days=moment.weekday())).isoformat()


class Corrections:
    def __init__(self, db: Database) -> None:
        self.db = db

    def latest(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """The latest correction of each tweet (corrected since ``since``), oldest first, with the tweet text."""
        newest = select(func.max(Correction.id)).group_by(Correction.tweet_pk)
        query = (select(Correction, Tweet.tweet_id, Tweet.text).join(Tweet, Tweet.id == Correction.tweet_pk)
                 .where(Correction.id.in_(newest)).order_by(Correction.id))
        if since is not None:
            query = query.where(Correction.corrected_at >= since)
        with self.db.read() as session:
            rows = session.execute(query).all()
        return [{"tweet_id": tweet_id, "text": text, "sentiment": c.sentiment, "topic": c.topic,
                 "needs_reply": c.needs_reply, "model_sentiment": c.model_sentiment, "model_topic": c.model_topic,
                 "model_needs_reply": c.model_needs_reply, "corrected_by": c.corrected_by,
                 "corrected_at": as_utc(c.corrected_at)} for c, tweet_id, text in rows]

    def export_csv(self, path: Path) -> int:
        """Write the latest correction per tweet to ``path``; returns the number of rows."""
        rows = self.latest()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(EXPORT_COLUMNS)
            for r in rows:
                writer.writerow([r["tweet_id"], r["text"], r["sentiment"], r["topic"] or "",
                                 "true" if r["needs_reply"] else "false", r["corrected_by"], iso(r["corrected_at"])])
        return len(rows)

    def agreement(self, since: datetime) -> dict[str, dict[str, Any]]:
        """Per field: ``{"weeks": [...], "classes": {class: {week: (agreed, total)}}, "overall": {week: (agreed, total)}}``."""
        result: dict[str, dict[str, Any]] = {}
        rows = self.latest(since)
        weeks = sorted({week_of(r["corrected_at"]) for r in rows})
        for field in FIELDS:
            classes: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
            overall: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            for r in rows:
                agent, model = _label(field, r[field]), _label(field, r[f"model_{field}"])
                week = week_of(r["corrected_at"])
                for cell in (classes[agent][week], overall[week]):
                    cell[0] += int(agent == model)
                    cell[1] += 1
            result[field] = {
                "weeks": weeks,
                "classes": {cls: {w: tuple(v) for w, v in per_week.items()} for cls, per_week in sorted(classes.items())},
                "overall": {w: tuple(v) for w, v in overall.items()},
            }
        return result


def _label(field: str, value: Any) -> str:
    if field == "needs_reply":
        return "needs reply" if value else "no reply"
    if field == "topic":
        return str(value) if value else NO_TOPIC
    return str(value) if value else "?"
