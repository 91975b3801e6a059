"""Posting enriched tweets that need a reply to the reply service, without losing any.

Why a blocking retry: the stream's micro-batch only commits (and its Kafka offsets only
advance) after :meth:`ReplyClient.post` returns, so while the reply service is down the
batch waits and retries with capped exponential backoff instead of dropping rows.  The
service is idempotent by ``tweet_id``, so a batch that is replayed after a crash or a stop
posts the same tweets again harmlessly (same tickets, no second outbox entry).

Errors that retrying cannot fix (4xx other than 408/429: a wrong token, a malformed row)
raise :class:`ReplyRejected` and fail the query loudly rather than spinning forever.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from replyflow.core.tokens import read_api_token, token_file

log = logging.getLogger(__name__)
T = TypeVar("T")

REPLIES_PATH = "/api/v1/replies"
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class ReplyUnavailable(RuntimeError):
    """The reply service did not answer usefully (down, timeout, 5xx, 429): worth retrying."""


class ReplyRejected(RuntimeError):
    """The reply service refused the request (4xx): retrying the same request cannot help."""


class ReplyStopped(RuntimeError):
    """A stop was requested while waiting for the reply service; the batch will be replayed."""


@dataclass
class PostResult:
    """What one batch's posting achieved."""

    posted: int = 0
    tickets: int = 0
    requests: int = 0
    attempts: int = 0


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive runs of at most ``size`` items (the API's ``api_max_batch``), taken as they arrive: the
    stream hands in an iterator over Spark's rows, so the first chunk is posted while later rows are fetched."""
    if size < 1:
        raise ValueError("chunk size must be >= 1")
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def after_first(items: Iterable[T], action: Callable[[], None]) -> Iterator[T]:
    """``items`` unchanged, with ``action()`` run once: when the first item has arrived, or at the end if none did.

    Why: the stream starts its parquet and topic writes only once Spark has handed over the first reply rows,
    so the job the customer waits for is the first one Spark schedules."""
    started = False
    for item in items:
        if not started:
            started = True
            action()
        yield item
    if not started:
        action()


def api_token(settings: Any) -> str | None:
    """The reply service's token: configured, else the one ``serve``/``up`` generated in the state dir.

    Never generates one (only the service does): a missing token is reported, and the
    service's 401 then stops the query with a clear error.
    """
    token = read_api_token(settings)
    if token is None:
        log.warning(
            "No API token configured (REPLYFLOW_API_TOKEN) and none in %s: the reply service will refuse",
            token_file(settings),
        )
    return token


def _results(body: Any) -> list[dict[str, Any]]:
    """Per-tweet results from the API's ``{"results": [...]}`` answer to ``{"tweets": [...]}``."""
    results = body.get("results") if isinstance(body, dict) else None
    return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


class ReplyClient:
    """POSTs ``{"tweets": [...]}`` to ``{base_url}/api/v1/replies`` in chunks, retrying while down.

    ``stop_event``: when set, waiting stops at once and :class:`ReplyStopped` is raised, so a
    SIGTERM is never stuck behind a dead reply service.  ``max_wait`` caps one backoff sleep;
    ``give_up_after`` (seconds, None = never) bounds the total wait, for tests and tools.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None,
        max_batch: int = 500,
        timeout: float = 30.0,
        max_wait: float = 30.0,
        give_up_after: float | None = None,
        stop_event: threading.Event | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + REPLIES_PATH
        self.max_batch = max_batch
        self.timeout = timeout
        self.max_wait = max_wait
        self.give_up_after = give_up_after
        self.stop_event = stop_event or threading.Event()
        self.session = session or requests.Session()
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._sleep = sleep or self.stop_event.wait

    @classmethod
    def from_settings(cls, settings: Any, stop_event: threading.Event | None = None) -> ReplyClient:
        return cls(settings.reply_api_url, api_token(settings), max_batch=settings.api_max_batch, stop_event=stop_event)

    # --- one request ---------------------------------------------------------------------
    def _post_once(self, chunk: Sequence[str]) -> list[dict[str, Any]]:
        # The rows arrive as JSON text (Spark wrote it): joined, not parsed and re-encoded.
        body = ('{"tweets":[' + ",".join(chunk) + "]}").encode("utf-8")
        try:
            response = self.session.post(self.url, data=body, headers=self._headers, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            # ChunkedEncodingError: the service died while sending its answer; whether it stored the tweets or not,
            # posting them again is safe (idempotent by tweet_id).
            raise ReplyUnavailable(f"{type(exc).__name__}: {exc}") from None
        if response.status_code in RETRYABLE_STATUS:
            raise ReplyUnavailable(f"HTTP {response.status_code}: {response.text[:200]}")
        if response.status_code >= 400:
            raise ReplyRejected(f"reply service refused {len(chunk)} tweets: HTTP {response.status_code}: {response.text[:500]}")
        try:
            return _results(response.json())
        except ValueError:
            return []

    def _stop(self, state: RetryCallState) -> bool:
        if self.stop_event.is_set():
            return True
        return self.give_up_after is not None and (state.seconds_since_start or 0.0) >= self.give_up_after

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "Reply service unavailable at %s (%s); attempt %d failed, retrying in %.1f s. "
            "The batch is held (not committed), no tweet is lost.",
            self.url, exc, state.attempt_number, wait,
        )  # fmt: skip

    def _post_chunk(self, chunk: Sequence[str], result: PostResult) -> list[dict[str, Any]]:
        retrying = Retrying(
            retry=retry_if_exception_type(ReplyUnavailable),
            wait=wait_exponential(multiplier=0.5, min=0.5, max=self.max_wait),
            stop=self._stop,
            before_sleep=self._before_sleep,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    if attempt.retry_state.attempt_number > 1 and self.stop_event.is_set():
                        raise ReplyStopped("stop requested while the reply service was unavailable")
                    result.attempts += 1
                    return self._post_once(chunk)
        except ReplyUnavailable as exc:
            if self.stop_event.is_set():
                raise ReplyStopped(f"stop requested while the reply service was unavailable ({exc})") from None
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    # --- a batch -------------------------------------------------------------------------
    def post(self, rows: Iterable[str]) -> PostResult:
        """Post every row (each one enriched tweet as JSON text), chunked as they come; returns once all chunks
        were accepted."""
        result = PostResult()
        for chunk in chunked(rows, self.max_batch):
            answers = self._post_chunk(chunk, result)
            result.requests += 1
            result.posted += len(chunk)
            result.tickets += sum(1 for r in answers if r.get("ticket_id"))
        return result
