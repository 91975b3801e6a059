"""X API v2 tweets -> :class:`RawTweet` messages: the pure conversion and the publishing step
shared by the filtered stream (:mod:`.x_stream`) and mentions polling (:mod:`.x_mentions`).

Retweets and our own tweets are published too, marked (``is_retweet``; own tweets are
recognisable by ``author_handle``): skipping them is the reply policy's job, and the stream
keeps a complete record.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from replyflow.core.contracts import RawTweet, Source, describe_error
from replyflow.ingest.producer import TweetProducer

log = logging.getLogger(__name__)

#: What :class:`RawTweet` needs from the v2 API (``author_id`` expansion gives the username).
TWEET_FIELDS = ["author_id", "created_at", "conversation_id", "in_reply_to_user_id", "referenced_tweets", "lang"]
EXPANSIONS = ["author_id"]
USER_FIELDS = ["username"]
STAGE = "ingest-x"


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
            text=html.unescape(tweet.get("text") or ""),  # X escapes &, < and > in tweet text; unescaped once here
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


@dataclass
class IngestStats:
    """Counts of one X ingestion run (stream connections, or mention polls)."""

    published: int = 0
    dead_lettered: int = 0
    keep_alives: int = 0
    connections: int = 0
    polls: int = 0
    waits: list[float] = field(default_factory=list)


def publish_tweets(
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

