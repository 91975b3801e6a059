"""The README's first command, end to end: `replyflow demo` on embedded defaults (small replay).

Runs the real thing: a local Kafka broker started by replyflow, the reply service and the
Spark job as background processes, a dataset replay, the live progress loop and the summary.
"""

from __future__ import annotations

import pytest

from replyflow.ops.background import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_runs_end_to_end_and_stops_everything(settings, capsys):
    from replyflow.demo import count_parquet_rows, parquet_counts, run_demo
    from replyflow.kafka.broker import broker_answers
    from replyflow.ops import background as services

    demo_settings = settings.model_copy(
        update={
            "api_port": free_port(),
            "kafka_local_port": free_port(),
            "kafka_controller_port": free_port(),
            "api_token": None,  # the demo must generate and share one itself
            "spark_master": "local[2]",
        }
    )
    progress = run_demo(demo_settings, limit=120, rate=0.0, timeout=600)

    assert progress.replay_error is None
    assert progress.replay_sent == 120
    assert progress.raw == 120
    assert progress.enriched == 120
    assert count_parquet_rows(demo_settings) == 120
    assert sum(parquet_counts(demo_settings, "sentiment").values()) == 120
    assert progress.tickets > 0
    assert progress.sent > 0 and progress.queued == 0 and progress.failed == 0
    assert progress.first_reply_after is not None

    out = capsys.readouterr().out
    assert "Summary" in out and "dashboard:" in out and "time to first reply" in out
    token = (demo_settings.state_dir / "run" / "api-token")
    assert not token.exists() or token.read_text().strip() not in out

    # Everything the demo started is stopped again.
    assert services.pid_of(demo_settings, "serve") is None
    assert services.pid_of(demo_settings, "stream") is None
    assert not broker_answers(demo_settings, timeout=1.0)
