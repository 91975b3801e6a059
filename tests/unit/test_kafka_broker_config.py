"""Broker configuration and jar fetching logic, without starting Java."""

from __future__ import annotations

import shutil

import pytest

from replyflow.kafka import broker


def test_server_properties_single_node_kraft(settings) -> None:
    s = settings.model_copy(update={"kafka_local_port": 30001, "kafka_controller_port": 30002})
    props = dict(line.split("=", 1) for line in broker._server_properties(s).splitlines())
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:30001,CONTROLLER://127.0.0.1:30002"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:30002"
    assert props["log.dirs"] == str(s.kafka_data_dir / "data")
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert props[key] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert str(s.logs_dir / "kafka-server.log") in broker._log4j2_properties(s)


def test_jars_current_compares_pom_hash(settings, tmp_path) -> None:
    jvm = tmp_path / "jvm"
    (jvm / "kafka-broker").mkdir(parents=True)
    pom = jvm / "kafka-broker" / "pom.xml"
    pom.write_text("<project>v1</project>")
    s = settings.model_copy(update={"jvm_dir": jvm, "jars_dir": tmp_path / "jars"})
    assert not broker.jars_current(s, "kafka-broker")  # nothing fetched
    target = s.jars_dir / "kafka-broker"
    target.mkdir(parents=True)
    (target / "a.jar").write_bytes(b"")
    assert not broker.jars_current(s, "kafka-broker")  # jars but no stamp: unknown provenance
    (target / ".pom.sha256").write_text(broker._pom_hash(pom))
    assert broker.jars_current(s, "kafka-broker")
    pom.write_text("<project>v2</project>")  # a pinned version changed
    assert not broker.jars_current(s, "kafka-broker")


def test_missing_maven_is_a_clear_error(settings, tmp_path, monkeypatch) -> None:
    s = settings.model_copy(update={"jars_dir": tmp_path / "jars"})  # the repo's poms, no jars yet
    real_which = shutil.which
    monkeypatch.setattr(broker.shutil, "which", lambda name: None if name == "mvn" else real_which(name))
    with pytest.raises(broker.BrokerError, match="Maven"):
        broker.fetch_jars(s)


def test_external_cluster_needs_no_broker(settings) -> None:
    s = settings.model_copy(update={"kafka_bootstrap_servers": "kafka-1:9092,kafka-2:9092"})
    assert not s.kafka_is_local
    broker.start(s)  # logs and returns
    assert broker.stop(s) is False
    assert not s.kafka_data_dir.exists()


def test_status_without_broker(settings) -> None:
    s = settings.model_copy(update={"kafka_local_port": 1})
    assert broker.status(s) is False
