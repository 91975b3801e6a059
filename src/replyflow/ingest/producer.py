"""Publishing to Kafka: valid tweets to ``tweets.raw`` (key = tweet_id), rejects to ``tweets.dlq``.

Why these producer settings: ``enable.idempotence`` + ``acks=all`` make librdkafka's internal
retries safe (no duplicates, no reordering within a partition), and keying by ``tweet_id``
sends every copy of a tweet to the same partition so downstream dedup by id is local.
Delivery reports are always checked: a failed delivery is counted, logged and raised by
:meth:`TweetProducer.flush`, never lost silently.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from replyflow.core.contracts import DeadLetter, RawTweet
from replyflow.settings import Settings

log = logging.getLogger(__name__)


class DeliveryError(RuntimeError):
    """One or more messages could not be delivered (after librdkafka's own retries)."""


@dataclass
class ProducerCounters:
    """Acknowledged tweets (``sent``), acknowledged dead letters (``dlq``), failed deliveries."""

    sent: int = 0
    dlq: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class TweetProducer:
    """A confluent-kafka producer for tweets and dead letters; use as a context manager.

    ``extra_config`` is merged last (tests use ``test.mock.num.brokers``; the benchmark tunes
    ``linger.ms``).  Leaving the ``with`` block flushes and raises :class:`DeliveryError` if any
    message failed.
    """

    def __init__(
        self,
        settings: Settings,
        extra_config: dict[str, Any] | None = None,
        buffer_full_timeout: float = 60.0,
    ) -> None:
        self.settings = settings
        self.topic_raw = settings.topic_raw
        self.topic_dlq = settings.topic_dlq
        self.counters = ProducerCounters()
        self._lock = threading.Lock()
        self._buffer_full_timeout = buffer_full_timeout
        self._reported_failures = 0
        config: dict[str, Any] = {
            "bootstrap.servers": settings.bootstrap_servers,
            "client.id": "replyflow-ingest",
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            # librdkafka retries transient errors itself until this deadline; after it the
            # delivery report carries the error and we count it.
            "message.timeout.ms": 120_000,
            "logger": logging.getLogger("replyflow.kafka.librdkafka"),
        }
        config.update(extra_config or {})
        self._producer = Producer(config)

    # --- counters (read by the CLI and tests) -------------------------------------------------
    @property
    def sent(self) -> int:
        return self.counters.sent

    @property
    def dlq(self) -> int:
        return self.counters.dlq

    @property
    def failed(self) -> int:
        return self.counters.failed

    # --- delivery reports ----------------------------------------------------------------------
    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        with self._lock:
            if err is not None:
                self.counters.failed += 1
                detail = f"{msg.topic()} key={msg.key()!r}: {err}"
                if len(self.counters.errors) < 100:
                    self.counters.errors.append(detail)
                log.error("Kafka delivery failed: %s", detail)
            elif msg.topic() == self.topic_dlq:
                self.counters.dlq += 1
            else:
                self.counters.sent += 1

    def _produce(self, topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]] | None) -> None:
        """Produce, waiting (serving delivery reports) while the local queue is full."""
        deadline = time.monotonic() + self._buffer_full_timeout
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=self._on_delivery)
                break
            except BufferError:
                # Transient: the local queue is full because the broker is slow or away.
                if time.monotonic() > deadline:
                    raise DeliveryError(
                        f"producer queue stayed full for {self._buffer_full_timeout:.0f} s; is Kafka at "
                        f"{self.settings.bootstrap_servers} reachable?"
                    ) from None
                self._producer.poll(0.1)
        self._producer.poll(0)

    # --- public API ----------------------------------------------------------------------------
    def publish(self, tweet: RawTweet) -> None:
        """Queue one validated tweet for ``tweets.raw`` keyed by its id (asynchronous; see flush)."""
        self._produce(self.topic_raw, tweet.to_json(), tweet.tweet_id.encode("ascii"), None)

    def dead_letter(self, payload: bytes | str, reason: str, stage: str) -> None:
        """Send a rejected input with the reason to ``tweets.dlq``; nothing invalid is ever dropped."""
        letter = DeadLetter(reason=reason, stage=stage, payload=payload)
        log.debug("Dead letter (%s): %s", stage, reason)
        self._produce(self.topic_dlq, letter.to_json(), None, [("stage", stage.encode())])

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery reports."""
        return self._producer.poll(timeout)

    def flush(self, timeout: float = 60.0, raise_on_failure: bool = True) -> None:
        """Wait for every queued message; raise :class:`DeliveryError` on new failures."""
        remaining = self._producer.flush(timeout)
        if remaining:
            raise DeliveryError(f"{remaining} messages still undelivered after {timeout:.0f} s")
        with self._lock:
            new_failures = self.counters.failed - self._reported_failures
            self._reported_failures = self.counters.failed
            sample = self.counters.errors[-3:]
        if new_failures and raise_on_failure:
            raise DeliveryError(f"{new_failures} messages failed delivery, e.g. {sample}")

    def __enter__(self) -> TweetProducer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Flush even when the body raised, so acknowledged counts are right; don't mask its error.
        self.flush(raise_on_failure=exc_type is None)
