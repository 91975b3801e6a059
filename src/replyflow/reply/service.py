"""The reply service layer: what one reply-service process does, for the API and the dashboard alike.

Both blueprints (``/api/v1`` and the dashboard) call :func:`current_service` and the methods
here; neither reaches into the other or into the repositories' SQL.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app

from replyflow.core.policy import PolicyConfig, decide
from replyflow.reply.intake import IngestResult
from replyflow.reply.queries import TicketFilter
from replyflow.reply.store import Store
from replyflow.settings import Settings


@dataclass
class ReplyService:
    """Settings, the store, the API token and the in-process sender's wake-up of one service."""

    settings: Settings
    store: Store
    api_token: str
    sender_wakeup: threading.Event = field(default_factory=threading.Event)
    policy: PolicyConfig = field(init=False)

    def __post_init__(self) -> None:
        self.policy = PolicyConfig.from_settings(self.settings)

    # --- writes ------------------------------------------------------------------------
    def ingest(self, records: Sequence[Mapping[str, Any]]) -> list[IngestResult]:
        """Apply the reply policy to validated enriched tweets and store them (idempotent by tweet_id).

        The policy runs here again whatever the client sent: the service never trusts a
        ``needs_reply`` from outside.  Wakes the in-process sender when replies were queued."""
        items = [(record, decide(record, self.policy)) for record in records]
        results = self.store.intake.ingest_many(items)
        if any(r.reply_queued for r in results):
            self.sender_wakeup.set()
        return results

    def set_status(self, ticket_id: str, status: str) -> dict[str, Any] | None:
        return self.store.tickets.set_status(ticket_id, status)

    # --- reads -------------------------------------------------------------------------
    def list_tickets(self, filters: TicketFilter, page: int = 1, per_page: int = 50) -> tuple[list[dict[str, Any]], int]:
        return self.store.tickets.list_tickets(filters, page, per_page)

    def get_ticket(self, ticket_id: str) -> dict[str, Any] | None:
        return self.store.tickets.get_ticket(ticket_id)

    def stats(self) -> dict[str, Any]:
        """Counts per sentiment, topic, status and reason, plus the outbox by status."""
        return {**self.store.tickets.stats(), "outbox": self.store.outbox.counts()}

    def tweet_times(self) -> list[datetime]:
        return self.store.tickets.tweet_times()

    def health(self) -> dict[str, Any]:
        """``{"status": "ok"|"degraded", "database": ..., "outbox": counts}`` (outbox only when reachable)."""
        ok = self.store.db.ping()
        body: dict[str, Any] = {"status": "ok" if ok else "degraded", "database": "ok" if ok else "unreachable"}
        if ok:
            body["outbox"] = self.store.outbox.counts()
        return body


def current_service() -> ReplyService:
    """The :class:`ReplyService` of the app handling the current request."""
    return current_app.extensions["replyflow"]
