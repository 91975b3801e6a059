"""The reply service's database and its repositories, opened together from one URL.

* :class:`~replyflow.reply.db.Database`: engine and transactions (SQLite or PostgreSQL);
* :class:`~replyflow.reply.intake.TicketIntake`: the idempotent ingest write path;
* :class:`~replyflow.reply.queries.TicketQueries`: lists, one ticket, counts, status changes;
* :class:`~replyflow.reply.outbox.OutboxRepository`: the outbox the sender drains.
"""

from __future__ import annotations

from replyflow.core.policy import PolicyConfig, PolicySettings
from replyflow.reply.db import Database
from replyflow.reply.intake import TicketIntake
from replyflow.reply.outbox import OutboxRepository
from replyflow.reply.queries import TicketQueries
from replyflow.settings import Settings


class Store:
    """One database, its repositories (``intake``, ``tickets``, ``outbox``) sharing it."""

    def __init__(self, url: str, policy: PolicySettings | None = None, signature: str = "") -> None:
        self.db = Database(url)
        self.intake = TicketIntake(self.db, policy or PolicyConfig(), signature)
        self.tickets = TicketQueries(self.db)
        self.outbox = OutboxRepository(self.db)

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(settings.db_url, PolicyConfig.from_settings(settings), settings.support_signature)

    def create_all(self) -> None:
        self.db.create_all()

    def dispose(self) -> None:
        self.db.dispose()
