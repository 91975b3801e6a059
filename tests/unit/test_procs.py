"""Pidfiles: a live pid only counts as ours when its command line says so (pids are reused)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from replyflow import services
from replyflow.procs import live_pid


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
