"""The outbox sender: posts queued replies to X (or pretends to, in dry-run mode).

Delivery is **at most once**.  An entry is claimed with a conditional UPDATE
(``queued -> sending``), so two senders never post the same entry.  If the process dies
after claiming and before recording the result, we cannot know whether X received the
tweet; on the next start such stale ``sending`` entries are marked ``failed`` with an
explicit ``last_error`` for a human to check, never posted again automatically.  Within
one attempt, retries after 429 (wait for ``x-rate-limit-reset``) and 5xx (exponential
backoff) are safe because X rejects an identical reply with 403 "duplicate content",
which we record as sent.  Other 4xx are permanent: ``failed`` with the error visible.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import requests
import tweepy
from requests.adapters import HTTPAdapter
from sqlalchemy import select, update
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from replyflow.ingest.x_api import rate_limit_wait
from replyflow.reply.models import OutboxEntry, utcnow
from replyflow.reply.store import Store
from replyflow.settings import Settings

log = logging.getLogger(__name__)

DUPLICATE_MARKER = "duplicate content"
X_API_HOST = "https://api.twitter.com"
STALE_SENDING = timedelta(minutes=5)


@dataclass(frozen=True)
class SendOutcome:
    status: str  # sent | failed
    posted_tweet_id: str | None = None
    note: str | None = None
    error: str | None = None


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, (tweepy.TooManyRequests, tweepy.TwitterServerError, requests.ConnectionError, requests.Timeout))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    response = getattr(exc, "response", None)
    if response is not None and DUPLICATE_MARKER not in text:
        try:
            detail = response.json().get("detail")
        except Exception:  # noqa: BLE001 - best effort
            detail = None
        if detail:
            text = f"{text} {detail}".strip()
    return text[:500]


class _RebaseAdapter(HTTPAdapter):
    """Sends tweepy's hard-coded ``https://api.twitter.com`` requests to another base URL
    (``x_api_base_url``: a local fake X API in end-to-end tests)."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if request.url and request.url.startswith(X_API_HOST):
            request.url = self.base_url + request.url[len(X_API_HOST):]
        return super().send(request, **kwargs)


