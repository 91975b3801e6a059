"""The reply service's database and its repositories, opened together from one URL.

* :class:`~replyflow.reply.db.Database`: engine and transactions (SQLite or PostgreSQL);
* :class:`~replyflow.reply.intake.TicketIntake`: the idempotent ingest write path;
* :class:`~replyflow.reply.queries.TicketQueries`: lists, one ticket, counts, status changes;
* :class:`~replyflow.reply.outbox.OutboxRepository`: the outbox the sender drains;
* the agent workspace's: :class:`~replyflow.reply.accounts.Accounts` (users),
  :class:`~replyflow.reply.worklists.Worklists` (queues, threads), :class:`~replyflow.reply.workflow.TicketWork`
  (assign, status, notes, replies, corrections), :class:`~replyflow.reply.approvals.Approvals` (held and
  failed replies), :class:`~replyflow.reply.canned.ReplyTemplates`, :class:`~replyflow.reply.corrections.Corrections`
  and :class:`~replyflow.reply.sla.SlaFigures`.
"""

from __future__ import annotations

from replyflow.core.policy import PolicyConfig, PolicySettings
from replyflow.reply.accounts import Accounts
from replyflow.reply.approvals import Approvals
from replyflow.reply.canned import ReplyTemplates
from replyflow.reply.corrections import Corrections
from replyflow.reply.db import Database
from replyflow.reply.intake import ApprovalRule, TicketIntake
from replyflow.reply.outbox import OutboxRepository
from replyflow.reply.queries import TicketQueries
from replyflow.reply.sla import SlaFigures
from replyflow.reply.workflow import TicketWork
from replyflow.reply.worklists import Worklists
from replyflow.settings import Settings


class Store:
    """One database and its repositories, sharing it."""

    def __init__(self, url: str, policy: PolicySettings | None = None, signature: str = "",
                 approval: ApprovalRule = ApprovalRule(), lockout_failures: int = 5, lockout_minutes: float = 15.0) -> None:
        self.db = Database(url)
        self.intake = TicketIntake(self.db, policy or PolicyConfig(), signature, approval)
        self.tickets = TicketQueries(self.db)
        self.outbox = OutboxRepository(self.db)
        self.accounts = Accounts(self.db, lockout_failures, lockout_minutes)
        self.worklists = Worklists(self.db)
        self.work = TicketWork(self.db)
        self.approvals = Approvals(self.db)
        self.templates = ReplyTemplates(self.db)
        self.corrections = Corrections(self.db)
        self.sla = SlaFigures(self.db)

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(settings.db_url, PolicyConfig.from_settings(settings), settings.support_signature,
                   ApprovalRule(settings.review_all_replies, settings.reply_approval_below),
                   settings.web_lockout_failures, settings.web_lockout_minutes)

    def create_all(self) -> None:
        """Create missing tables and seed the reply templates (once per database)."""
        self.db.create_all()
        self.templates.seed()

    def dispose(self) -> None:
        self.db.dispose()
