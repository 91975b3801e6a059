"""The local cluster's configuration and ``replyflow status``'s reading of metrics, without starting anything."""

from __future__ import annotations

from typing import Any

from replyflow.kafka import broker
from replyflow.kafka import cluster as kafka_cluster
from replyflow.ops import cluster, spark_cluster
from replyflow.ops.status import Status, by_label, parse_metrics, render, total
from replyflow.reply.metrics import ReplyMetrics


def props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_cluster_nodes_form_one_static_quorum(settings: Any) -> None:
    s = settings.model_copy(update={"cluster_kafka_port": 30000})
    nodes = [kafka_cluster.node_settings(s, i) for i in (1, 2, 3)]
    assert [n.kafka_local_port for n in nodes] == [30000, 30001, 30002]
    assert [n.kafka_controller_port for n in nodes] == [30100, 30101, 30102]
    assert len({n.kafka_data_dir for n in nodes}) == 3 and all(n.kafka_is_local for n in nodes)
    p = props(broker._server_properties(nodes[1], kafka_cluster._node(s, 2)))
    assert p["node.id"] == "2"
    assert p["controller.quorum.voters"] == "1@127.0.0.1:30100,2@127.0.0.1:30101,3@127.0.0.1:30102"
    assert "controller.quorum.bootstrap.servers" not in p
    assert p["offsets.topic.replication.factor"] == "3" and p["transaction.state.log.min.isr"] == "2"
    assert p["broker.session.timeout.ms"] == "4000"  # quick re-registration after kill -9 (OPERATIONS.md)
    assert kafka_cluster._node(s, 1).cluster_id == kafka_cluster._node(s, 3).cluster_id  # one id, kept on disk
    single = props(broker._server_properties(settings))
    assert single["controller.quorum.bootstrap.servers"] and single["offsets.topic.replication.factor"] == "1"


def test_services_see_the_cluster_through_settings(settings: Any) -> None:
    s = settings.model_copy(update={"cluster_kafka_port": 30000, "cluster_spark_port": 31000, "cluster_postgres_port": 32000})
    client = cluster.client_settings(s)
    assert client.bootstrap_servers == "127.0.0.1:30000,127.0.0.1:30001,127.0.0.1:30002"
    assert (client.topic_replication_factor, client.topic_min_insync_replicas) == (3, 2)
    assert client.spark_master == "spark://127.0.0.1:31000" == spark_cluster.master_url(s)
    assert client.db_url == "postgresql+psycopg://postgres@127.0.0.1:32000/replyflow"
    env = client.to_env()
    assert env["REPLYFLOW_SPARK_MASTER"] == client.spark_master and env["REPLYFLOW_TOPIC_MIN_INSYNC_REPLICAS"] == "2"
    assert cluster.started(s) is None  # nothing started here


def test_status_reads_the_exposition_and_raises_alerts() -> None:
    from rich.console import Console

    metrics = ReplyMetrics(lambda: {"queued": 3, "sending": 0, "sent": 10, "failed": 1, "uncertain": 2})
    metrics.observe_request("/api/v1/replies", "POST", 200, 0.02)
    metrics.observe_request("/api/v1/replies", "POST", 503, 0.04)
    samples = parse_metrics(metrics.exposition().decode())
    assert by_label(samples, "replyflow_outbox_entries", "status")["uncertain"] == 2
    assert total(samples, "replyflow_http_requests_total") == 2
    assert total(samples, "replyflow_http_requests_total", status="503") == 1
    stream = parse_metrics("# TYPE replyflow_stream_stale gauge\nreplyflow_stream_stale 1.0\n"
                           "# TYPE replyflow_stream_consumer_lag gauge\nreplyflow_stream_consumer_lag{partition=\"0\"} 42.0\n")
    status = Status(processes=[("replyflow serve", "running (pid 1)", "")], reply=samples, stream=stream,
                    alerts=["x"])
    console = Console(record=True, width=120)
    render(status, console)
    text = console.export_text()
    assert "outbox uncertain" in text and "p0:42" in text and "YES" in text and "HTTP 5xx" in text
