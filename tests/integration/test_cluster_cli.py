"""``replyflow up --cluster``, ``status`` and ``down`` as a person runs them: one command up, one down, nothing left."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.cluster import free_port_base

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]
REPO_ROOT = Path(__file__).resolve().parents[2]


def replyflow(args: list[str], env: dict[str, str], timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "replyflow.cli", *args], env=env, cwd=Path(env["REPLYFLOW_STATE_DIR"]).parent,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def test_up_cluster_status_down(settings: Any) -> None:
    from replyflow.core.procs import tagged_pids
    from replyflow.kafka import cluster as kafka_cluster
    from replyflow.ops import cluster, spark_cluster
    from replyflow.ops.background import free_port, service_tag
    from replyflow.ops.postgres import bin_dir

    if bin_dir() is None:
        pytest.skip("PostgreSQL server binaries not installed")
    root = Path(tempfile.mkdtemp(prefix="replyflow-up-cluster-"))
    root.chmod(0o755)  # as root, PostgreSQL runs as another user and must reach its data dir below this
    tmp_path = root
    state = root / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLYFLOW_")}
    env.update({
        "REPLYFLOW_CONFIG": str(tmp_path / "none.toml"), "REPLYFLOW_STATE_DIR": str(state),
        "REPLYFLOW_JARS_DIR": str(REPO_ROOT / ".cache" / "jars"), "REPLYFLOW_JVM_DIR": str(REPO_ROOT / "jvm"),
        "REPLYFLOW_MODELS_DIR": str(REPO_ROOT / "models"),
        "REPLYFLOW_CLUSTER_KAFKA_PORT": str(free_port_base((0, 1, 2, 100, 101, 102))),
        "REPLYFLOW_CLUSTER_SPARK_PORT": str(free_port_base((0, 1))), "REPLYFLOW_CLUSTER_POSTGRES_PORT": str(free_port()),
        "REPLYFLOW_API_PORT": str(free_port()), "REPLYFLOW_STREAM_METRICS_PORT": str(free_port()),
        "REPLYFLOW_SPARK_DRIVER_MEMORY": "768m", "SPARK_LOCAL_IP": "127.0.0.1",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)]),
    })  # fmt: skip
    base = settings.model_copy(update={
        "state_dir": state, "cluster_kafka_port": int(env["REPLYFLOW_CLUSTER_KAFKA_PORT"]),
        "cluster_spark_port": int(env["REPLYFLOW_CLUSTER_SPARK_PORT"]),
        "cluster_postgres_port": int(env["REPLYFLOW_CLUSTER_POSTGRES_PORT"]),
    })  # fmt: skip
    try:
        up = replyflow(["up", "--cluster"], env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "cluster.env" in up.stdout
        client = cluster.started(base)
        assert client is not None and client.topic_replication_factor == 3
        assert (state / "cluster" / "cluster.env").read_text().count("export ") == len(cluster.CLIENT_FIELDS)

        # the stream job runs on the cluster once its metrics answer and the master lists its application
        metrics = f"http://127.0.0.1:{env['REPLYFLOW_STREAM_METRICS_PORT']}/metrics"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if requests.get(metrics, timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        else:
            pytest.fail("the stream's /metrics never answered:\n" + (state / "logs" / "stream.out").read_text()[-3000:])
        apps = requests.get(f"{spark_cluster.master_ui(base)}/json/", timeout=5).json()["activeapps"]
        assert [a["name"] for a in apps] == ["replyflow-stream"]

        status = replyflow(["status"], env, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        for expected in ("Kafka node 3", "Spark worker-2", "PostgreSQL", "outbox uncertain", "consumer lag"):
            assert expected in status.stdout, status.stdout
        assert "not running" not in status.stdout, status.stdout
    finally:
        down = replyflow(["down"], env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "Traceback" not in (state / "logs" / "stream.out").read_text()
    assert cluster.started(base) is None
    assert all(pid is None for pid in kafka_cluster.node_pids(base).values())
    assert all(spark_cluster.pid_of(base, n) is None for n in spark_cluster.daemon_names(base))
    assert not cluster.postgres(base).running()
    assert tagged_pids(service_tag(base, "stream")) == [] and tagged_pids(service_tag(base, "serve")) == []
    shutil.rmtree(root, ignore_errors=True)
