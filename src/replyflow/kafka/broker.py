"""A real Apache Kafka broker (KRaft, single node) run by replyflow on 127.0.0.1.

Why a real broker and not a Python reimplementation: the Spark Kafka source relies on exact
offset semantics (end offsets, idempotent producer sequence numbers); look-alike brokers were
seen to report wrong end offsets, so Spark silently missed records.  The jars come from Maven
Central through the pinned poms in ``jvm/`` (``fetch_jars``), the broker runs as a detached
``java`` process (own process group, pid file) so it outlives the CLI command that started it.

Nothing here runs when ``settings.kafka_bootstrap_servers`` names an external cluster.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import logging
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from replyflow.core.procs import die_with_parent as die_with_parent_hook
from replyflow.core.procs import live_pid, stop_process
from replyflow.core.waiting import WaitTimeout, wait_until
from replyflow.settings import Settings

log = logging.getLogger(__name__)

#: Jar groups: name of the pom directory under ``settings.jvm_dir`` == directory under ``jars_dir``.
BROKER_JARS = "kafka-broker"
SPARK_KAFKA_JARS = "spark-kafka"
_STAMP = ".pom.sha256"
_PIDFILE = "broker.pid"


class BrokerError(RuntimeError):
    """The local broker could not be fetched, formatted, started or stopped."""


# --- jars ------------------------------------------------------------------------------------
def _pom(settings: Settings, group: str) -> Path:
    return settings.jvm_dir / group / "pom.xml"


def _pom_hash(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def jars_current(settings: Settings, group: str) -> bool:
    """True when ``jars_dir/group`` holds the jars of the pom as it is now (stamp = pom sha256).

    A hash rather than the pom's mtime: a fresh checkout changes every mtime but not the
    content, and a pinned-version bump changes the content even when mtimes are equal.
    """
    target = settings.jars_dir / group
    stamp = target / _STAMP
    pom = _pom(settings, group)
    if not stamp.is_file() or not pom.is_file() or not any(target.glob("*.jar")):
        return False
    return stamp.read_text().strip() == _pom_hash(pom)


@contextlib.contextmanager
def _fetch_lock(settings: Settings) -> Iterator[None]:
    """Serialise fetches across processes (parallel test sessions, CLI + stream job)."""
    settings.jars_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.jars_dir / ".fetch.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fetch_group(settings: Settings, group: str) -> Path:
    pom = _pom(settings, group)
    target = settings.jars_dir / group
    if not pom.is_file():
        raise BrokerError(f"pinned pom {pom} is missing (settings.jvm_dir={settings.jvm_dir})")
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven ('mvn') is not on PATH; it is needed once to fetch the Kafka jars from Maven Central "
            "(apt-get install maven, or copy the jars into " + str(target) + ")"
        )
    if shutil.which("java") is None:
        raise BrokerError("Java ('java', 17+) is not on PATH; Maven and the Kafka broker need it")
    staging = settings.jars_dir / f".{group}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
    ]  # fmt: skip
    log.info("Fetching %s jars from Maven Central (pom %s); the first run downloads ~100 MB", group, pom)
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not any(staging.glob("*.jar")):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise BrokerError(f"mvn failed ({proc.returncode}) fetching {group} jars:\n{tail}")
    (staging / _STAMP).write_text(_pom_hash(pom) + "\n")
    # Swap in one rename so a reader never sees a half-filled directory.
    old = settings.jars_dir / f".{group}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    log.info(
        "Fetched %d %s jars into %s in %.1f s",
        len(list(target.glob("*.jar"))), group, target, time.monotonic() - started,
    )  # fmt: skip
    return target


def fetch_jars(settings: Settings, groups: tuple[str, ...] = (BROKER_JARS, SPARK_KAFKA_JARS)) -> dict[str, Path]:
    """Make sure the pinned jars are in ``settings.jars_dir``; run Maven only when missing or stale."""
    result: dict[str, Path] = {}
    for group in groups:
        if not jars_current(settings, group):
            with _fetch_lock(settings):
                if not jars_current(settings, group):  # another process may have fetched meanwhile
                    _fetch_group(settings, group)
        else:
            log.debug("%s jars are current in %s", group, settings.jars_dir / group)
        result[group] = settings.jars_dir / group
    return result


def spark_connector_jars(settings: Settings) -> list[Path]:
    """Jars for ``spark.jars`` (spark-sql-kafka + its Kafka client), fetched if needed, sorted."""
    directory = fetch_jars(settings, (SPARK_KAFKA_JARS,))[SPARK_KAFKA_JARS]
    return sorted(directory.glob("*.jar"))


# --- configuration -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    """The single node by default, or one of a static KRaft quorum (``voters``: ``1@127.0.0.1:PORT,...``,
    one ``cluster_id``) whose internal topics are replicated ``replication`` times (:mod:`.cluster`)."""

    node_id: int = 1
    voters: str | None = None
    cluster_id: str | None = None
    replication: int = 1


SINGLE_NODE = Node()


def _server_properties(settings: Settings, node: Node = SINGLE_NODE) -> str:
    data = settings.kafka_data_dir
    port, cport = settings.kafka_local_port, settings.kafka_controller_port
    rf, min_isr = str(node.replication), str(min(2, node.replication))
    quorum = ({"controller.quorum.voters": node.voters} if node.voters
              else {"controller.quorum.bootstrap.servers": f"127.0.0.1:{cport}"})
    lines = {
        # Each JVM is both broker and KRaft controller: one node is the smallest real Kafka there is.
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        **quorum,
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data / "data"),
        "num.partitions": str(settings.topic_partitions),
        # Internal topics: replicated like the node count allows (1 on one node), and few partitions
        # so the first consumer group or transaction does not wait for 50 partitions to be created.
        "offsets.topic.replication.factor": rf,
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": "5",
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": "0",
        # After kill -9 a broker cannot register again (DUPLICATE_BROKER_REGISTRATION) until its old
        # session expired: 9 s by default, most of a ~16 s restart.  4 s still rides out GC pauses.
        "broker.session.timeout.ms": "4000",
        "broker.heartbeat.interval.ms": "1000",
        # The machine is shared: keep the thread count modest.
        "num.network.threads": "2",
        "num.io.threads": "4",
        "log.retention.hours": "168",
    }
    return "".join(f"{k}={v}\n" for k, v in lines.items())


def _log4j2_properties(settings: Settings) -> str:
    logfile = settings.logs_dir / "kafka-server.log"
    return (
        "status = warn\n"
        "shutdownHook = disable\n"  # Kafka flushes on SIGTERM; avoids a spurious WARN
        "appender.file.type = File\n"
        "appender.file.name = FILE\n"
        f"appender.file.fileName = {logfile}\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\n"
        "rootLogger.appenderRef.file.ref = FILE\n"
        "logger.kafka.name = kafka\nlogger.kafka.level = INFO\n"
        "logger.apache.name = org.apache.kafka\nlogger.apache.level = INFO\n"
        "logger.request.name = kafka.request.logger\nlogger.request.level = WARN\n"
    )


def _write_config(settings: Settings, node: Node = SINGLE_NODE) -> tuple[Path, Path]:
    settings.kafka_data_dir.mkdir(parents=True, exist_ok=True)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    server = settings.kafka_data_dir / "server.properties"
    log4j = settings.kafka_data_dir / "log4j2.properties"
    server.write_text(_server_properties(settings, node))
    log4j.write_text(_log4j2_properties(settings))
    return server, log4j


def _java_base(settings: Settings, log4j: Path) -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise BrokerError("Java ('java', 17+) is not on PATH; the Kafka broker needs it")
    jars = fetch_jars(settings, (BROKER_JARS,))[BROKER_JARS]
    return [
        java,
        f"-Xmx{settings.kafka_heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        f"-Dkafka.logs.dir={settings.logs_dir}",
        "-cp",
        f"{jars}/*",
    ]


def new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _format_storage(settings: Settings, base: list[str], server: Path, node: Node = SINGLE_NODE) -> None:
    """Format the KRaft log directory once; a formatted directory carries meta.properties."""
    if (settings.kafka_data_dir / "data" / "meta.properties").is_file():
        return
    cluster_id = node.cluster_id or new_cluster_id()
    quorum = [] if node.voters else ["--standalone"]  # static voters: the quorum is in server.properties
    cmd = [*base, "kafka.tools.StorageTool", "format", *quorum, "-t", cluster_id, "-c", str(server)]
    log.info("Formatting Kafka storage in %s (cluster id %s)", settings.kafka_data_dir / "data", cluster_id)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BrokerError(f"kafka StorageTool format failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")


# --- process management --------------------------------------------------------------------
def _pidfile(settings: Settings) -> Path:
    return settings.kafka_data_dir / _PIDFILE


def running_pid(settings: Settings) -> int | None:
    """Pid of our broker if its pid file names a live ``kafka.Kafka`` process (guards pid reuse)."""
    return live_pid(_pidfile(settings), b"kafka.Kafka")


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def broker_answers(settings: Settings, timeout: float = 3.0) -> bool:
    """True when a Kafka broker answers a metadata request at ``settings.bootstrap_servers``."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    if settings.kafka_is_local and not _port_open("127.0.0.1", settings.kafka_local_port):
        return False  # cheap check first, and no librdkafka connection-refused noise
    quiet = logging.getLogger("replyflow.kafka.librdkafka")
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers, "logger": quiet})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def _log_tail(settings: Settings, lines: int = 25) -> str:
    chunks = []
    for name in ("kafka-server.out", "kafka-server.log"):
        path = settings.logs_dir / name
        if path.is_file():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            chunks.append(f"--- {path} (last {len(text)} lines) ---\n" + "\n".join(text))
    return "\n".join(chunks)


