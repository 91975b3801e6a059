"""A local Spark standalone cluster (one master, N workers of 1 core) from pyspark's own distribution.

The pyspark wheel carries ``bin/spark-class`` and every jar a standalone master and worker
need, so nothing beyond PyPI is installed: ``spark-class org.apache.spark.deploy.master.Master``
and ``...worker.Worker spark://127.0.0.1:PORT``.  Each daemon is a detached JVM (own process
group, pidfile under ``<cluster_dir>/spark/``, log beside it), so it outlives the command that
started it and ``replyflow down`` can stop it.  The stream job uses the cluster through
``REPLYFLOW_SPARK_MASTER=spark://127.0.0.1:PORT``; its executors run on the workers and start
Python workers with the driver's interpreter, so the workers must see the same ``replyflow``
(they inherit the environment of the process that starts them, ``PYTHONPATH`` included).
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import requests

from replyflow.core.procs import die_with_parent as die_with_parent_hook
from replyflow.core.procs import live_pid, stop_process
from replyflow.core.waiting import WaitTimeout, wait_until
from replyflow.settings import Settings
from replyflow.stream.session import LOG4J2

log = logging.getLogger(__name__)

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
#: Heap of the master and worker daemons themselves (executors get ``cluster_spark_worker_memory``).
DAEMON_HEAP = "256m"
#: The stream's log4j2 configuration, plus the daemons' own start-up and registration messages.
_LOG4J2 = LOG4J2 + "logger.deploy.name = org.apache.spark.deploy\nlogger.deploy.level = info\n"


class SparkClusterError(RuntimeError):
    """The local Spark master or a worker could not be started."""


def spark_home() -> Path:
    """pyspark's distribution: ``bin/spark-class`` and ``jars/``."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _dir(settings: Settings) -> Path:
    return settings.cluster_dir / "spark"


def master_url(settings: Settings) -> str:
    return f"spark://127.0.0.1:{settings.cluster_spark_port}"


def master_ui(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.cluster_spark_port + 1}"


def _pidfile(settings: Settings, name: str) -> Path:
    return _dir(settings) / f"{name}.pid"


def daemon_names(settings: Settings) -> list[str]:
    """``master``, ``worker-1`` ... ``worker-N``."""
    return ["master", *(f"worker-{i}" for i in range(1, settings.cluster_spark_workers + 1))]


def pid_of(settings: Settings, name: str) -> int | None:
    return live_pid(_pidfile(settings, name), (MASTER_CLASS if name == "master" else WORKER_CLASS).encode())


def _env(settings: Settings) -> dict[str, str]:
    conf = _dir(settings) / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "log4j2.properties").write_text(_LOG4J2)
    home = spark_home()
    return {
        **os.environ,
        "SPARK_HOME": str(home), "SPARK_CONF_DIR": str(conf), "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_DAEMON_MEMORY": DAEMON_HEAP, "SPARK_LOG_DIR": str(_dir(settings) / "logs"),
    }  # fmt: skip


def _launch(settings: Settings, name: str, args: list[str], die_with_parent: bool = False) -> int:
    running = pid_of(settings, name)
    if running is not None:
        return running
    logfile = _dir(settings) / f"{name}.out"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as out:
        proc = subprocess.Popen([str(spark_home() / "bin" / "spark-class"), *args], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=_env(settings), cwd=_dir(settings), start_new_session=True,
                                preexec_fn=die_with_parent_hook if die_with_parent else None)  # noqa: PLW1509
    _pidfile(settings, name).write_text(f"{proc.pid}\n")
    log.info("started Spark %s (pid %d), log %s", name, proc.pid, logfile)
    return proc.pid


def start_worker(settings: Settings, index: int, die_with_parent: bool = False) -> int:
    """(Re)start worker ``index`` (1-based): 1 core, ``cluster_spark_worker_memory``; returns its pid."""
    work = _dir(settings) / f"work-{index}"
    work.mkdir(parents=True, exist_ok=True)
    return _launch(settings, f"worker-{index}", [
        WORKER_CLASS, master_url(settings), "--host", "127.0.0.1", "--cores", "1",
        "--memory", settings.cluster_spark_worker_memory, "--webui-port", "0", "--work-dir", str(work),
    ], die_with_parent)  # fmt: skip


def alive_workers(settings: Settings) -> int:
    """Workers the master counts as ALIVE (0 when the master does not answer)."""
    try:
        body = requests.get(f"{master_ui(settings)}/json/", timeout=2).json()
    except (requests.RequestException, ValueError):
        return 0
    return sum(1 for w in body.get("workers", []) if w.get("state") == "ALIVE")


def wait_for_workers(settings: Settings, count: int, timeout: float = 120.0) -> None:
    try:
        wait_until(lambda: alive_workers(settings) >= count, timeout, interval=0.5, what=f"{count} Spark workers")
    except WaitTimeout:
        raise SparkClusterError(f"fewer than {count} Spark workers registered with {master_url(settings)} within "
                                f"{timeout:.0f} s; see {_dir(settings)}/*.out") from None


def start(settings: Settings, timeout: float = 120.0, die_with_parent: bool = False) -> str:
    """Start the master and the workers (idempotent), wait until every worker registered; returns the master URL."""
    _launch(settings, "master", [MASTER_CLASS, "--host", "127.0.0.1", "--port", str(settings.cluster_spark_port),
                                 "--webui-port", str(settings.cluster_spark_port + 1)], die_with_parent)
    for index in range(1, settings.cluster_spark_workers + 1):
        start_worker(settings, index, die_with_parent)
    wait_for_workers(settings, settings.cluster_spark_workers, timeout)
    log.info("Spark standalone cluster up: %s with %d workers (UI %s)", master_url(settings),
             settings.cluster_spark_workers, master_ui(settings))
    return master_url(settings)


def stop(settings: Settings, timeout: float = 30.0) -> int:
    """Stop the workers (their executors exit with them), then the master; returns how many ran."""
    stopped = 0
    for name in reversed(daemon_names(settings)):
        pid = pid_of(settings, name)
        if pid is not None:
            stop_process(pid, lambda n=name, p=pid: pid_of(settings, n) == p, timeout, name=f"Spark {name}")
            stopped += 1
        _pidfile(settings, name).unlink(missing_ok=True)
    return stopped
