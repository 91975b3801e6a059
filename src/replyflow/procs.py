"""Pidfiles and child processes, shared by the Kafka broker and the background services.

A pidfile can outlive its process, and the kernel reuses pids: a pid that is merely alive
may belong to someone else's process, and signalling its group would hit that process.
So a pid only counts as ours when ``/proc/<pid>/cmdline`` carries a marker of what we
started (and the process is not a zombie waiting to be reaped).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def live_pid(pidfile: Path, marker: bytes) -> int | None:
    """The pid in ``pidfile`` if it names a live, non-zombie process whose command line contains ``marker``."""
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if marker not in cmdline:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                return None
    except OSError:
        return None
    return pid


def reap(pid: int) -> None:
    """Collect the exit status when ``pid`` is our own child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
