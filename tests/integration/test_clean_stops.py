"""Clean stops of the real processes: ``replyflow down`` / Ctrl-C on the stream, SIGTERM on ``serve``.

The defect these guard (issue 15): ``down`` signalled the stream's whole process group, so the
Spark JVM died under the driver (``Py4JNetworkError``, exit 1, the batch redone) and the pyspark
daemon, in a process group of its own, was never stopped; ``serve`` died on SIGTERM without
stopping its sender.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from replyflow.core.procs import tagged_pids
from tests.reliability.test_faults import StreamProcess, dataset_tweets, parquet_ids, wait_for, write_jsonl

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.mark.parametrize("how", ["down", "ctrl-c"])
def test_stream_stops_cleanly_mid_batch(how: str, kafka_settings: Any, tmp_path: Path) -> None:
    from replyflow.ingest.replay import replay_file

    settings = kafka_settings.model_copy(update={"stream_post_replies": False})
    tweets = dataset_tweets(300)
    assert replay_file(settings, write_jsonl(tmp_path / "in.jsonl", tweets), progress=False).published == len(tweets)
    stream = StreamProcess(settings, tmp_path, "stream", until_idle=8, post_replies=False,
                           extra_env={"REPLYFLOW_STREAM_MAX_OFFSETS_PER_TRIGGER": "100"})
    try:
        stream.start()
        parquet = Path(settings.parquet_location)
        wait_for(lambda: bool(list(parquet.glob("date=*/batch_id=*/*.parquet"))), 300, "the first batch", stream)
        # down: SIGTERM to the driver only; Ctrl-C: SIGINT to the whole foreground group, as a terminal sends it
        stream.terminate(signal.SIGTERM if how == "down" else signal.SIGINT, group=how == "ctrl-c")
        rc = stream.wait(timeout=180)
        log_text = stream.tail(10**6)
        assert rc == 0, log_text[-3000:]
        assert "stopping after the current batch" in log_text
        assert "Py4JNetworkError" not in log_text and "Traceback" not in log_text.split("==== run 1")[-1]
        # nothing of it is left: the JVM stopped with Spark, the pyspark daemon with the JVM
        deadline = time.monotonic() + 20
        while tagged_pids(stream.tag) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert tagged_pids(stream.tag) == []
        assert len(parquet_ids(settings)) < len(tweets), "the stream had finished before the stop: proves nothing"

        stream.start()  # the rest, on the same checkpoint: nothing lost, nothing doubled
        assert stream.wait(timeout=300) == 0, stream.tail()
    finally:
        stream.stop()
    ids = parquet_ids(settings)
    assert len(ids) == len(set(ids)) == len(tweets)


def test_serve_sigterm_stops_sender_and_exits_0(settings: Any) -> None:
    from replyflow.ops import background
    from replyflow.ops.background import free_port
    from replyflow.ops.status import collect, render

    port = free_port()
    own = settings.model_copy(update={"api_port": port, "stream_metrics_port": 0})
    pid = background.start_service(own, background.SERVICES[0])
    try:
        background.wait_for_api(own, timeout=60)
        assert requests.get(f"{own.reply_api_url}/api/v1/health", timeout=5).ok
        metrics = requests.get(f"{own.reply_api_url}/metrics", timeout=5).text
        assert 'replyflow_http_requests_total{endpoint="/api/v1/health",method="GET",status="200"} ' in metrics
        assert 'replyflow_http_request_seconds_bucket{endpoint="/api/v1/health",le="0.005"}' in metrics
        assert 'replyflow_outbox_entries{status="uncertain"} 0.0' in metrics

        from rich.console import Console

        status = collect(own)
        console = Console(record=True, width=140)
        render(status, console)
        shown = console.export_text()
        assert "running (pid" in shown and "outbox uncertain" in shown and status.alerts == []
    finally:
        clean = background.stop_service(own, "serve", timeout=60)
    assert clean, "serve did not stop on SIGTERM"
    assert background.pid_of(own, "serve") is None and tagged_pids(background.service_tag(own, "serve")) == []
    log_text = (own.logs_dir / "serve.out").read_text()
    assert "SIGTERM received" in log_text and "sender stopped" in log_text and "reply service stopped" in log_text
    assert pid > 0
