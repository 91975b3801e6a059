"""A local 3-node Apache Kafka cluster (KRaft) on 127.0.0.1, for ``replyflow up --cluster`` and the tests.

Three JVMs, each a broker and a controller (``process.roles=broker,controller``), with a
static 3-voter controller quorum: the smallest layout in which a broker, or the active
controller, can die without the cluster stopping.  Topics get replication factor 3 and
``min.insync.replicas=2`` (:mod:`replyflow.kafka.topics`), producers use ``acks=all``, so an
acknowledged tweet is on at least two brokers and survives a kill -9 of any one.

Node ``i`` (1-based) listens for clients on ``cluster_kafka_port + i - 1`` and for controllers
on ``cluster_kafka_port + 100 + i - 1``; its state is ``<cluster_dir>/kafka-<i>/`` (the same
layout as the single broker's ``var/``: ``kafka/`` and ``logs/``).  Each node is started and
stopped by :mod:`replyflow.kafka.broker` with its own settings copy, so pidfiles, pid-reuse
guards and log handling are the single broker's.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from replyflow.core.waiting import WaitTimeout, wait_until
from replyflow.kafka import broker
from replyflow.settings import Settings

log = logging.getLogger(__name__)

NODES = 3
#: Heap of each node: three of them share 2 cores and a few GiB with Spark and PostgreSQL.
NODE_HEAP = "256m"


def _root(settings: Settings) -> Path:
    return settings.cluster_dir


def node_settings(settings: Settings, node_id: int) -> Settings:
    """Settings of node ``node_id`` (1..3) as the single-broker code sees it: a local broker of its own."""
    client, controller = _ports(settings, node_id)
    return settings.model_copy(update={
        "kafka_bootstrap_servers": None, "kafka_local_port": client, "kafka_controller_port": controller,
        "state_dir": _root(settings) / f"kafka-{node_id}", "kafka_heap": NODE_HEAP,
    })  # fmt: skip


def _ports(settings: Settings, node_id: int) -> tuple[int, int]:
    return settings.cluster_kafka_port + node_id - 1, settings.cluster_kafka_port + 100 + node_id - 1


def bootstrap_servers(settings: Settings) -> str:
    """All three client addresses (a client that knows one live node finds the others)."""
    return ",".join(f"127.0.0.1:{_ports(settings, i)[0]}" for i in range(1, NODES + 1))


def _node(settings: Settings, node_id: int) -> broker.Node:
    voters = ",".join(f"{i}@127.0.0.1:{_ports(settings, i)[1]}" for i in range(1, NODES + 1))
    return broker.Node(node_id=node_id, voters=voters, cluster_id=_cluster_id(settings), replication=NODES)


def _cluster_id(settings: Settings) -> str:
    """One id for the three nodes' storage, kept beside them (formatted once, reused on restart)."""
    path = _root(settings) / "kafka-cluster-id"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(broker.new_cluster_id() + "\n")
    return path.read_text().strip()


def start_node(settings: Settings, node_id: int, timeout: float = 120.0, die_with_parent: bool = False) -> None:
    """(Re)start one node and wait until it answers (the fault tests restart a killed node)."""
    broker.start(node_settings(settings, node_id), timeout=timeout, die_with_parent=die_with_parent,
                 node=_node(settings, node_id))


def start(settings: Settings, timeout: float = 120.0, die_with_parent: bool = False) -> str:
    """Start the three nodes (idempotent) and wait until all answer; returns the bootstrap servers."""
    for node_id in range(1, NODES + 1):  # launch all first: none answers before a quorum majority runs
        broker.start(node_settings(settings, node_id), die_with_parent=die_with_parent, node=_node(settings, node_id),
                     wait=False)
    for node_id in range(1, NODES + 1):
        start_node(settings, node_id, timeout=timeout, die_with_parent=die_with_parent)
    _wait_for_brokers(settings, NODES, timeout)
    log.info("Kafka cluster of %d nodes answers on %s", NODES, bootstrap_servers(settings))
    return bootstrap_servers(settings)


def _wait_for_brokers(settings: Settings, count: int, timeout: float) -> None:
    """Until the cluster's metadata lists ``count`` registered brokers (topics with RF 3 need all three)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap_servers(settings), "logger": logging.getLogger("replyflow.kafka.librdkafka")})

    def registered() -> bool:
        try:
            return len(admin.list_topics(timeout=5).brokers) >= count
        except Exception:  # noqa: BLE001 - not up yet
            return False

    try:
        wait_until(registered, timeout, interval=0.5, what=f"{count} registered Kafka brokers")
    except WaitTimeout:
        raise broker.BrokerError(f"fewer than {count} brokers registered within {timeout:.0f} s; "
                                 f"see {_root(settings)}/kafka-*/logs/kafka-server.log") from None


def stop(settings: Settings, timeout: float = 30.0) -> int:
    """Stop every node (SIGTERM: a controlled shutdown); returns how many ran.

    All at once: stopped one after the other, the last node has no controller quorum left to
    acknowledge its controlled shutdown and waits for the timeout (then SIGKILL)."""
    with ThreadPoolExecutor(NODES) as pool:
        return sum(pool.map(lambda i: broker.stop(node_settings(settings, i), timeout=timeout), range(1, NODES + 1)))


def node_pids(settings: Settings) -> dict[int, int | None]:
    """``node_id -> pid`` (None when the node is not running)."""
    return {i: broker.running_pid(node_settings(settings, i)) for i in range(1, NODES + 1)}


def running(settings: Settings) -> bool:
    return any(pid is not None for pid in node_pids(settings).values())
