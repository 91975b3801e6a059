"""The outbox sender: posts queued replies to X (or pretends to, in dry-run mode).

Delivery is **at most once**.  An entry is claimed with a conditional UPDATE
(``queued -> sending``) that starts a lease of ``sender_lease_seconds``, so two senders never
post the same entry; the sender renews the lease while it waits for X (rate limits, backoff).
If a sender dies after claiming and before recording the result, nobody can know whether X
received the tweet: any running sender (not only one that starts) finds the entry when its
lease expires and marks it ``uncertain``, logs it and counts it, for a human to check; it is
never posted again automatically.  Within
one attempt, retries after 429 (wait for ``x-rate-limit-reset``) and 5xx (exponential
backoff) are safe because X rejects an identical reply with 403 "duplicate content",
which we record as sent.  Other 4xx are permanent: ``failed`` with the error visible.
The SQL lives in :class:`replyflow.reply.outbox.OutboxRepository`; the X calls and the
retry policy in :mod:`replyflow.core.xapi`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import requests
import tweepy

from replyflow.core.xapi import describe_error, retrying, user_client
from replyflow.reply.db import Database
from replyflow.reply.outbox import OutboxRepository, SendOutcome
from replyflow.settings import Settings

if TYPE_CHECKING:
    from replyflow.reply.metrics import ReplyMetrics

log = logging.getLogger(__name__)

DUPLICATE_MARKER = "duplicate content"


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
        metrics: ReplyMetrics | None = None,
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
        self.metrics = metrics
        self.stopping = threading.Event()  # set: finish the entry in flight, claim no more

    def reclaim_expired(self) -> int:
        """Mark entries whose lease expired (their sender died mid-post) ``uncertain``; never re-post them."""
        tweet_ids = self.outbox.reclaim_expired(timedelta(seconds=self.settings.sender_lease_seconds))
        for tweet_id in tweet_ids:
            log.error("reply to tweet %s is UNCERTAIN: its sender stopped while posting it (lease of %.0f s expired); "
                      "it may or may not be on X and is not re-posted: check by hand", tweet_id,
                      self.settings.sender_lease_seconds)  # fmt: skip
        if tweet_ids and self.metrics is not None:
            self.metrics.uncertain.inc(len(tweet_ids))
        return len(tweet_ids)

    def _waiting(self, entry_id: int | None) -> Callable[[float], None]:
        """``sleep`` for the retry policy that keeps the entry's lease alive while it waits."""
        if entry_id is None:
            return self.sleep
        step = max(1.0, self.settings.sender_lease_seconds / 3)

        def sleep(seconds: float) -> None:
            while seconds > 0:
                self.outbox.renew(entry_id)
                self.sleep(min(step, seconds))
                seconds -= step
            self.outbox.renew(entry_id)

        return sleep

    def _on_wait(self, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.retry_waits.inc()

    def _on_rate_limit(self, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.rate_limit_waits.inc()
            self.metrics.rate_limit_wait_seconds.inc(seconds)

    def post(self, text: str, in_reply_to: str, entry_id: int | None = None) -> SendOutcome:
        """Post one reply, retrying rate limits and server errors; classify the result."""
        if self.dry_run:
            return SendOutcome("sent", None, note="dry-run")
        retry = retrying(self.settings.sender_max_attempts, sleep=self._waiting(entry_id), clock=self.clock,
                         on_wait=self._on_wait, on_rate_limit=self._on_rate_limit,
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
        while not self.stopping.is_set():
            batch = self.outbox.queued(self.batch_size)
            if not batch:
                return counts
            for entry in batch:
                if self.stopping.is_set():
                    break
                if not self.outbox.claim(entry.id):
                    counts["skipped"] += 1
                    continue
                started = self.clock()
                try:
                    outcome = self.post(entry.text, entry.tweet_id, entry.id)
                except Exception as exc:  # noqa: BLE001 - one bad entry must not stop the loop
                    log.exception("unexpected error posting reply to %s", entry.tweet_id)
                    outcome = SendOutcome("failed", error=f"unexpected: {exc}"[:500])
                self.outbox.record(entry.id, outcome)
                counts[outcome.status] += 1
                if self.metrics is not None:
                    self.metrics.sends.labels(outcome.status).inc()
                    self.metrics.send_seconds.observe(max(0.0, self.clock() - started))
                if outcome.status == "failed":
                    log.error("reply to tweet %s failed: %s", entry.tweet_id, outcome.error)
                else:
                    log.info("reply to tweet %s %s", entry.tweet_id, outcome.note)
        return counts

    def run_forever(self, stop: threading.Event | None = None, wakeup: threading.Event | None = None) -> None:
        """Poll the outbox until ``stop`` is set; ``wakeup`` cuts the poll wait short.

        Every round first reclaims expired leases, so an entry a dead sender left in ``sending``
        is surfaced within ``sender_lease_seconds`` (plus a poll), not only when a sender starts."""
        stop = stop or self.stopping
        wakeup = wakeup or threading.Event()
        log.info("sender started (dry_run=%s, lease %.0f s)", self.dry_run, self.settings.sender_lease_seconds)
        while not stop.is_set():
            try:
                self.reclaim_expired()
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
        sender.reclaim_expired()
        counts = sender.drain_once()
        log.info("outbox drained: %s", counts)
        return counts
    with stop_on_signals(sender.stopping):
        sender.run_forever()
    return None


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (a graceful stop: the entry in flight is finished); main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        log.warning("%s received: stopping after the reply in flight", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
