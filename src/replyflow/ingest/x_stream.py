"""Live ingestion from the X filtered stream (tweepy 4.17 ``StreamingClient``).

:func:`run_filtered_stream` keeps one filtered-stream connection open.  The stream rules are
synced from ``settings.x_stream_rules`` first (missing ones added with ``tag = value``, stale
ones deleted), so ``matched_rules`` carries readable rule values.  Reconnects follow X's
guidance (network errors: linear back-off 0.25 s .. 16 s; HTTP errors: exponential 5 s ..
320 s; 429: at least 60 s or until ``x-rate-limit-reset``).  tweepy reconnects on its own too,
but its waits are fixed ``time.sleep`` calls and it only sees status codes; we stop tweepy's
loop after each disconnect and run the back-off here, with the response headers at hand and an
injectable ``sleep`` so tests never wait.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import requests
import tweepy

from replyflow.core.contracts import load_json_object
from replyflow.core.xapi import XApiConfigError, bearer_token, rate_limit_wait
from replyflow.ingest.producer import TweetProducer
from replyflow.ingest.x_tweets import EXPANSIONS, STAGE, TWEET_FIELDS, USER_FIELDS, IngestStats, publish_tweets
from replyflow.settings import Settings

log = logging.getLogger(__name__)


def plan_rule_sync(existing: Iterable[Mapping[str, Any]], wanted: Sequence[str]) -> tuple[list[str], list[str]]:
    """Rules to add (values) and rule ids to delete so the stream has exactly ``wanted``."""
    existing = list(existing)
    have = {str(r["value"]) for r in existing}
    wanted_set = set(wanted)
    to_add = [v for v in dict.fromkeys(wanted) if v not in have]
    to_delete = [str(r["id"]) for r in existing if str(r["value"]) not in wanted_set]
    return to_add, to_delete


class _Stream(tweepy.StreamingClient):
    """StreamingClient that publishes each matching tweet and hands reconnects to our loop."""

    def __init__(self, bearer_token: str, producer: TweetProducer, stats: IngestStats) -> None:
        super().__init__(bearer_token, wait_on_rate_limit=False, max_retries=0)
        self.producer = producer
        self.stats = stats
        self.last_event: tuple[str, Any] = ("none", None)
        self.last_headers: Mapping[str, str] = {}
        self.session.hooks["response"].append(self._remember_headers)

    def _remember_headers(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.last_headers = dict(response.headers)

    def on_connect(self) -> None:
        self.stats.connections += 1
        log.info("X filtered stream connected")

    def on_data(self, raw_data: bytes) -> None:
        try:
            message = load_json_object(raw_data)
        except ValueError as exc:
            self.producer.dead_letter(raw_data, f"x-stream: unparsable message: {exc}", STAGE)
            self.stats.dead_lettered += 1
            return
        if "data" in message:
            rules = [str(r.get("tag") or r.get("id")) for r in message.get("matching_rules") or []]
            publish_tweets(self.producer, [message["data"]], message.get("includes"), "x-stream", self.stats, rules)
        for error in message.get("errors") or []:
            # e.g. operational-disconnect; the connection usually ends right after.
            log.warning("X stream error message: %s", error)
        self.producer.poll(0)

    def on_keep_alive(self) -> None:
        self.stats.keep_alives += 1

    def on_closed(self, response: requests.Response) -> None:
        log.warning("X closed the stream connection")
        self.last_event = ("closed", None)
        self.disconnect()

    def on_connection_error(self) -> None:
        self.last_event = ("network", None)
        self.disconnect()

    def on_request_error(self, status_code: int) -> None:
        log.error("X stream HTTP error %s", status_code)
        self.last_event = ("http", status_code)
        self.disconnect()

    def on_exception(self, exception: Exception) -> None:
        self.last_event = ("exception", exception)


class StreamBackoff:
    """X's reconnect schedule for the filtered stream; one instance per run, reset on success."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.network = 0.0
        self.http = 5.0

    def next(self, kind: str, status: int | None = None, headers: Mapping[str, str] | None = None, now: float = 0.0) -> float:
        if kind in ("network", "closed"):
            wait, self.network = self.network, min(self.network + 0.25, 16.0)
            return wait
        if status == 429:
            wait = max(self.http, 60.0, rate_limit_wait(headers, now, default=0.0))
            self.http = min(max(self.http, 60.0) * 2, 320.0)
            return wait
        wait, self.http = self.http, min(self.http * 2, 320.0)
        return wait


def sync_stream_rules(client: tweepy.StreamingClient, wanted: Sequence[str]) -> tuple[list[str], list[str]]:
    """Make the stream's rules exactly ``wanted`` (tag = value); return (added values, deleted ids)."""
    current = client.get_rules()
    existing = [{"id": r.id, "value": r.value} for r in (current.data or [])]
    to_add, to_delete = plan_rule_sync(existing, wanted)
    if to_delete:
        client.delete_rules(to_delete)
        log.info("Deleted %d stale stream rules", len(to_delete))
    if to_add:
        response = client.add_rules([tweepy.StreamRule(value=v, tag=v) for v in to_add])
        for error in getattr(response, "errors", None) or []:
            raise XApiConfigError(f"X rejected a stream rule: {error}")
        log.info("Added stream rules: %s", to_add)
    return to_add, to_delete


def run_filtered_stream(
    settings: Settings,
    *,
    producer: TweetProducer | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    max_connections: int | None = None,
) -> IngestStats:
    """Sync rules, then stay connected to the filtered stream, publishing every matched tweet.

    Runs until interrupted (or ``max_connections`` connection attempts, for tests).  A 401/403
    is not retried: the token or the access level is wrong and waiting will not fix it.
    """
    prod = producer if producer is not None else TweetProducer(settings)
    stats = IngestStats()
    client = _Stream(bearer_token(settings), prod, stats)
    sync_stream_rules(client, settings.x_stream_rules)
    backoff = StreamBackoff()
    attempts = 0
    try:
        while max_connections is None or attempts < max_connections:
            attempts += 1
            client.last_event = ("none", None)
            before = stats.published + stats.keep_alives
            client.filter(expansions=EXPANSIONS, tweet_fields=TWEET_FIELDS, user_fields=USER_FIELDS)
            prod.flush()
            kind, detail = client.last_event
            if kind == "exception":
                raise detail
            if stats.published + stats.keep_alives > before:
                backoff.reset()  # the connection worked: start the schedule over
            if kind == "http" and detail in (400, 401, 403):
                raise XApiConfigError(f"X stream refused the connection with HTTP {detail}; check token and access level")
            if max_connections is not None and attempts >= max_connections:
                break
            wait = backoff.next(kind, detail if kind == "http" else None, client.last_headers, clock())
            stats.waits.append(wait)
            log.info("Reconnecting to the X stream in %.2f s (after %s %s)", wait, kind, detail or "")
            sleep(wait)
    finally:
        if producer is None:
            prod.flush()
    return stats

