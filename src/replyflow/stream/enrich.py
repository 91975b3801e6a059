"""The two per-partition steps of the stream job, as plain pandas functions.

``parse_frame`` turns Kafka records into validated tweets or dead letters, and
``enrich_frame`` adds the NLP and the reply decision.  Both are pure functions of a
``pandas.DataFrame`` so they are unit-tested without Spark; the job runs them inside
``mapInPandas`` through :func:`parse_partitions` and :class:`EnrichPartitions`.

Why validation happens here, in Python, with :func:`replyflow.core.contracts.parse_raw`
rather than with ``from_json``: the producer and the stream then share exactly one
validator, so a message is valid everywhere or rejected everywhere with the same reason
(``from_json`` would silently turn a bad field into null instead).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from replyflow.core.contracts import DeadLetter, RawTweet, parse_raw
from replyflow.core.policy import PolicyConfig
from replyflow.core.policy import decide as policy_decide
from replyflow.stream.columns import DATE_COLUMN, DLQ_COLUMN, ENRICHED_SCHEMA, KAFKA_FIELDS, NLP_FIELDS, PARSED_SCHEMA, RAW_FIELDS

log = logging.getLogger(__name__)

PARSE_STAGE = "stream-parse"


class TextEnricher(Protocol):
    """What the job needs from the NLP stage (:class:`replyflow.nlp.pipeline.Enricher`)."""

    model_version: str

    def enrich(self, texts: list[str]) -> list[dict[str, Any]]: ...


# --- parse --------------------------------------------------------------------------------
def dead_letter_json(
    reason: str,
    payload: bytes | bytearray | str | None,
    topic: str | None,
    partition: int | None,
    offset: int | None,
    failed_at: datetime | None = None,
) -> str:
    """The ``tweets.dlq`` envelope of a message the stream rejected, with its Kafka coordinates."""
    letter = DeadLetter(
        reason=reason,
        stage=PARSE_STAGE,
        payload=payload,
        source_topic=topic,
        source_partition=None if partition is None else int(partition),
        source_offset=None if offset is None else int(offset),
        **({"failed_at": failed_at} if failed_at is not None else {}),
    )
    return letter.to_json().decode("utf-8")


def parse_record(value: bytes | bytearray | str | None) -> tuple[RawTweet | None, str | None]:
    """``(tweet, None)`` for a valid message, ``(None, reason)`` otherwise; never raises."""
    if value is None:
        return None, "empty message (null value)"
    try:
        return parse_raw(bytes(value) if isinstance(value, bytearray) else value), None
    except ValueError as exc:
        return None, str(exc) or "invalid message"


def parse_frame(records: pd.DataFrame, now: datetime | None = None) -> pd.DataFrame:
    """Kafka records (``key, value, topic, partition, offset, timestamp``) -> ``PARSED_SCHEMA`` rows.

    Every input row gives exactly one output row, so nothing is dropped silently: either the
    raw fields are filled, or ``dead_letter`` holds the envelope with the reason.
    """
    now = now or datetime.now(timezone.utc)
    rows: list[dict[str, Any]] = []
    for key, value, topic, partition, offset, timestamp in zip(
        records["key"], records["value"], records["topic"], records["partition"], records["offset"],
        records["timestamp"], strict=True,
    ):  # fmt: skip
        tweet, reason = parse_record(value)
        row: dict[str, Any] = dict.fromkeys(RAW_FIELDS)
        if tweet is not None:
            row.update(tweet.model_dump())
            row[DLQ_COLUMN] = None
        else:
            row[DLQ_COLUMN] = dead_letter_json(reason or "invalid", value, topic, partition, offset, now)
        row.update(
            kafka_topic=topic, kafka_partition=int(partition), kafka_offset=int(offset),
            kafka_timestamp=timestamp, kafka_key=None if key is None else bytes(key),
        )  # fmt: skip
        rows.append(row)
    return _spark_types(pd.DataFrame(rows, columns=PARSED_SCHEMA.fieldNames()), "created_at")


def _spark_types(frame: pd.DataFrame, *time_columns: str) -> pd.DataFrame:
    """The dtypes the output schema declares: UTC timestamps, int32 partition, int64 offset."""
    for column in time_columns:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["kafka_partition"] = frame["kafka_partition"].astype("int32")
    frame["kafka_offset"] = frame["kafka_offset"].astype("int64")
    return frame


def parse_partitions(batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """``mapInPandas`` adapter of :func:`parse_frame` (schema ``PARSED_SCHEMA``)."""
    for records in batches:
        yield parse_frame(records)


# --- enrich -------------------------------------------------------------------------------
DecideFn = Callable[[Mapping[str, Any], Any], Any]


def _entities(value: Any) -> list[dict[str, Any]]:
    """Entities as plain dicts with int offsets (what Arrow needs for ``array<struct>``)."""
    result = []
    for ent in value or []:
        get = ent.get if isinstance(ent, Mapping) else lambda k, e=ent: getattr(e, k, None)
        result.append(
            {"text": str(get("text")), "label": str(get("label")), "start": int(get("start")), "end": int(get("end"))}
        )
    return result


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def enrich_frame(
    tweets: pd.DataFrame,
    enricher: TextEnricher,
    policy: PolicyConfig,
    decide: DecideFn = policy_decide,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Valid tweets (``PARSED_SCHEMA`` without dead letters) -> ``ENRICHED_SCHEMA`` rows.

    One ``enricher.enrich`` call for the whole frame: the models run batched, never per row.
    ``ticket_id`` stays null: the parquet row is written without waiting for the reply service's answer.
    """
    columns = ENRICHED_SCHEMA.fieldNames()
    if tweets.empty:
        return pd.DataFrame(columns=columns)
    texts = [str(t) for t in tweets["text"]]
    results = enricher.enrich(texts)
    if len(results) != len(texts):
        raise RuntimeError(f"enricher returned {len(results)} results for {len(texts)} texts")
    processed_at = now or datetime.now(timezone.utc)
    rows: list[dict[str, Any]] = []
    for raw, nlp in zip(tweets[[*RAW_FIELDS, *KAFKA_FIELDS]].to_dict("records"), results, strict=True):
        row = {**raw, **{name: nlp.get(name) for name in NLP_FIELDS}}
        row["sentiment_score"] = _float_or_none(row["sentiment_score"])
        row["topic_score"] = _float_or_none(row["topic_score"])
        row["needs_reply_score"] = _float_or_none(row["needs_reply_score"])
        row["entities"] = _entities(row["entities"])
        row["matched_rules"] = list(row["matched_rules"]) if row["matched_rules"] is not None else []
        row["needs_reply"] = bool(decide(row, policy).needs_reply)
        row["ticket_id"] = None
        row["model_version"] = enricher.model_version
        row["processed_at"] = processed_at
        rows.append(row)
    frame = _spark_types(pd.DataFrame(rows, columns=columns), "created_at", "processed_at")
    # The tweet's own (UTC) date, not the processing date: a replayed batch must land in
    # the same partition again (see docs/STREAM.md, "exactly once").
    frame[DATE_COLUMN] = frame["created_at"].dt.strftime("%Y-%m-%d")
    return frame


