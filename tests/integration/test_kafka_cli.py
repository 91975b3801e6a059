"""`replyflow kafka start|status|topics|stop` and `ingest replay` end to end through the CLI, on a broker of their own."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from replyflow.cli import app
from replyflow.kafka import broker
from replyflow.ops.background import free_port

pytestmark = pytest.mark.integration


def test_cli_start_topics_replay_stop(settings, repo_root: Path, tmp_path: Path, monkeypatch) -> None:
    port, cport = free_port(), free_port()
    env = {
        "REPLYFLOW_STATE_DIR": str(tmp_path / "var"),
        "REPLYFLOW_JARS_DIR": str(repo_root / ".cache" / "jars"),
        "REPLYFLOW_JVM_DIR": str(repo_root / "jvm"),
        "REPLYFLOW_KAFKA_LOCAL_PORT": str(port),
        "REPLYFLOW_KAFKA_CONTROLLER_PORT": str(cport),
        "REPLYFLOW_CONFIG": str(tmp_path / "none.toml"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = settings.model_copy(update={"state_dir": tmp_path / "var", "kafka_local_port": port, "kafka_controller_port": cport})
    runner = CliRunner()
    try:
        result = runner.invoke(app, ["kafka", "start"])
        assert result.exit_code == 0, result.output
        assert runner.invoke(app, ["kafka", "status"]).exit_code == 0
        result = runner.invoke(app, ["ingest", "replay", str(repo_root / "data" / "airline_tweets_sentiment.csv"), "--limit", "200"])
        assert result.exit_code == 0, result.output
        assert "200 rows" in result.output
        result = runner.invoke(app, ["kafka", "topics"])
        assert result.exit_code == 0 and "tweets.raw" in result.output
    finally:
        assert runner.invoke(app, ["kafka", "stop"]).exit_code == 0
    assert broker.running_pid(s) is None
    assert runner.invoke(app, ["kafka", "status"]).exit_code == 1
