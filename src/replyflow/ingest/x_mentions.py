"""Live ingestion by polling the support account's mentions timeline (X API v2, tweepy ``Client``).

:func:`poll_mentions` polls every ``settings.x_poll_interval_seconds``, paginates, honours rate
limits and retries 5xx with the one X retry policy (:func:`replyflow.core.xapi.retrying`), and
persists ``since_id`` under ``settings.state_dir`` *after* Kafka acknowledged the page, so a
restart neither re-ingests nor loses mentions (at-least-once; downstream is idempotent by
tweet_id).  This is the way in on X's Basic tier, where the filtered stream is not available.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import tweepy
from tenacity import Retrying

from replyflow.core.xapi import XApiConfigError, app_client, retrying
from replyflow.ingest.producer import TweetProducer
from replyflow.ingest.x_tweets import EXPANSIONS, TWEET_FIELDS, USER_FIELDS, IngestStats, publish_tweets
from replyflow.settings import Settings

log = logging.getLogger(__name__)

STATE_FILE = "x_mentions_state.json"


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


def _x_retry(sleep: Callable[[float], None], clock: Callable[[], float], attempts: int, stats: IngestStats) -> Retrying:
    """The X retry policy, with every wait counted in ``stats.waits``."""
    return retrying(attempts, sleep=sleep, clock=clock, on_wait=stats.waits.append, what="X mentions call")


def _support_user_id(settings: Settings, client: tweepy.Client, retry: Retrying) -> str:
    if settings.x_support_user_id:
        return settings.x_support_user_id
    if not settings.our_handles:
        raise XApiConfigError("set REPLYFLOW_X_SUPPORT_USER_ID (or our_handles) to poll mentions")
    response = retry(client.get_user, username=settings.our_handles[0])
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
    retry = _x_retry(sleep, clock, attempts, stats)
    user_id = user_id or _support_user_id(settings, client, retry)
    since_id = load_since_id(settings)
    newest: str | None = None
    token: str | None = None
    seen = 0
    while True:
        response = retry(
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
        publish_tweets(producer, tweets, includes, "x-mentions", stats)
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
    api = client if client is not None else app_client(settings)
    prod = producer if producer is not None else TweetProducer(settings)
    stats = IngestStats()
    try:
        # looked up once, not on every poll: each lookup spends the users endpoint's rate limit
        user_id = _support_user_id(settings, api, _x_retry(sleep, clock, 6, stats))
        while True:
            poll_mentions_once(settings, api, prod, stats, sleep=sleep, clock=clock, user_id=user_id)
            if once or (max_polls is not None and stats.polls >= max_polls):
                break
            sleep(settings.x_poll_interval_seconds)
    finally:
        if producer is None:
            prod.flush()
    return stats

