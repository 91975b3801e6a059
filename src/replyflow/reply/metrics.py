"""Prometheus metrics of the reply service and its outbox sender (``GET /metrics``).

Why a registry per service object rather than prometheus_client's global one: tests build many
apps in one process, and each must count only its own requests.  The outbox depth is read
from the database when Prometheus scrapes (a collector), so it is right even when another
process (a separate ``replyflow send``, a second API instance) changed the outbox.

The alert rules and the Grafana dashboard in docs/ops/ may only use metrics defined here or
in :mod:`replyflow.stream.metrics` (a test collects both registries and checks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

#: Request latency buckets (seconds): the API answers in milliseconds; a batch of 500 in under a second.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _OutboxDepth(Collector):
    """``replyflow_outbox_entries{status}``: entries per outbox status, read at scrape time."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("replyflow_outbox_entries", "Outbox entries per status (uncertain: sender died mid-post)",
                                   labels=["status"])
        try:
            counts = self.counts()
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is briefly away
            log.warning("outbox depth unavailable for /metrics", exc_info=True)
            counts = {}
        for status, n in counts.items():
            family.add_metric([status], n)
        yield family

    def describe(self) -> list[Any]:
        return [GaugeMetricFamily("replyflow_outbox_entries", "", labels=["status"])]


class ReplyMetrics:
    """Counters and histograms of one reply service (API + sender)."""

    def __init__(self, outbox_counts: Callable[[], dict[str, int]] | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("replyflow_http_requests", "HTTP requests by endpoint, method and status",
                                ["endpoint", "method", "status"], registry=r)
        self.latency = Histogram("replyflow_http_request_seconds", "HTTP request latency by endpoint", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.sends = Counter("replyflow_sender_sends", "Outbox entries the sender finished, by outcome (sent, failed)",
                             ["outcome"], registry=r)
        self.send_seconds = Histogram("replyflow_sender_send_seconds", "Time to post one reply, retries included",
                                      buckets=(0.1, 0.5, 1, 2, 5, 15, 60, 300, 900), registry=r)
        self.retry_waits = Counter("replyflow_sender_retry_waits", "Waits before retrying an X call (5xx, network, 429)",
                                   registry=r)
        self.rate_limit_waits = Counter("replyflow_sender_rate_limit_waits", "Waits for x-rate-limit-reset after a 429",
                                        registry=r)
        self.rate_limit_wait_seconds = Counter("replyflow_sender_rate_limit_wait_seconds",
                                               "Seconds spent waiting for X rate limits", registry=r)
        self.uncertain = Counter("replyflow_sender_uncertain",
                                 "Entries found 'sending' past the lease (sender died mid-post) and marked uncertain",
                                 registry=r)
        if outbox_counts is not None:
            r.register(_OutboxDepth(outbox_counts))

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)

