"""Pidfiles: a live pid only counts as ours when its command line says so (pids are reused); stopping and reaping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from replyflow.core.procs import TAG_ENV, live_pid, reap_tagged, stop_process
from replyflow.ops import background as services


def test_live_pid_needs_the_marker(tmp_path: Path) -> None:
    pidfile = tmp_path / "x.pid"
    assert live_pid(pidfile, b"python") is None  # no file
    pidfile.write_text("not a pid")
    assert live_pid(pidfile, b"python") is None
    pidfile.write_text(str(os.getpid()))
    assert live_pid(pidfile, Path(sys.executable).name.encode()) == os.getpid()
    assert live_pid(pidfile, b"kafka.Kafka") is None  # alive, but not what we started


def test_a_reused_pid_is_not_a_running_service(settings) -> None:
    pidfile = settings.state_dir / "run" / "serve.pid"
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(str(os.getpid()))  # this pytest process: alive, but not `replyflow.cli serve`
    assert services.pid_of(settings, "serve") is None
    assert not pidfile.exists()  # stale pidfile removed, so `down` will never signal this process


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def test_stop_process_terminates_then_kills(tmp_path: Path) -> None:
    marker = tmp_path / "terminated"
    polite = subprocess.Popen(
        [sys.executable, "-c", "import signal, sys, time\n"
         f"signal.signal(signal.SIGTERM, lambda *a: (open({str(marker)!r}, 'w').write('bye'), sys.exit(0)))\n"
         "print('ready', flush=True); time.sleep(60)"],
        start_new_session=True, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert polite.stdout is not None and polite.stdout.readline() == b"ready\n"
    assert stop_process(polite.pid, lambda: _alive(polite.pid), timeout=10, name="polite") is True
    assert marker.read_text() == "bye" and not _alive(polite.pid)  # it handled SIGTERM and was reaped

    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
         "print('ready', flush=True); time.sleep(60)"],
        start_new_session=True, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
    assert stop_process(stubborn.pid, lambda: _alive(stubborn.pid), timeout=0.5, name="stubborn") is False
    assert not _alive(stubborn.pid)  # SIGKILLed after the timeout


def _tagged(tag: str, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"],
                            env={**os.environ, TAG_ENV: tag}, start_new_session=True)


def test_reap_tagged_lets_a_process_that_is_exiting_go_and_stops_an_orphan(caplog) -> None:
    tag = f"test-reap-{os.getpid()}"
    exiting = _tagged(tag, 0.3)  # like Spark's JVM just after its driver: on its way out
    assert reap_tagged(tag, timeout=5, grace=3) == 0
    assert exiting.poll() is not None and "outlived" not in caplog.text

    orphan = _tagged(tag, 60)
    assert reap_tagged(tag, timeout=5, grace=0.3) == 1
    assert not _alive(orphan.pid) and "1 process(es) of test-reap" in caplog.text  # stopped (and reaped), and said so
