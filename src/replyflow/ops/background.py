"""Background services for ``replyflow up`` / ``down`` and the demo.

Each service (reply API, stream job) runs as its own ``replyflow`` subprocess in its own
process group, with a pidfile under ``var/run`` and its log under ``var/logs``, so one
place shows what is running and where it writes.  The Kafka broker is managed by
:mod:`replyflow.kafka.broker` (it has its own pidfile) and is only started when the
settings point at the local broker; ``up --cluster`` starts the local cluster of
:mod:`replyflow.ops.cluster` instead.

Stopping signals the service's *main process only* (SIGTERM), never its process group: the
stream driver then finishes (or cleanly abandons) its batch and stops Spark itself, and the
reply service finishes its requests and its sender's entry.  A group signal would kill the
Spark JVM under the driver (``Py4JNetworkError``, exit 1, the batch redone).  What outlives
the main process (pyspark daemons run in a process group of their own) is found by the tag
every process of the service inherits (:data:`replyflow.core.procs.TAG_ENV`) and stopped.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from replyflow.core.procs import TAG_ENV, live_pid, reap_tagged, stop_process
from replyflow.core.waiting import WaitTimeout, wait_until
from replyflow.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Service:
    name: str
    argv: tuple[str, ...]


SERVICES: tuple[Service, ...] = (
    Service("serve", ("serve",)),
    Service("stream", ("stream",)),
)


def _run_dir(settings: Settings) -> Path:
    path = settings.state_dir / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _pidfile(settings: Settings, name: str) -> Path:
    return _run_dir(settings) / f"{name}.pid"


def pid_of(settings: Settings, name: str) -> int | None:
    """PID of a running service, or None (a stale pidfile is removed; a reused pid is not ours)."""
    pidfile = _pidfile(settings, name)
    pid = live_pid(pidfile, b"replyflow.cli")
    if pid is None:
        pidfile.unlink(missing_ok=True)
    return pid


def service_tag(settings: Settings, name: str) -> str:
    """The tag every process of service ``name`` carries in its environment (one per state dir)."""
    return f"{name}@{settings.state_dir}"


def start_service(settings: Settings, service: Service, env: dict[str, str] | None = None) -> int:
    """Start one service in the background unless it already runs; returns its PID."""
    running = pid_of(settings, service.name)
    if running:
        log.info("%s already running (pid %s)", service.name, running)
        return running
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    logfile = settings.logs_dir / f"{service.name}.out"
    child_env = {
        **os.environ,
        **settings.to_env(),
        **(env or {}),
        "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
        TAG_ENV: service_tag(settings, service.name),
    }
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "replyflow.cli", *service.argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env,
            start_new_session=True,  # own process group: Ctrl-C in the terminal does not hit it twice
        )
    _pidfile(settings, service.name).write_text(str(proc.pid))
    log.info("started %s (pid %s), log %s", service.name, proc.pid, logfile)
    return proc.pid


def stop_service(settings: Settings, name: str, timeout: float = 150.0) -> bool:
    """SIGTERM the service's main process, wait for its clean exit, SIGKILL after ``timeout``;
    then stop whatever of it is left (pyspark daemons).  True when it stopped on SIGTERM (or was not running).

    ``timeout`` leaves the stream time for its batch in flight (it waits up to 120 s for it)."""
    pid = pid_of(settings, name)
    clean = True
    if pid is not None:
        log.info("stopping %s (pid %s)", name, pid)
        clean = stop_process(pid, lambda: pid_of(settings, name) == pid, timeout, group=False, name=name)
        _pidfile(settings, name).unlink(missing_ok=True)
    reap_tagged(service_tag(settings, name))
    return clean


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` now (services on a random port: tests, benchmarks)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_health(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None,
                    interval: float = 0.1) -> None:
    """Block until ``GET url`` answers 2xx.

    RuntimeError after ``timeout`` seconds, or as soon as ``process`` (the server being
    waited for, when the caller started it) has exited: no point waiting for a dead server."""

    def answers() -> bool:
        try:
            if requests.get(url, timeout=2).ok:
                return True
        except requests.RequestException:
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with code {process.returncode} before answering")
        return False

    try:
        wait_until(answers, timeout, interval=interval, what=f"an answer from {url}")
    except WaitTimeout:
        raise RuntimeError(f"{url} did not answer within {timeout:.0f} s") from None


def wait_for_api(settings: Settings, timeout: float = 60.0) -> None:
    """Block until the reply service answers its health check."""
    try:
        wait_for_health(f"{settings.reply_api_url}/api/v1/health", timeout, interval=0.3)
    except RuntimeError as exc:
        raise RuntimeError(f"reply service: {exc}; see {settings.logs_dir}/serve.out") from None


def token_env(settings: Settings) -> dict[str, str]:
    """Environment that gives every service the same API token.

    With no token configured, one is generated once and kept in ``var/run/api-token``
    (mode 0600, see :mod:`replyflow.reply.auth`), so the stream job can authenticate to the
    reply service without the token ever being printed or committed.
    """
    from replyflow.reply.auth import resolve_api_token

    if settings.api_token is not None:
        return {}
    return {"REPLYFLOW_API_TOKEN": resolve_api_token(settings)}


def up(settings: Settings, env: dict[str, str] | None = None, cluster: bool = False) -> Settings:
    """Start the broker (when local), the reply service and the stream job in the background.

    ``cluster``: start the local cluster (:mod:`replyflow.ops.cluster`: 3 Kafka brokers, Spark
    standalone, PostgreSQL) instead of the single broker, and run the services on it.
    Returns the settings the services run with."""
    from replyflow.kafka.broker import start as start_broker
    from replyflow.kafka.topics import ensure_topics

    env = {**token_env(settings), **(env or {})}
    if cluster:
        from replyflow.ops import cluster as local_cluster

        settings = local_cluster.start(settings)
    else:
        start_broker(settings)
        ensure_topics(settings)
    start_service(settings, SERVICES[0], env)
    wait_for_api(settings)
    start_service(settings, SERVICES[1], env)
    log.info("replyflow is up: dashboard %s/ ; logs in %s", settings.reply_api_url, settings.logs_dir)
    return settings


def down(settings: Settings) -> bool:
    """Stop the stream job first (so it finishes its batch), then the API, then Kafka (or the local cluster).

    Returns True when every service stopped cleanly on SIGTERM."""
    from replyflow.kafka.broker import stop as stop_broker
    from replyflow.ops import cluster as local_cluster

    clean = all([stop_service(settings, service.name) for service in reversed(SERVICES)])
    if local_cluster.started(settings) is not None:
        local_cluster.stop(settings)
    else:
        stop_broker(settings)
    return clean
