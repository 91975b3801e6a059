"""``replyflow status``: what runs, and the metrics a person needs, as rich tables.

It reads the same ``/metrics`` endpoints Prometheus scrapes (the reply service's and the
stream job's), so what a person sees here is what the alert rules see.  Exit code 0 when all
is well, 2 while an alert holds (the stream is stale, or outbox entries are ``uncertain``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from replyflow.settings import Settings

log = logging.getLogger(__name__)

Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse_metrics(text: str) -> Samples:
    """``sample name -> [(labels, value)]`` of a Prometheus text exposition."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return samples


def _scrape(url: str) -> Samples | None:
    try:
        response = requests.get(url, timeout=3)
        response.raise_for_status()
    except requests.RequestException:
        return None
    return parse_metrics(response.text)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(v for lab, v in samples.get(name, []) if all(lab.get(k) == want for k, want in labels.items()))


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {lab.get(label, ""): v for lab, v in samples.get(name, [])}


@dataclass
class Status:
    """Everything ``replyflow status`` shows; ``alerts`` non-empty means exit code 2."""

    processes: list[tuple[str, str, str]] = field(default_factory=list)  # (what, state, detail)
    reply: Samples | None = None
    stream: Samples | None = None
    alerts: list[str] = field(default_factory=list)


def _processes(settings: Settings) -> tuple[Settings, list[tuple[str, str, str]]]:
    from replyflow.kafka import broker
    from replyflow.kafka import cluster as kafka_cluster
    from replyflow.ops import cluster as local_cluster
    from replyflow.ops import spark_cluster
    from replyflow.ops.background import SERVICES, pid_of

    def row(what: str, pid: int | None, detail: str = "") -> tuple[str, str, str]:
        return what, f"running (pid {pid})" if pid else "not running", detail

    client = local_cluster.started(settings)
    rows = [row(f"replyflow {s.name}", pid_of(settings, s.name)) for s in SERVICES]
    if client is not None:
        rows += [row(f"Kafka node {i}", pid, f"127.0.0.1:{kafka_cluster.node_settings(settings, i).kafka_local_port}")
                 for i, pid in kafka_cluster.node_pids(settings).items()]
        rows += [row(f"Spark {n}", spark_cluster.pid_of(settings, n), spark_cluster.master_url(settings) if n == "master" else "")
                 for n in spark_cluster.daemon_names(settings)]
        pg = local_cluster.postgres(settings)
        rows.append(("PostgreSQL", "running" if pg.running() else "not running", f"127.0.0.1:{pg.port}"))
        rows.append(("Spark workers alive", str(spark_cluster.alive_workers(settings)), spark_cluster.master_ui(settings)))
        return client, rows
    if settings.kafka_is_local:
        rows.append(row("Kafka broker", broker.running_pid(settings), settings.bootstrap_servers))
    else:
        rows.append(("Kafka", "external", settings.bootstrap_servers))
    return settings, rows


def collect(settings: Settings) -> Status:
    """Processes, both metrics endpoints and the alerts that hold now."""
    settings, rows = _processes(settings)
    status = Status(processes=rows)
    status.reply = _scrape(f"{settings.reply_api_url}/metrics")
    if settings.stream_metrics_port:
        status.stream = _scrape(f"http://{settings.api_host}:{settings.stream_metrics_port}/metrics")
    if status.reply is not None:
        uncertain = total(status.reply, "replyflow_outbox_entries", status="uncertain")
        if uncertain:
            status.alerts.append(f"{uncertain:.0f} outbox entr{'y' if uncertain == 1 else 'ies'} UNCERTAIN: a sender died "
                                 "while posting; check on X and reply by hand (dashboard failures queue)")
    if status.stream is not None and total(status.stream, "replyflow_stream_stale"):
        status.alerts.append("stream STALE: no batch while records wait, or no new tweet while the X source should be live")
    return status


def render(status: Status, console: Any) -> None:
    from rich.table import Table

    table = Table(title="Processes")
    for column in ("what", "state", "where"):
        table.add_column(column)
    for what, state, detail in status.processes:
        table.add_row(what, state if "not" not in state else f"[red]{state}[/red]", detail)
    console.print(table)

    if status.reply is None:
        console.print("[yellow]reply service: /metrics does not answer[/yellow]")
    else:
        r = status.reply
        table = Table(title="Reply service and sender")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for state, n in sorted(by_label(r, "replyflow_outbox_entries", "status").items()):
            table.add_row(f"outbox {state}", f"[red]{n:.0f}[/red]" if state == "uncertain" and n else f"{n:.0f}")
        table.add_row("HTTP requests", f"{total(r, 'replyflow_http_requests_total'):.0f}")
        server_errors = sum(v for lab, v in r.get("replyflow_http_requests_total", []) if lab.get("status", "").startswith("5"))
        table.add_row("HTTP 5xx", f"{server_errors:.0f}")
        count, seconds = total(r, "replyflow_http_request_seconds_count"), total(r, "replyflow_http_request_seconds_sum")
        table.add_row("mean latency", f"{1000 * seconds / count:.1f} ms" if count else "-")
        for outcome in ("sent", "failed"):
            table.add_row(f"replies {outcome}", f"{total(r, 'replyflow_sender_sends_total', outcome=outcome):.0f}")
        table.add_row("rate-limit waits", f"{total(r, 'replyflow_sender_rate_limit_waits_total'):.0f}")
        table.add_row("marked uncertain (this run)", f"{total(r, 'replyflow_sender_uncertain_total'):.0f}")
        console.print(table)

    if status.stream is None:
        console.print("[yellow]stream job: /metrics does not answer[/yellow]")
    else:
        s = status.stream
        table = Table(title="Stream job")
        table.add_column("metric")
        table.add_column("value", justify="right")
        table.add_row("batches", f"{total(s, 'replyflow_stream_batch_seconds_count'):.0f}")
        for name in ("rows_in", "rows_out", "dead_letters", "replies_posted"):
            table.add_row(name.replace("_", " "), f"{total(s, f'replyflow_stream_{name}_total'):.0f}")
        lag = by_label(s, "replyflow_stream_consumer_lag", "partition")
        table.add_row("consumer lag", " ".join(f"p{p}:{v:.0f}" for p, v in sorted(lag.items())) or "-")
        table.add_row("last batch", f"{total(s, 'replyflow_stream_last_batch_age_seconds'):.0f} s ago")
        table.add_row("last new tweet seen", f"{total(s, 'replyflow_stream_last_input_age_seconds'):.0f} s ago")
        table.add_row("stale", "[red]YES[/red]" if total(s, "replyflow_stream_stale") else "no")
        console.print(table)
    for alert in status.alerts:
        console.print(f"[bold red]ALERT[/bold red] {alert}")


def show_status(settings: Settings, console: Any | None = None) -> int:
    """Print the status; returns the exit code (2 while an alert holds)."""
    from rich.console import Console

    status = collect(settings)
    render(status, console or Console())
    return 2 if status.alerts else 0
