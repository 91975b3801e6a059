"""The demo's reading of the parquet sink while a batch may still be committing it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def test_parquet_counts_of_a_sink_without_data_files_are_empty(settings) -> None:
    """Before the first commit (or while a batch's dynamic overwrite still holds its files in staging) the sink
    folder has no data file: the summary shows no counts instead of failing on a missing column."""
    from replyflow.demo import count_parquet_rows, parquet_counts

    sink = Path(settings.parquet_location)
    (sink / ".spark-staging-1" / "date=2015-02-24" / "batch_id=0").mkdir(parents=True)
    (sink / "_SUCCESS").write_text("")
    assert count_parquet_rows(settings) == 0
    assert parquet_counts(settings, "sentiment") == {}


def test_parquet_counts_per_value(settings) -> None:
    from replyflow.demo import count_parquet_rows, parquet_counts

    part = Path(settings.parquet_location) / "date=2015-02-24" / "batch_id=0"
    part.mkdir(parents=True)
    pd.DataFrame({"sentiment": ["negative", "negative", "positive"],
                  "topic": ["Baggage Issue", None, None]}).to_parquet(part / "part-0.parquet")
    assert count_parquet_rows(settings) == 3
    assert parquet_counts(settings, "sentiment") == {"negative": 2, "positive": 1}
    assert parquet_counts(settings, "topic") == {"Baggage Issue": 1, None: 2}  # tweets without a topic are counted
