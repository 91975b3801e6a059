"""The local cluster of ``replyflow up --cluster``: 3 Kafka brokers, Spark standalone, PostgreSQL.

Everything runs on 127.0.0.1 and is started by replyflow itself from what bootstrap installs
(the pinned Kafka jars, pyspark's distribution, Debian's PostgreSQL), with its state under
``var/cluster/``.  It exists to prove, on one machine, what a production deployment relies on:
replicated topics (RF 3, ``min.insync.replicas=2``, ``acks=all``) that survive a broker kill,
a Spark job whose executors run on separate worker JVMs, and PostgreSQL as the ticket store.

The services (``serve``, ``stream``) see the cluster only through settings
(:func:`client_settings`); ``cluster.env`` beside the state holds the same values as
environment variables for other commands (``source var/cluster/cluster.env``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from replyflow.kafka import cluster as kafka_cluster
from replyflow.ops import spark_cluster
from replyflow.ops.postgres import PostgresServer
from replyflow.settings import Settings

log = logging.getLogger(__name__)

#: What the services need to know to use the cluster, as settings field names.
CLIENT_FIELDS = ("kafka_bootstrap_servers", "topic_replication_factor", "topic_min_insync_replicas", "spark_master",
                 "database_url")


def _state_file(settings: Settings) -> Path:
    return settings.cluster_dir / "cluster.json"


def postgres(settings: Settings) -> PostgresServer:
    return PostgresServer(settings.cluster_dir / "postgres", settings.cluster_postgres_port)


def client_settings(settings: Settings) -> Settings:
    """``settings`` pointed at the local cluster (what ``up --cluster`` gives the services)."""
    return settings.model_copy(update={
        "kafka_bootstrap_servers": kafka_cluster.bootstrap_servers(settings),
        "topic_replication_factor": kafka_cluster.NODES, "topic_min_insync_replicas": 2,
        "spark_master": spark_cluster.master_url(settings), "database_url": postgres(settings).url(),
    })  # fmt: skip


def start(settings: Settings, die_with_parent: bool = False) -> Settings:
    """Start (or find running) every part of the cluster; returns the settings that use it."""
    from replyflow.kafka.topics import ensure_topics

    settings.cluster_dir.mkdir(parents=True, exist_ok=True)
    client = client_settings(settings)
    values = {name: getattr(client, name) for name in CLIENT_FIELDS}
    # Written first: a start that fails half-way still leaves `replyflow down` knowing what to stop.
    _state_file(settings).write_text(json.dumps(values, indent=2) + "\n")
    env = "".join(f"export REPLYFLOW_{name.upper()}={value}\n" for name, value in values.items())
    (settings.cluster_dir / "cluster.env").write_text(env)
    kafka_cluster.start(settings, die_with_parent=die_with_parent)
    spark_cluster.start(settings, die_with_parent=die_with_parent)
    postgres(settings).start()
    ensure_topics(client)
    log.info("local cluster up: Kafka %s, Spark %s (UI %s), PostgreSQL on 127.0.0.1:%d; settings in %s",
             client.kafka_bootstrap_servers, client.spark_master, spark_cluster.master_ui(settings),
             settings.cluster_postgres_port, settings.cluster_dir / "cluster.env")  # fmt: skip
    return client


def started(settings: Settings) -> Settings | None:
    """The cluster's client settings when ``up --cluster`` started one here (its state file exists), else None."""
    path = _state_file(settings)
    if not path.is_file():
        return None
    return settings.model_copy(update=json.loads(path.read_text()))


def stop(settings: Settings) -> None:
    """Stop Spark (workers, master), the brokers and PostgreSQL; forget the state file, keep the data."""
    spark_cluster.stop(settings)
    kafka_cluster.stop(settings)
    postgres(settings).stop()
    _state_file(settings).unlink(missing_ok=True)
    log.info("local cluster stopped (data kept in %s)", settings.cluster_dir)
