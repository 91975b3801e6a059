"""Replay a dataset into ``tweets.raw``: the way to run the pipeline without X API access.

Two input formats:

* CSV with the columns of the Kaggle "Twitter US Airline Sentiment" file
  (``data/airline_tweets_sentiment.csv``): ``tweet_id``, ``text``, ``name`` (the handle) and
  ``tweet_created`` (``2015-02-24 11:35:52 -0800``) are used; see :func:`csv_row_to_tweet`.
* JSONL (``.jsonl``/``.ndjson``/``.json``): one raw-tweet message (the ``tweets.raw`` wire
  format) per line, validated with :func:`replyflow.core.contracts.parse_raw`.

Every row that fails validation goes to the DLQ with its line number and the reason; nothing
is dropped silently.  A tweet id seen earlier in the same file is skipped and counted
(``duplicates``): the dataset holds ~40 repeated rows, and a tweet is one message.
The dataset's text is HTML-escaped as X delivered it (``&amp;``); it is unescaped once here,
so Kafka, parquet and the database hold the real text (pages escape it once on output).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import html
import itertools
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from replyflow.core.contracts import RawTweet, describe_error, parse_raw
from replyflow.ingest.producer import TweetProducer
from replyflow.settings import Settings

log = logging.getLogger(__name__)

STAGE = "ingest-replay"


class ReplayFileError(ValueError):
    """The replay file as a whole is unusable (not the dataset's columns): nothing was published."""
CSV_REQUIRED = ("tweet_id", "text", "name", "tweet_created")
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}


@dataclass
class ReplayStats:
    """What a replay did; ``published + dead_lettered + duplicates + blank == rows``."""

    rows: int = 0
    published: int = 0
    dead_lettered: int = 0
    duplicates: int = 0
    blank: int = 0
    elapsed_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.published / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rate": round(self.rate, 1)}


# --- pure mapping --------------------------------------------------------------------------------
def author_id_for(handle: str) -> str:
    """A stable numeric author id for a dataset handle (the dataset has no user ids).

    Deterministic across runs and machines (sha256, not ``hash()``), case-insensitive like X
    handles, so "one open ticket per author" logic downstream behaves as with real ids.
    """
    digest = hashlib.sha256(handle.strip().lower().encode("utf-8")).hexdigest()
    return str(int(digest[:15], 16))


def parse_dataset_time(value: str) -> datetime:
    """``2015-02-24 11:35:52 -0800`` (the dataset) or ISO-8601 with an offset, as UTC."""
    value = value.strip()
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S %z").astimezone(timezone.utc)
    except ValueError:
        pass
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a timezone: {value!r}")
    return parsed.astimezone(timezone.utc)


def csv_row_to_tweet(row: dict[str, Any]) -> RawTweet:
    """Map one dataset row to a :class:`RawTweet` (text HTML-unescaped once); raises ``ValueError`` with a clear reason."""
    missing = [c for c in CSV_REQUIRED if not (row.get(c) or "").strip()]
    if missing:
        raise ValueError(f"empty or missing column(s): {', '.join(missing)}")
    tweet_id = row["tweet_id"].strip()
    handle = row["name"].strip()
    try:
        created = parse_dataset_time(row["tweet_created"])
    except ValueError as exc:
        raise ValueError(f"tweet_created: {exc}") from None
    try:
        return RawTweet(
            tweet_id=tweet_id,
            text=html.unescape(row["text"]),
            author_id=author_id_for(handle),
            author_handle=handle,
            created_at=created,
            conversation_id=tweet_id,
            in_reply_to_tweet_id=None,
            lang="en",
            source="replay",
            matched_rules=[],
        )
    except ValidationError as exc:
        raise ValueError(describe_error(exc)) from None


# --- input readers: (location, raw payload, tweet or error) ---------------------------------------
Item = tuple[str, str, RawTweet | None, str | None]


def _iter_csv(path: Path) -> Iterator[Item]:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.DictReader(handle)
        absent = [c for c in CSV_REQUIRED if c not in (reader.fieldnames or [])]
        if absent:
            raise ReplayFileError(
                f"{path}: not a dataset CSV: the header lacks {', '.join(absent)} (it has {', '.join(reader.fieldnames or [])}); "
                "replay a CSV with the columns of data/airline_tweets_sentiment.csv, or JSONL of raw tweets (.jsonl)"
            )
        for index, row in enumerate(reader, start=1):
            where = f"{path.name} row {index} (line {reader.line_num})"
            payload = json.dumps(row, ensure_ascii=False)
            if None in row:  # more fields than header columns
                yield where, payload, None, f"{len(row[None]) + len(reader.fieldnames or [])} fields, header has {len(reader.fieldnames or [])}"  # type: ignore[index]
                continue
            try:
                yield where, payload, csv_row_to_tweet(row), None
            except ValueError as exc:
                yield where, payload, None, str(exc)