def load_enricher(models_dir: str, cascade_threshold: float, threads: int = 1) -> TextEnricher:
    """The NLP pipeline of this Python process (cached by ``get_enricher``: loaded once per worker)."""
    from replyflow.nlp.pipeline import get_enricher

    return get_enricher(Path(models_dir), cascade_threshold, threads)


class EnrichPartitions:
    """``mapInPandas`` function of the enrich step (schema ``ENRICHED_SCHEMA``).

    A small picklable object rather than a closure so what travels to the workers is
    explicit: the models folder, the cascade threshold, the model threads per worker, the policy
    settings and (in tests) a fake loader.  Nothing reaches the workers through their environment.
    """

    def __init__(
        self,
        models_dir: str,
        policy: PolicyConfig,
        *,
        cascade_threshold: float,
        threads: int = 1,
        loader: Callable[..., TextEnricher] = load_enricher,
        decide: DecideFn = policy_decide,
        chunk_size: int = 1000,
    ) -> None:
        self.models_dir = models_dir
        self.cascade_threshold = cascade_threshold
        self.threads = threads
        self.policy = policy
        self.loader = loader
        self.decide = decide
        self.chunk_size = chunk_size

    def __call__(self, batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        enricher = self.loader(self.models_dir, self.cascade_threshold, self.threads)
        for tweets in batches:
            for start in range(0, len(tweets), self.chunk_size):
                chunk = tweets.iloc[start : start + self.chunk_size]
                yield enrich_frame(chunk, enricher, self.policy, self.decide)