def start(settings: Settings, timeout: float = 60.0, die_with_parent: bool = False, node: Node = SINGLE_NODE,
          wait: bool = True) -> None:
    """Start the local broker detached and wait until it answers; idempotent.

    Formats storage on first start.  Raises :class:`BrokerError` pointing at the broker log if
    the process dies or does not answer within ``timeout`` seconds.  ``die_with_parent`` ties
    the broker's life to the calling process (the pytest fixture uses it, so a killed test
    run leaves no stray JVM); the CLI leaves it off so the broker outlives ``kafka start``.
    ``node`` makes it one node of a cluster; ``wait=False`` only launches it (a node of a quorum
    cannot answer before a majority of the quorum runs: the cluster launches all, then waits).
    """
    if not settings.kafka_is_local:
        log.info("Using external Kafka at %s; not starting a local broker", settings.bootstrap_servers)
        return
    pid = running_pid(settings)
    if pid is None and broker_answers(settings, timeout=2.0):
        log.warning(
            "A Kafka broker not started by replyflow (no pid file in %s) already answers on %s; using it",
            settings.kafka_data_dir, settings.bootstrap_servers,
        )  # fmt: skip
        return
    if pid is None:
        server, log4j = _write_config(settings, node)
        base = _java_base(settings, log4j)
        _format_storage(settings, base, server, node)
        if _port_open("127.0.0.1", settings.kafka_controller_port):
            raise BrokerError(f"controller port {settings.kafka_controller_port} is taken by another process")
        out = open(settings.logs_dir / "kafka-server.out", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                [*base, "kafka.Kafka", str(server)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=settings.kafka_data_dir,
                start_new_session=True,  # own process group: survives Ctrl-C of the CLI, killable as a group
                preexec_fn=die_with_parent_hook if die_with_parent else None,  # noqa: PLW1509
            )
        finally:
            out.close()
        pid = proc.pid
        _pidfile(settings).write_text(f"{pid}\n")
        log.info("Started Kafka broker pid %d on %s (logs in %s)", pid, settings.bootstrap_servers, settings.logs_dir)
    else:
        proc = None
        log.info("Kafka broker already running (pid %d); waiting until it answers", pid)
    if not wait:
        return

    def answers() -> bool:
        if proc is not None and proc.poll() is not None:
            _pidfile(settings).unlink(missing_ok=True)
            raise BrokerError(f"Kafka broker exited with code {proc.returncode} during start-up.\n{_log_tail(settings)}")
        if proc is None and running_pid(settings) is None:
            raise BrokerError(f"Kafka broker pid {pid} vanished during start-up.\n{_log_tail(settings)}")
        return broker_answers(settings, timeout=1.0)

    try:
        wait_until(answers, timeout, interval=0.25, what="the Kafka broker to answer")
    except WaitTimeout:
        raise BrokerError(
            f"Kafka broker pid {pid} did not answer on {settings.bootstrap_servers} within {timeout:.0f} s; "
            f"see {settings.logs_dir / 'kafka-server.log'}\n{_log_tail(settings)}"
        ) from None
    log.info("Kafka broker answers on %s", settings.bootstrap_servers)


def stop(settings: Settings, timeout: float = 30.0) -> bool:
    """Stop the local broker: SIGTERM (clean shutdown, flushes logs), SIGKILL after ``timeout``.

    Returns True if a broker was stopped, False if none was running.
    """
    if not settings.kafka_is_local:
        log.info("Using external Kafka at %s; nothing to stop", settings.bootstrap_servers)
        return False
    pid = running_pid(settings)
    if pid is None:
        _pidfile(settings).unlink(missing_ok=True)
        log.info("No replyflow Kafka broker is running (state in %s)", settings.kafka_data_dir)
        return False
    log.info("Stopping Kafka broker pid %d", pid)
    stop_process(pid, lambda: running_pid(settings) == pid, timeout, name="Kafka broker")
    _pidfile(settings).unlink(missing_ok=True)
    log.info("Kafka broker stopped")
    return True


def status(settings: Settings) -> bool:
    """Log where Kafka is expected and whether it answers; True when it does."""
    answers = broker_answers(settings)
    if settings.kafka_is_local:
        pid = running_pid(settings)
        log.info(
            "Local Kafka broker on %s: %s (pid %s, state %s)",
            settings.bootstrap_servers, "answers" if answers else "does NOT answer",
            pid if pid is not None else "none", settings.kafka_data_dir,
        )  # fmt: skip
    else:
        log.info("External Kafka at %s: %s", settings.bootstrap_servers, "answers" if answers else "does NOT answer")
    return answers