def _iter_jsonl(path: Path) -> Iterator[Item]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            where = f"{path.name} line {number}"
            text = line.rstrip(b"\r\n")
            if not text.strip():
                yield where, "", None, None  # blank: counted, not a message
                continue
            payload = text.decode("utf-8", errors="replace")
            try:
                yield where, payload, parse_raw(text), None
            except ValueError as exc:
                yield where, payload, None, str(exc)


def iter_file(path: Path) -> Iterator[Item]:
    """Items of a replay file, format by suffix (CSV unless .jsonl/.ndjson/.json)."""
    return _iter_jsonl(path) if path.suffix.lower() in JSONL_SUFFIXES else _iter_csv(path)


def distinct_tweets(path: Path, n: int, skip: int = 0) -> list[RawTweet]:
    """The first ``n`` valid tweets of a replay file with distinct ids, after the first ``skip``.

    The same mapping and duplicate rule as :func:`replay_file`, for tests and benchmarks that
    need to know exactly which tweets a replay of that file publishes.
    """
    tweets: list[RawTweet] = []
    seen: set[str] = set()
    for _, _, tweet, _ in iter_file(path):
        if tweet is None or tweet.tweet_id in seen:
            continue
        seen.add(tweet.tweet_id)
        if len(seen) > skip:
            tweets.append(tweet)
            if len(tweets) == n:
                break
    return tweets


# --- rate limiting -------------------------------------------------------------------------------
class TokenBucket:
    """At most ``rate`` items per second on average, bursts of up to ``burst``; 0 = unlimited.

    Clock and sleep are injectable so tests do not wait.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self.tokens = self.capacity
        self._clock, self._sleep = clock, sleep
        self._last = clock()

    def acquire(self) -> None:
        if self.rate <= 0:
            return
        while True:
            now = self._clock()
            self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.rate)
            self._last = now
            if self.tokens >= 1 - 1e-9:  # float slack: never spin on a rounding error
                self.tokens = max(0.0, self.tokens - 1)
                return
            self._sleep((1 - self.tokens) / self.rate)


# --- the replay ----------------------------------------------------------------------------------
def replay_file(
    settings: Settings,
    path: Path,
    rate: float = 0.0,
    limit: int | None = None,
    *,
    producer: TweetProducer | None = None,
    progress: bool | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayStats:
    """Publish a CSV/JSONL file to ``tweets.raw`` (invalid rows to the DLQ); return the counts.

    ``limit`` counts input rows (valid or not).  ``producer`` lets a caller share one producer
    (tests, the demo); otherwise one is created and flushed here.  ``progress`` shows a rich
    progress bar (default: when stderr is a terminal).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"replay file not found: {path}")
    items = iter_file(path)
    first = next(items, None)  # a file that is unusable as a whole fails here, before Kafka is touched
    bucket = TokenBucket(rate, sleep=sleep)
    stats = ReplayStats()
    seen: set[str] = set()
    show = sys.stderr.isatty() if progress is None else progress
    started = time.monotonic()
    log.info("Replaying %s into %s at %s", path, settings.topic_raw, f"{rate:g}/s" if rate > 0 else "full speed")

    bar = None
    if show:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(
            TextColumn("[bold]replay"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("dlq {task.fields[dlq]}"), transient=False,
        )  # fmt: skip
        bar.start()
        task = bar.add_task("replay", total=limit, dlq=0)
    with contextlib.ExitStack() as stack:
        if bar is not None:
            stack.callback(bar.stop)
        # our own producer is flushed on the way out (before the bar stops), also on an error or
        # Ctrl-C: nothing already queued is lost
        prod = producer if producer is not None else stack.enter_context(TweetProducer(settings))
        for where, payload, tweet, error in itertools.chain([first] if first else [], items):
            if limit is not None and stats.rows >= limit:
                break
            stats.rows += 1
            if tweet is None and error is None:
                stats.blank += 1
            elif tweet is None:
                prod.dead_letter(payload, f"{where}: {error}", STAGE)
                stats.dead_lettered += 1
            elif tweet.tweet_id in seen:
                stats.duplicates += 1
                log.debug("%s: tweet %s already replayed, skipped", where, tweet.tweet_id)
            else:
                seen.add(tweet.tweet_id)
                bucket.acquire()
                prod.publish(tweet)
                stats.published += 1
            if bar is not None:
                bar.update(task, advance=1, dlq=stats.dead_lettered)
        if producer is not None:
            producer.poll(0)
    stats.elapsed_s = time.monotonic() - started
    log.info(
        "Replay of %s done: %d rows, %d published, %d to DLQ, %d duplicate ids skipped, %d blank, %.1f s",
        path.name, stats.rows, stats.published, stats.dead_lettered, stats.duplicates, stats.blank, stats.elapsed_s,
    )  # fmt: skip
    return stats
