"""The demo's summary: reading the parquet sink while a batch may still be committing it; the example tickets."""

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


def test_the_examples_show_topic_replies_the_general_body_and_tickets_left_for_agents() -> None:
    from replyflow.demo import pick_examples

    def ticket(n: int, code: str, reason: str, replied: bool) -> dict[str, object]:
        return {"ticket_id": f"{code}-{n}", "topic_code": code, "reason": reason, "reply_status": "sent" if replied else None}

    tickets = [ticket(1, "GEN", "complaint", True), ticket(2, "GEN", "complaint", True), ticket(3, "BAG", "complaint", True),
               ticket(4, "BAG", "question", True), ticket(5, "DLY", "complaint", True), ticket(6, "GEN", "low_confidence", False),
               ticket(7, "CHG", "complaint", True), ticket(8, "BAG", "not_addressed", False), ticket(9, "GEN", "low_confidence", False),
               ticket(10, "SEA", "complaint", True)]  # fmt: skip
    picked = [t["ticket_id"] for t in pick_examples(tickets, topics=3)]
    assert picked == ["GEN-1", "BAG-3", "DLY-5", "GEN-6", "CHG-7", "BAG-8"]
    assert pick_examples([]) == []
