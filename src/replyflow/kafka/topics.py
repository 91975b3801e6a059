"""Topic management: create the configured topics idempotently, describe them, count offsets.

Topics are created explicitly (with the configured partitions and replication factor) rather
than relying on broker auto-creation, so an external cluster gets the same layout as the
local broker and a typo in a topic name fails loudly instead of creating a new topic.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from replyflow.core.waiting import WaitTimeout, wait_until
from replyflow.settings import Settings

log = logging.getLogger(__name__)
_quiet = logging.getLogger("replyflow.kafka.librdkafka")


def _admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.bootstrap_servers, "logger": _quiet})


def configured_topics(settings: Settings) -> list[str]:
    return [settings.topic_raw, settings.topic_enriched, settings.topic_dlq]


def ensure_topics(settings: Settings, topics: list[str] | None = None, timeout: float = 30.0) -> list[str]:
    """Create missing topics (raw, enriched, DLQ by default); return the names that were created.

    Waits until every partition of every topic has a leader, so a producer or the Spark source
    started right after this call does not race the topic creation.
    """
    names = topics if topics is not None else configured_topics(settings)
    admin = _admin(settings)
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [n for n in names if n not in existing]
    created: list[str] = []
    if missing:
        futures = admin.create_topics(
            [NewTopic(n, settings.topic_partitions, settings.topic_replication_factor,
                      config={"min.insync.replicas": str(settings.topic_min_insync_replicas)}) for n in missing],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result()
                created.append(name)
                log.info(
                    "Created topic %s (%d partitions, replication %d, min.insync.replicas %d)",
                    name, settings.topic_partitions, settings.topic_replication_factor, settings.topic_min_insync_replicas,
                )  # fmt: skip
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":  # a concurrent creator won the race
                    raise
    _wait_for_leaders(admin, names, timeout)
    return created


def ensure_topics_or_warn(settings: Settings) -> None:
    """:func:`ensure_topics`, logging a warning instead of failing: on a managed cluster without admin rights
    the topics may exist anyway, and a first ``replyflow stream`` start must not fail on a missing sink topic."""
    try:
        ensure_topics(settings)
    except Exception as exc:
        log.warning("Could not ensure topics %s/%s/%s exist: %s", settings.topic_raw, settings.topic_enriched,
                    settings.topic_dlq, exc)  # fmt: skip


def _wait_for_leaders(admin: AdminClient, names: list[str], timeout: float) -> None:
    def pending() -> list[str]:
        metadata = admin.list_topics(timeout=timeout)
        return [
            n
            for n in names
            if n not in metadata.topics
            or metadata.topics[n].error is not None
            or not metadata.topics[n].partitions
            or any(p.leader < 0 for p in metadata.topics[n].partitions.values())
        ]

    try:
        wait_until(lambda: not pending(), timeout, interval=0.1, what="topic leaders")
    except WaitTimeout:
        raise TimeoutError(f"topics without leaders after {timeout:.0f} s: {pending()}") from None


def _consumer(settings: Settings) -> Consumer:
    # Only used for watermark queries: no group membership, no commits.
    return Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": "replyflow-offsets-probe",
            "enable.auto.commit": False,
            "logger": _quiet,
        }
    )


def partition_end_offsets(settings: Settings, topic: str, timeout: float = 10.0) -> dict[int, int]:
    """High watermark per partition of ``topic``."""
    consumer = _consumer(settings)
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
        if metadata.topics[topic].error is not None:
            raise KafkaException(metadata.topics[topic].error)
        result = {}
        for pid in sorted(metadata.topics[topic].partitions):
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, pid), timeout=timeout)
            result[pid] = high
        return result
    finally:
        consumer.close()


def end_offsets(settings: Settings, topic: str) -> int:
    """Sum of the end offsets (high watermarks) of all partitions of ``topic``.

    With the idempotent producer and no transactions, this equals the number of messages ever
    written (until retention deletes segments, which moves the low, not the high, watermark).
    """
    return sum(partition_end_offsets(settings, topic).values())


def describe_topics(settings: Settings, console: Any | None = None) -> list[dict[str, Any]]:
    """Show the configured topics as a rich table (partitions, replication, end offsets); return the rows."""
    from rich.console import Console
    from rich.table import Table

    admin = _admin(settings)
    metadata = admin.list_topics(timeout=10)
    rows: list[dict[str, Any]] = []
    for name in configured_topics(settings):
        if name not in metadata.topics:
            rows.append({"topic": name, "exists": False, "partitions": 0, "replication": 0, "end_offsets": {}})
            continue
        parts = metadata.topics[name].partitions
        replication = min((len(p.replicas) for p in parts.values()), default=0)
        rows.append(
            {
                "topic": name,
                "exists": True,
                "partitions": len(parts),
                "replication": replication,
                "end_offsets": partition_end_offsets(settings, name),
            }
        )
    table = Table(title=f"Kafka topics at {settings.bootstrap_servers}")
    for column in ("topic", "partitions", "replication", "end offsets (per partition)", "messages"):
        table.add_column(column, justify="left" if column == "topic" else "right")
    for row in rows:
        if not row["exists"]:
            table.add_row(row["topic"], "missing", "", "", "")
            continue
        offsets = row["end_offsets"]
        table.add_row(
            row["topic"],
            str(row["partitions"]),
            str(row["replication"]),
            " ".join(f"{p}:{o}" for p, o in offsets.items()),
            str(sum(offsets.values())),
        )
    (console or Console()).print(table)
    return rows
