"""``replyflow demo``: the whole pipeline end-to-end on embedded defaults, with live progress.

Starts the local Kafka broker, the reply service and the Spark job as background services
(:mod:`replyflow.ops.background`), replays tweets from the dataset, shows how far each stage has
got (tweets in, rejected, enriched, tickets, replies) and ends with a summary read back
from the services themselves: the reply API's statistics, example replies with their ticket
IDs, the parquet row count.  Everything is stopped on completion or Ctrl-C unless
``keep_running`` is set.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from pydantic import SecretStr
from rich.console import Console
from rich.live import Live
from rich.table import Table

from replyflow.core.labels import GENERAL_CODE
from replyflow.core.policy import REASONS
from replyflow.ops import background as services
from replyflow.reply.queries import MAX_PER_PAGE
from replyflow.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """What the demo has observed so far; all counts are read from the running services."""

    started: float = field(default_factory=time.monotonic)
    replay_done: bool = False
    replay_sent: int = 0
    replay_dlq: int = 0
    raw: int = 0
    dlq: int = 0
    enriched: int = 0
    tickets: int = 0
    queued: int = 0
    sent: int = 0
    failed: int = 0
    first_reply_after: float | None = None
    replay_error: str | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _fresh_state(settings: Settings) -> None:
    """Remove the previous demo's broker data, checkpoint, parquet and SQLite database.

    Only local, default locations are touched: an external cluster, a configured parquet
    path or database are never wiped.
    """
    targets: list[Path] = [settings.state_dir / "checkpoints", settings.state_dir / "run"]
    if settings.kafka_is_local:
        targets.append(settings.kafka_data_dir)
    if not settings.parquet_path:
        targets.append(settings.state_dir / "parquet")
    if not settings.database_url:
        targets += [settings.state_dir / name for name in ("replyflow.db", "replyflow.db-wal", "replyflow.db-shm")]
    for target in targets:
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def _api(settings: Settings, path: str, **params: Any) -> Any:
    token = settings.secret("api_token")
    response = requests.get(
        f"{settings.reply_api_url}/api/v1/{path}",
        params=params,
        headers={"Authorization": f"Bearer {token}"} if token else {},
        timeout=5,
    )
    response.raise_for_status()
    return response.json()


def _poll(settings: Settings, progress: Progress) -> None:
    from replyflow.kafka.topics import end_offsets

    try:
        progress.raw = end_offsets(settings, settings.topic_raw)
        progress.dlq = end_offsets(settings, settings.topic_dlq)
        # The parquet sink, not tweets.enriched: a batch writes both alongside its replies, and the demo is done
        # (and reads parquet for its summary) only once the parquet of every batch is committed.
        progress.enriched = count_parquet_rows(settings)
    except Exception as exc:  # the broker may be busy for a moment; the next poll retries
        log.debug("offset poll failed: %s", exc)
    try:
        stats = _api(settings, "stats")
    except requests.RequestException as exc:
        log.debug("stats poll failed: %s", exc)
        return
    outbox = stats.get("outbox", {})
    progress.tickets = int(stats.get("tickets", {}).get("total", 0))
    progress.queued = int(outbox.get("queued", 0)) + int(outbox.get("sending", 0))
    progress.sent = int(outbox.get("sent", 0))
    progress.failed = int(outbox.get("failed", 0))
    if progress.sent and progress.first_reply_after is None:
        progress.first_reply_after = progress.elapsed()


def _parquet_dataset(settings: Settings):  # -> pyarrow.dataset.Dataset | None
    import pyarrow.dataset as ds

    path = Path(settings.parquet_location)
    if not path.exists():
        return None
    # Spark's _spark_metadata log and temporary files start with "_" or "."
    return ds.dataset(path, format="parquet", partitioning="hive", ignore_prefixes=["_", "."])


def count_parquet_rows(settings: Settings) -> int:
    """Rows in the parquet sink (0 before the first batch lands)."""
    dataset = _parquet_dataset(settings)
    return dataset.count_rows() if dataset is not None else 0


def parquet_counts(settings: Settings, column: str) -> dict[str, int]:
    """Enriched tweets per value of ``column`` (sentiment, topic), read from the parquet sink; key None counts the
    rows without a value (a tweet with no support topic)."""
    import pyarrow.compute as pc

    dataset = _parquet_dataset(settings)
    if dataset is None or column not in dataset.schema.names:  # no parquet file yet (or only invalid input)
        return {}
    counted = dataset.to_table(columns=[column]).group_by(column).aggregate([(column, "count", pc.CountOptions("all"))])
    return dict(zip(counted.column(column).to_pylist(), counted.column(f"{column}_count").to_pylist()))


def _table(progress: Progress) -> Table:
    table = Table(title=f"replyflow demo — {progress.elapsed():.0f} s", show_header=True)
    table.add_column("stage")
    table.add_column("count", justify="right")
    replay = f"{progress.replay_sent}" + ("" if progress.replay_done else " …")
    table.add_row("replayed into tweets.raw", replay)
    table.add_row("messages on tweets.raw", str(progress.raw))
    table.add_row("rejected (tweets.dlq)", str(progress.dlq))
    table.add_row("enriched by Spark", str(progress.enriched))
    table.add_row("tickets", str(progress.tickets))
    table.add_row("replies waiting / sent (dry run) / failed", f"{progress.queued} / {progress.sent} / {progress.failed}")
    return table


def _finished(progress: Progress, previous: tuple[int, ...] | None) -> bool:
    """Done when the replay ended, Spark enriched every valid message and the outbox is empty."""
    now = (progress.enriched, progress.tickets, progress.sent, progress.queued)
    return (
        progress.replay_done
        and progress.raw > 0
        and progress.enriched >= progress.raw
        and progress.queued == 0
        and previous == now
    )


def pick_examples(tickets: list[dict[str, Any]], topics: int = 3) -> list[dict[str, Any]]:
    """Tickets (API list items) that show what the policy does: public replies naming ``topics`` different
    topics, one with the general body (the topic was not confident enough to name), and one ticket per reason
    that gets no public reply (left for a human agent), as far as the tickets hold them."""
    picked: list[dict[str, Any]] = []
    codes: set[str] = set()  # topics named in a public reply
    general = False  # a public reply with the general body
    reasons: set[str] = set()  # tickets without a public reply
    for ticket in tickets:
        code, reason, replied = ticket.get("topic_code"), ticket.get("reason"), ticket.get("reply_status") is not None
        if replied and code != GENERAL_CODE and code not in codes and len(codes) < topics:
            codes.add(code)
        elif replied and code == GENERAL_CODE and not general:
            general = True
        elif not replied and reason not in reasons:
            reasons.add(reason)
        else:
            continue
        picked.append(ticket)
    return picked


def _summary(console: Console, settings: Settings, progress: Progress) -> None:
    stats = _api(settings, "stats")
    console.print()  # the live table's last line may lack its newline (output not a terminal)
    console.rule("Summary")
    tickets_by_topic = stats.get("tickets", {}).get("by_topic", {})
    for column in ("sentiment", "topic"):
        table = Table(title=f"enriched tweets per {column} (parquet)")
        table.add_column(column)
        table.add_column("tweets", justify="right")
        for name, count in sorted(parquet_counts(settings, column).items(), key=lambda kv: -kv[1]):
            table.add_row("(no support topic)" if name is None else str(name), str(count))
        console.print(table)
    table = Table(title="tickets per topic code")
    table.add_column("code")
    table.add_column("tickets", justify="right")
    for code, count in sorted(tickets_by_topic.items(), key=lambda kv: -kv[1]):
        table.add_row(code, str(count))
    console.print(table)
    tickets = pick_examples(_api(settings, "tickets", per_page=MAX_PER_PAGE).get("items", []))
    examples = Table(title="example replies: what the policy did and why", show_lines=True)
    examples.add_column("ticket")
    examples.add_column("tweet")
    examples.add_column("reply")
    examples.add_column("why")
    for ticket in tickets:
        detail = _api(settings, f"tickets/{ticket['ticket_id']}")
        tweet = (detail.get("tweets") or [{}])[0]
        outbox = detail.get("outbox") or {}
        reply = outbox.get("text") or "(no public reply: left for a human agent)"
        examples.add_row(ticket["ticket_id"], tweet.get("text", ""), reply, REASONS.get(ticket.get("reason", ""), ""))
    console.print(examples)
    first = f"{progress.first_reply_after:.1f} s" if progress.first_reply_after is not None else "n/a"
    console.print(
        f"tweets published: {progress.replay_sent} (rejected at ingest: {progress.replay_dlq}); "
        f"enriched: {progress.enriched}; tickets: {progress.tickets}; replies sent (dry run): {progress.sent}\n"
        f"parquet: {settings.parquet_location} ({count_parquet_rows(settings)} rows)\n"
        f"dashboard: {settings.reply_api_url}/ (sign in: first `replyflow users add NAME --role admin`)\n"
        f"time to first reply: {first}; total run time: {progress.elapsed():.1f} s\n"
        f"logs: {settings.logs_dir}"
    )


def run_demo(
    settings: Settings,
    limit: int = 1000,
    rate: float = 50.0,
    keep_running: bool = False,
    fresh: bool = True,
    timeout: float = 900.0,
    dataset: Path | None = None,
) -> Progress:
    """Run the pipeline end-to-end and print a summary; returns what was observed."""
    from replyflow.ingest.replay import replay_file
    from replyflow.kafka.broker import fetch_jars

    console = Console()
    progress = Progress()
    dataset = dataset or settings.data_dir / "airline_tweets_sentiment.csv"
    if not any(settings.models_dir.glob("*/manifest.json")):
        console.print("[bold]No trained models found: training them first (a few minutes)…")
        from replyflow.nlp.train import train_all

        train_all(settings)
    fetch_jars(settings)
    if fresh:
        services.down(settings)  # a previous `replyflow up` must not keep files we are about to remove
        _fresh_state(settings)
    env = services.token_env(settings)
    if env:
        settings = settings.model_copy(update={"api_token": SecretStr(env["REPLYFLOW_API_TOKEN"])})

    console.print("[bold]Starting Kafka, the reply service and the Spark job…")
    services.up(settings, env)

    def replay() -> None:
        try:
            stats = replay_file(settings, dataset, rate=rate, limit=limit, progress=False)
            progress.replay_sent, progress.replay_dlq = stats.published, stats.dead_lettered
        except Exception as exc:  # shown in the summary; the demo still stops cleanly
            progress.replay_error = str(exc)
            log.exception("replay failed")
        finally:
            progress.replay_done = True

    replayer = threading.Thread(target=replay, name="replay", daemon=True)
    try:
        replayer.start()
        previous: tuple[int, ...] | None = None
        with Live(_table(progress), console=console, refresh_per_second=2) as live:
            while progress.elapsed() < timeout:
                _poll(settings, progress)
                if not progress.replay_done:
                    progress.replay_sent = progress.raw
                live.update(_table(progress))
                if _finished(progress, previous):
                    break
                previous = (progress.enriched, progress.tickets, progress.sent, progress.queued)
                time.sleep(1.0)
            else:
                console.print(f"[red]Timed out after {timeout:.0f} s; see the logs in {settings.logs_dir}")
        if progress.replay_error:
            console.print(f"[red]Replay failed: {progress.replay_error}")
        _summary(console, settings, progress)
        if keep_running:
            console.print("Services keep running; press Ctrl-C to stop them (or run `replyflow down`).")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        console.print("\nInterrupted: stopping everything…")
    finally:
        services.down(settings)
        console.print("[bold]All services stopped.")
    return progress
