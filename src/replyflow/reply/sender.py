"""The outbox sender: posts queued replies to X (or pretends to, in dry-run mode).

Delivery is **at most once**.  An entry is claimed with a conditional UPDATE
(``queued -> sending``), so two senders never post the same entry.  If the process dies
after claiming and before recording the result, we cannot know whether X received the
tweet; on the next start such stale ``sending`` entries are marked ``failed`` with an
explicit ``last_error`` for a human to check, never posted again automatically.  Within
one attempt, retries after 429 (wait for ``x-rate-limit-reset``) and 5xx (exponential
backoff) are safe because X rejects an identical reply with 403 "duplicate content",
which we record as sent.  Other 4xx are permanent: ``failed`` with the error visible.
The SQL lives in :class:`replyflow.reply.outbox.OutboxRepository`; the X calls and the
retry policy in :mod:`replyflow.core.xapi`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import requests
import tweepy

from replyflow.core.xapi import describe_error, retrying, user_client
from replyflow.reply.db import Database
from replyflow.reply.outbox import OutboxRepository, SendOutcome
from replyflow.settings import Settings

log = logging.getLogger(__name__)

DUPLICATE_MARKER = "duplicate content"
STALE_SENDING = timedelta(minutes=5)


class Sender:
    """Drains the outbox.  ``client``, ``sleep`` and ``clock`` are injectable for tests."""

    def __init__(
        self,
        settings: Settings,
        client: Any | None = None,
        *,
        outbox: OutboxRepository | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        batch_size: int = 50,
    ) -> None:
        self.settings = settings
        if outbox is None:  # one handed in (the API's) already has its tables
            db = Database(settings.db_url)
            db.create_all()
            outbox = OutboxRepository(db)
        self.outbox = outbox
        self.sleep = sleep
        self.clock = clock
        self.batch_size = batch_size
        self.dry_run = settings.dry_run
        self.client = client
        if not self.dry_run and self.client is None:
            self.client = user_client(settings)

    def recover_stale(self, older_than: timedelta = STALE_SENDING) -> int:
        """Mark entries stuck in ``sending`` (a crashed sender) failed, never re-post them."""
        count = self.outbox.recover_stale(older_than)
        if count:
            log.warning("%d outbox entr%s left in 'sending' by a crashed sender marked failed", count, "y" if count == 1 else "ies")
        return count

    def post(self, text: str, in_reply_to: str) -> SendOutcome:
        """Post one reply, retrying rate limits and server errors; classify the result."""
        if self.dry_run:
            return SendOutcome("sent", None, note="dry-run")
        retry = retrying(self.settings.sender_max_attempts, sleep=self.sleep, clock=self.clock,
                         what=f"posting the reply to {in_reply_to}")
        try:
            response = retry(self.client.create_tweet, text=text, in_reply_to_tweet_id=in_reply_to)
        except tweepy.Forbidden as exc:
            message = describe_error(exc)
            if DUPLICATE_MARKER in message.lower() or DUPLICATE_MARKER in (exc.response.text or "").lower():
                return SendOutcome("sent", None, note="duplicate (already on X)")
            return SendOutcome("failed", error=message)
        except (tweepy.HTTPException, requests.RequestException) as exc:
            return SendOutcome("failed", error=describe_error(exc))
        data = getattr(response, "data", None) or {}
        return SendOutcome("sent", str(data.get("id")) if data.get("id") else None, note="posted")

    def drain_once(self) -> dict[str, int]:
        """Send everything queued now; returns counts per outcome."""
        counts = {"sent": 0, "failed": 0, "skipped": 0}
        while True:
            batch = self.outbox.queued(self.batch_size)
            if not batch:
                return counts
            for entry in batch:
                if not self.outbox.claim(entry.id):
                    counts["skipped"] += 1
                    continue
                try:
                    outcome = self.post(entry.text, entry.tweet_id)
                except Exception as exc:  # noqa: BLE001 - one bad entry must not stop the loop
                    log.exception("unexpected error posting reply to %s", entry.tweet_id)
                    outcome = SendOutcome("failed", error=f"unexpected: {exc}"[:500])
                self.outbox.record(entry.id, outcome)
                counts[outcome.status] += 1
                if outcome.status == "failed":
                    log.error("reply to tweet %s failed: %s", entry.tweet_id, outcome.error)
                else:
                    log.info("reply to tweet %s %s", entry.tweet_id, outcome.note)

    def run_forever(self, stop: threading.Event | None = None, wakeup: threading.Event | None = None) -> None:
        """Poll the outbox until ``stop`` is set; ``wakeup`` cuts the poll wait short."""
        stop = stop or threading.Event()
        wakeup = wakeup or threading.Event()
        self.recover_stale()
        log.info("sender started (dry_run=%s)", self.dry_run)
        while not stop.is_set():
            try:
                self.drain_once()
            except Exception:  # noqa: BLE001 - e.g. database briefly unavailable
                log.exception("sender loop error; retrying")
            wakeup.wait(self.settings.sender_poll_seconds)
            wakeup.clear()
        log.info("sender stopped")


def run_sender(settings: Settings, once: bool = False) -> dict[str, int] | None:
    """CLI entry: drain once (returns counts) or loop until Ctrl-C."""
    sender = Sender(settings)
    if once:
        sender.recover_stale()
        counts = sender.drain_once()
        log.info("outbox drained: %s", counts)
        return counts
    try:
        sender.run_forever()
    except KeyboardInterrupt:
        log.info("interrupted")
    return None
