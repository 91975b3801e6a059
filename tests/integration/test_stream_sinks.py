"""The stream's sinks on a real local Spark (no broker): the replay of a batch is idempotent.

The end-to-end test only sometimes catches a batch between its parquet write and its commit;
this one replays a batch on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from replyflow.settings import Settings
    from replyflow.stream.session import create_spark

    root = Path(__file__).resolve().parents[2]
    settings = Settings(_env_file=None, state_dir=tmp_path_factory.mktemp("spark") / "var", jars_dir=root / ".cache" / "jars",
                        jvm_dir=root / "jvm", spark_master="local[2]", spark_shuffle_partitions=2)  # fmt: skip
    session = create_spark(settings)
    yield session
    session.stop()


def enriched_rows(ids: list[int], day: str = "2015-02-24") -> pd.DataFrame:
    from replyflow.stream.columns import ENRICHED_SCHEMA

    rows = []
    for i in ids:
        rows.append({
            "tweet_id": str(i), "text": f"bag lost {i}", "author_id": "1", "author_handle": "jo",
            "created_at": pd.Timestamp(f"{day}T10:00:00Z"), "conversation_id": str(i), "in_reply_to_tweet_id": None,
            "lang": "en", "source": "replay", "matched_rules": [], "clean_text": "bag lose", "sentiment": "negative",
            "sentiment_score": 0.9, "topic": "Baggage Issue", "topic_score": 0.8,
            "entities": [{"text": "SFO", "label": "AIRPORT", "start": 0, "end": 3}], "needs_reply": i % 2 == 0,
            "ticket_id": None, "model_version": "m1", "processed_at": pd.Timestamp(NOW), "kafka_topic": "tweets.raw",
            "kafka_partition": 0, "kafka_offset": i, "kafka_timestamp": pd.Timestamp(NOW), "date": day,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=ENRICHED_SCHEMA.fieldNames())


def frame(spark: Any, ids: list[int], day: str = "2015-02-24") -> Any:
    from replyflow.stream.columns import ENRICHED_SCHEMA

    return spark.createDataFrame(enriched_rows(ids, day), ENRICHED_SCHEMA)


def test_parquet_batch_replay_replaces_instead_of_appending(spark: Any, tmp_path: Path) -> None:
    from replyflow.stream.sinks import write_parquet

    path = str(tmp_path / "parquet")
    write_parquet(frame(spark, [1, 2, 3]), 0, path)
    write_parquet(frame(spark, [4, 5], day="2015-02-25"), 1, path)
    write_parquet(frame(spark, [4, 5], day="2015-02-25"), 1, path)  # batch 1 replayed after a crash
    write_parquet(frame(spark, [1, 2, 3]), 0, path)  # and batch 0 too
    rows = spark.read.parquet(path).collect()
    assert sorted(int(r.tweet_id) for r in rows) == [1, 2, 3, 4, 5]
    assert {(str(r.date), r.batch_id) for r in rows} == {("2015-02-24", 0), ("2015-02-25", 1)}
    assert sorted(p.name for p in Path(path).iterdir() if p.is_dir()) == ["date=2015-02-24", "date=2015-02-25"]
    write_parquet(frame(spark, []), 2, path)  # an empty batch deletes nothing
    assert spark.read.parquet(path).count() == 5


def test_enriched_json_and_reply_rows(spark: Any) -> None:
    from replyflow.stream.columns import ENRICHED_FIELDS
    from replyflow.stream.sinks import enriched_json, reply_rows

    messages = enriched_json(frame(spark, [1, 2])).collect()
    assert [m.key for m in messages] == ["1", "2"]
    value = json.loads(messages[0].value)
    assert value["ticket_id"] is None and value["in_reply_to_tweet_id"] is None  # explicit nulls
    assert value["created_at"] == "2015-02-24T10:00:00.000Z" and value["kafka_offset"] == 1
    assert value["entities"] == [{"text": "SFO", "label": "AIRPORT", "start": 0, "end": 3}]
    replies = [json.loads(text) for text in reply_rows(frame(spark, [1, 2, 3, 4]))]
    assert [r["tweet_id"] for r in replies] == ["2", "4"]  # needs_reply only
    assert list(replies[0]) == list(ENRICHED_FIELDS)  # the design's row, no Kafka lineage


def test_dead_letter_messages_keep_the_original_key(spark: Any) -> None:
    from replyflow.stream.columns import PARSED_SCHEMA
    from replyflow.stream.enrich import parse_frame
    from replyflow.stream.sinks import dead_letter_messages

    records = pd.DataFrame({"key": [b"k1", b"k2"], "value": [b"nope", b'{"tweet_id": "1"}'], "topic": "tweets.raw",
                            "partition": [0, 1], "offset": [7, 8], "timestamp": pd.Timestamp(NOW)})  # fmt: skip
    parsed = spark.createDataFrame(parse_frame(records, now=NOW), PARSED_SCHEMA)
    letters = dead_letter_messages(parsed).collect()
    assert [bytes(m.key) for m in letters] == [b"k1", b"k2"]
    assert [json.loads(m.value)["source_offset"] for m in letters] == [7, 8]


def test_balance_gives_small_batches_one_task_and_spreads_large_ones(spark: Any) -> None:
    from replyflow.stream.job import BALANCE_MIN_ROWS, balance

    three = frame(spark, list(range(12))).repartition(3)
    assert three.rdd.getNumPartitions() == 3
    assert balance(three, 12).rdd.getNumPartitions() == 1
    spread = balance(three, BALANCE_MIN_ROWS)
    assert spread.rdd.getNumPartitions() == spark.sparkContext.defaultParallelism == 2
    assert sorted(r.tweet_id for r in spread.select("tweet_id").collect()) == sorted(str(i) for i in range(12))
    even = frame(spark, list(range(12))).repartition(4)
    assert balance(even, BALANCE_MIN_ROWS).rdd.getNumPartitions() == 4  # a multiple of the cores: left alone