class Sender:
    """Drains the outbox.  ``client``, ``sleep`` and ``clock`` are injectable for tests."""

    def __init__(
        self,
        settings: Settings,
        client: Any | None = None,
        *,
        store: Store | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        batch_size: int = 50,
    ) -> None:
        self.settings = settings
        if store is None:  # a store handed in (the API's) already has its tables
            store = Store.from_settings(settings)
            store.create_all()
        self.store = store
        self.sleep = sleep
        self.clock = clock
        self.batch_size = batch_size
        self.dry_run = settings.dry_run
        self.client = client
        if not self.dry_run and self.client is None:
            self.client = self._make_client(settings)

    @staticmethod
    def _make_client(settings: Settings) -> tweepy.Client:
        keys = {
            "consumer_key": settings.secret("x_api_key"),
            "consumer_secret": settings.secret("x_api_secret"),
            "access_token": settings.secret("x_access_token"),
            "access_token_secret": settings.secret("x_access_token_secret"),
        }
        missing = [k for k, v in keys.items() if not v]
        if missing:
            raise RuntimeError(f"live sending needs X user credentials; missing: {', '.join(missing)} (or set dry_run)")
        client = tweepy.Client(**keys)  # wait_on_rate_limit off: we wait ourselves, testably
        if settings.x_api_base_url.rstrip("/") != X_API_HOST:
            client.session.mount(X_API_HOST, _RebaseAdapter(settings.x_api_base_url))
        return client

    # --- claiming ----------------------------------------------------------------------
    def recover_stale(self, older_than: timedelta = STALE_SENDING) -> int:
        """Mark entries stuck in ``sending`` (a crashed sender) failed, never re-post them."""
        cutoff = utcnow() - older_than
        with self.store.write() as session:
            result = session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.status == "sending", OutboxEntry.claimed_at < cutoff)
                .values(status="failed", updated_at=utcnow(),
                        last_error="interrupted while sending: may or may not be on X; not re-posted (at-most-once), check and reply by hand")
                .execution_options(synchronize_session=False)
            )
            count = int(result.rowcount or 0)  # type: ignore[attr-defined]
        if count:
            log.warning("%d outbox entr%s left in 'sending' by a crashed sender marked failed", count, "y" if count == 1 else "ies")
        return count

    def claim(self, entry_id: int) -> bool:
        """Atomically take one queued entry; False if another sender got it first."""
        now = utcnow()
        with self.store.write() as session:
            result = session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id == entry_id, OutboxEntry.status == "queued")
                .values(status="sending", claimed_at=now, updated_at=now, attempts=OutboxEntry.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]

    def _queued(self) -> list[tuple[int, str, str]]:
        with self.store.read() as session:
            rows = session.execute(
                select(OutboxEntry.id, OutboxEntry.tweet_id, OutboxEntry.text)
                .where(OutboxEntry.status == "queued")
                .order_by(OutboxEntry.id)
                .limit(self.batch_size)
            ).all()
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    # --- posting -----------------------------------------------------------------------
    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, tweepy.TooManyRequests):
            return rate_limit_wait(exc.response.headers if exc.response is not None else None, self.clock())
        return float(wait_exponential(multiplier=1, min=1, max=60)(state))

    def post(self, text: str, in_reply_to: str) -> SendOutcome:
        """Post one reply, retrying rate limits and server errors; classify the result."""
        if self.dry_run:
            return SendOutcome("sent", None, note="dry-run")
        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            wait=self._wait,
            stop=stop_after_attempt(max(1, self.settings.sender_max_attempts)),
            sleep=self.sleep,
            reraise=True,
            before_sleep=lambda s: log.warning("posting reply to %s failed (%s), retrying", in_reply_to,
                                               _describe(s.outcome.exception()) if s.outcome else "?"),
        )
        try:
            response = retrying(self.client.create_tweet, text=text, in_reply_to_tweet_id=in_reply_to)
        except tweepy.Forbidden as exc:
            message = _describe(exc)
            if DUPLICATE_MARKER in message.lower() or DUPLICATE_MARKER in (exc.response.text or "").lower():
                return SendOutcome("sent", None, note="duplicate (already on X)")
            return SendOutcome("failed", error=message)
        except (tweepy.HTTPException, requests.RequestException) as exc:
            return SendOutcome("failed", error=_describe(exc))
        data = getattr(response, "data", None) or {}
        return SendOutcome("sent", str(data.get("id")) if data.get("id") else None, note="posted")

    def _record(self, entry_id: int, outcome: SendOutcome) -> None:
        now = utcnow()
        with self.store.write() as session:
            session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id == entry_id)
                .values(status=outcome.status, posted_tweet_id=outcome.posted_tweet_id, note=outcome.note,
                        last_error=outcome.error, updated_at=now, sent_at=now if outcome.status == "sent" else None)
                .execution_options(synchronize_session=False)
            )

    def drain_once(self) -> dict[str, int]:
        """Send everything queued now; returns counts per outcome."""
        counts = {"sent": 0, "failed": 0, "skipped": 0}
        while True:
            batch = self._queued()
            if not batch:
                return counts
            for entry_id, tweet_id, text in batch:
                if not self.claim(entry_id):
                    counts["skipped"] += 1
                    continue
                try:
                    outcome = self.post(text, tweet_id)
                except Exception as exc:  # noqa: BLE001 - one bad entry must not stop the loop
                    log.exception("unexpected error posting reply to %s", tweet_id)
                    outcome = SendOutcome("failed", error=f"unexpected: {exc}"[:500])
                self._record(entry_id, outcome)
                counts[outcome.status] += 1
                if outcome.status == "failed":
                    log.error("reply to tweet %s failed: %s", tweet_id, outcome.error)
                else:
                    log.info("reply to tweet %s %s", tweet_id, outcome.note)

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

