"""Live ingestion from the X API v2 (tweepy 4.17): filtered stream and mentions polling.

Two ways in, both publishing :class:`RawTweet` messages through :class:`TweetProducer`:

* :func:`run_filtered_stream` keeps one filtered-stream connection open.  The stream rules are
  synced from ``settings.x_stream_rules`` first (missing ones added with ``tag = value``, stale
  ones deleted), so ``matched_rules`` carries readable rule values.  Reconnects follow X's
  guidance (network errors: linear back-off 0.25 s .. 16 s; HTTP errors: exponential 5 s ..
  320 s; 429: at least 60 s or until ``x-rate-limit-reset``).  tweepy reconnects on its own too,
  but its waits are fixed ``time.sleep`` calls and it only sees status codes; we stop tweepy's
  loop after each disconnect and run the back-off here, with the response headers at hand and an
  injectable ``sleep`` so tests never wait.
* :func:`poll_mentions` polls the support account's mentions timeline, paginates, honours rate
  limits (``x-rate-limit-reset``), retries 5xx, and persists ``since_id`` under
  ``settings.state_dir`` *after* Kafka acknowledged the page, so a restart neither re-ingests
  nor loses mentions (at-least-once; downstream is idempotent by tweet_id).

The X API v2 tweet -> :class:`RawTweet` conversion is one pure function,
:func:`x_tweet_to_raw`.  Retweets and our own tweets are published too, marked
(``is_retweet``; own tweets are recognisable by ``author_handle``): skipping them is the reply
policy's job, and the stream keeps a complete record.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests
import tweepy
from pydantic import ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from replyflow.ingest.producer import TweetProducer
from replyflow.ingest.schema import RawTweet, Source, describe_error, load_json_object
from replyflow.settings import Settings

log = logging.getLogger(__name__)

#: What :class:`RawTweet` needs from the v2 API (``author_id`` expansion gives the username).
TWEET_FIELDS = ["author_id", "created_at", "conversation_id", "in_reply_to_user_id", "referenced_tweets", "lang"]
EXPANSIONS = ["author_id"]
USER_FIELDS = ["username"]
STAGE = "ingest-x"
STATE_FILE = "x_mentions_state.json"


class XApiConfigError(RuntimeError):
    """The X API cannot be used as configured (missing bearer token or user id)."""


# --- pure conversion ---------------------------------------------------------------------------
def users_by_id(includes: Mapping[str, Any] | None) -> dict[str, str]:
    """``{user id: username}`` from a v2 ``includes`` object."""
    users = (includes or {}).get("users") or []
    return {str(u["id"]): str(u["username"]) for u in users if "id" in u and "username" in u}


def x_tweet_to_raw(
    tweet: Mapping[str, Any],
    usernames: Mapping[str, str],
    source: Source,
    matched_rules: Sequence[str] = (),
) -> RawTweet:
    """Convert one X API v2 tweet object (plus the expanded usernames) to a :class:`RawTweet`.

    Raises ``ValueError`` with a reason when a needed field is missing; we reject rather than guess
    (a tweet without ``author_id`` expansion cannot get a ticket routed to the right person).
    """
    author_id = str(tweet.get("author_id") or "")
    handle = usernames.get(author_id)
    if not author_id:
        raise ValueError("author_id missing (request tweet.fields=author_id)")
    if handle is None:
        raise ValueError(f"username of author {author_id} missing (request expansions=author_id)")
    references = tweet.get("referenced_tweets") or []
    reply_to = next((str(r["id"]) for r in references if r.get("type") == "replied_to"), None)
    is_retweet = any(r.get("type") == "retweeted" for r in references)
    created = tweet.get("created_at")
    if not created:
        raise ValueError("created_at missing (request tweet.fields=created_at)")
    try:
        return RawTweet(
            tweet_id=str(tweet.get("id", "")),
            text=tweet.get("text") or "",
            author_id=author_id,
            author_handle=handle,
            created_at=datetime.fromisoformat(str(created).replace("Z", "+00:00")),
            conversation_id=str(tweet.get("conversation_id") or tweet.get("id", "")),
            in_reply_to_tweet_id=reply_to,
            lang=str(tweet.get("lang") or "und"),
            source=source,
            matched_rules=list(matched_rules),
            is_retweet=is_retweet,
        )
    except ValidationError as exc:
        raise ValueError(describe_error(exc)) from None


def plan_rule_sync(existing: Iterable[Mapping[str, Any]], wanted: Sequence[str]) -> tuple[list[str], list[str]]:
    """Rules to add (values) and rule ids to delete so the stream has exactly ``wanted``."""
    existing = list(existing)
    have = {str(r["value"]) for r in existing}
    wanted_set = set(wanted)
    to_add = [v for v in dict.fromkeys(wanted) if v not in have]
    to_delete = [str(r["id"]) for r in existing if str(r["value"]) not in wanted_set]
    return to_add, to_delete


def rate_limit_wait(headers: Mapping[str, str] | None, now: float, minimum: float = 1.0, default: float = 60.0) -> float:
    """Seconds to wait after a 429: until ``x-rate-limit-reset`` (epoch seconds) plus 1 s slack."""
    reset = (headers or {}).get("x-rate-limit-reset")
    if reset is None:
        return default
    try:
        return max(minimum, float(reset) - now + 1.0)
    except ValueError:
        return default


# --- publishing --------------------------------------------------------------------------------
@dataclass
class IngestStats:
    """Counts of one X ingestion run (stream connections, or mention polls)."""

    published: int = 0
    dead_lettered: int = 0
    keep_alives: int = 0
    connections: int = 0
    polls: int = 0
    waits: list[float] = field(default_factory=list)


def _publish_tweets(
    producer: TweetProducer,
    tweets: Iterable[Mapping[str, Any]],
    includes: Mapping[str, Any] | None,
    source: Source,
    stats: IngestStats,
    matched_rules: Sequence[str] = (),
) -> None:
    usernames = users_by_id(includes)
    for tweet in tweets:
        try:
            raw = x_tweet_to_raw(tweet, usernames, source, matched_rules)
        except ValueError as exc:
            producer.dead_letter(json.dumps(tweet, ensure_ascii=False), f"{source} tweet {tweet.get('id')}: {exc}", STAGE)
            stats.dead_lettered += 1
            continue
        producer.publish(raw)
        stats.published += 1


def _bearer_token(settings: Settings) -> str:
    token = settings.secret("x_bearer_token")
    if not token:
        raise XApiConfigError("X bearer token missing: set REPLYFLOW_X_BEARER_TOKEN (or X_BEARER_TOKEN), see docs/X_API.md")
    return token


# --- filtered stream ---------------------------------------------------------------------------
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
            _publish_tweets(self.producer, [message["data"]], message.get("includes"), "x-stream", self.stats, rules)
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
    client = _Stream(_bearer_token(settings), prod, stats)
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


# --- mentions polling --------------------------------------------------------------------------
def _state_path(settings: Settings) -> Path:
    return settings.state_dir / STATE_FILE


def load_since_id(settings: Settings) -> str | None:
    try:
        return json.loads(_state_path(settings).read_text()).get("since_id")
    except (FileNotFoundError, ValueError):
        return None


def save_since_id(settings: Settings, since_id: str) -> None:
    """Atomically persist the newest ingested mention id (rename, so a crash leaves old or new)."""
    path = _state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"since_id": since_id, "saved_at": datetime.now(timezone.utc).isoformat()}))
    os.replace(tmp, path)


def _retrying(sleep: Callable[[float], None], clock: Callable[[], float], attempts: int, stats: IngestStats) -> Retrying:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, tweepy.TooManyRequests):
            seconds = rate_limit_wait(exc.response.headers, clock())
        else:
            seconds = min(60.0, 2.0**state.attempt_number)
        stats.waits.append(seconds)
        log.warning("X API call failed (%s); retrying in %.1f s", exc.__class__.__name__, seconds)
        return seconds

    return Retrying(
        retry=retry_if_exception_type(
            (tweepy.TooManyRequests, tweepy.TwitterServerError, requests.ConnectionError, requests.Timeout)
        ),
        wait=wait,
        stop=stop_after_attempt(attempts),
        sleep=sleep,
        reraise=True,
    )


def _support_user_id(settings: Settings, client: tweepy.Client, retrying: Retrying) -> str:
    if settings.x_support_user_id:
        return settings.x_support_user_id
    if not settings.our_handles:
        raise XApiConfigError("set REPLYFLOW_X_SUPPORT_USER_ID (or our_handles) to poll mentions")
    response = retrying(client.get_user, username=settings.our_handles[0])
    if response.data is None:
        raise XApiConfigError(f"X user @{settings.our_handles[0]} not found")
    log.info("Support account @%s has user id %s", settings.our_handles[0], response.data.id)
    return str(response.data.id)


def poll_mentions_once(
    settings: Settings,
    client: tweepy.Client,
    producer: TweetProducer,
    stats: IngestStats,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    attempts: int = 6,
    user_id: str | None = None,
) -> int:
    """One poll: every page of new mentions since the saved ``since_id``; returns tweets seen.

    ``user_id`` is the support account's id when the caller already knows it (else looked up)."""
    retrying = _retrying(sleep, clock, attempts, stats)
    user_id = user_id or _support_user_id(settings, client, retrying)
    since_id = load_since_id(settings)
    newest: str | None = None
    token: str | None = None
    seen = 0
    while True:
        response = retrying(
            client.get_users_mentions,
            user_id,
            since_id=since_id,
            pagination_token=token,
            max_results=100,
            tweet_fields=TWEET_FIELDS,
            expansions=EXPANSIONS,
            user_fields=USER_FIELDS,
        )
        meta = response.meta or {}
        tweets = [t.data for t in (response.data or [])]
        includes = {"users": [u.data for u in (response.includes or {}).get("users", [])]}
        _publish_tweets(producer, tweets, includes, "x-mentions", stats)
        seen += len(tweets)
        ids = [int(t["id"]) for t in tweets] + ([int(meta["newest_id"])] if meta.get("newest_id") else [])
        if ids:
            top = max(ids)
            newest = str(top if newest is None else max(int(newest), top))
        token = meta.get("next_token")
        if not token:
            break
    stats.polls += 1
    if newest is not None:
        producer.flush()  # only remember ids Kafka has acknowledged
        save_since_id(settings, newest)
    log.info("Mentions poll: %d new tweets (since_id now %s)", seen, newest or since_id)
    return seen


def poll_mentions(
    settings: Settings,
    once: bool = False,
    *,
    client: tweepy.Client | None = None,
    producer: TweetProducer | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    max_polls: int | None = None,
) -> IngestStats:
    """Poll the support account's mentions every ``settings.x_poll_interval_seconds`` (or once)."""
    api = client if client is not None else tweepy.Client(bearer_token=_bearer_token(settings), wait_on_rate_limit=False)
    prod = producer if producer is not None else TweetProducer(settings)
    stats = IngestStats()
    try:
        # looked up once, not on every poll: each lookup spends the users endpoint's rate limit
        user_id = _support_user_id(settings, api, _retrying(sleep, clock, 6, stats))
        while True:
            poll_mentions_once(settings, api, prod, stats, sleep=sleep, clock=clock, user_id=user_id)
            if once or (max_polls is not None and stats.polls >= max_polls):
                break
            sleep(settings.x_poll_interval_seconds)
    finally:
        if producer is None:
            prod.flush()
    return stats
