"""Pidfiles, child processes and stopping them, shared by the Kafka broker and the background services.

A pidfile can outlive its process, and the kernel reuses pids: a pid that is merely alive
may belong to someone else's process, and signalling its group would hit that process.
So a pid only counts as ours when ``/proc/<pid>/cmdline`` carries a marker of what we
started (and the process is not a zombie waiting to be reaped).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from replyflow.core.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)


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
    if marker not in cmdline or not _not_zombie(pid):
        return None
    return pid


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """``preexec_fn``: the child gets SIGTERM when the process that started it dies (Linux; test sessions),
    so a killed test run leaves no stray JVM."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def reap(pid: int) -> None:
    """Collect the exit status when ``pid`` is our own child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _signal(pid: int, signum: int, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


def stop_process(pid: int, alive: Callable[[], bool], timeout: float, *, group: bool = True, name: str = "process") -> bool:
    """SIGTERM ``pid`` (its whole process group when ``group``), wait up to ``timeout`` s for ``alive()``
    to turn False, then SIGKILL.  Returns True when it stopped on SIGTERM.

    ``alive`` is the caller's notion of "still our process" (a pidfile check), so a reused pid
    is never waited for; our own children are reaped while waiting so they do not linger as zombies.
    """

    def gone() -> bool:
        reap(pid)
        return not alive()

    _signal(pid, signal.SIGTERM, group)
    try:
        wait_until(gone, timeout, what=f"{name} (pid {pid}) to exit")
        return True
    except WaitTimeout:
        log.warning("%s (pid %d) did not stop within %.0f s of SIGTERM; killing it", name, pid, timeout)
    _signal(pid, signal.SIGKILL, group)
    with contextlib.suppress(WaitTimeout):
        wait_until(gone, 5.0, interval=0.1, what=f"{name} (pid {pid}) to die")
    return False


#: Environment variable that marks every process a service started, down to the pyspark daemon and
#: its workers: they inherit it, even where they leave our process group (``pyspark.daemon`` calls
#: ``setpgid``) or are re-parented to init after their parent died.
TAG_ENV = "REPLYFLOW_PROC_TAG"


def tagged_pids(tag: str, exclude: int | None = None) -> list[int]:
    """Pids of live processes whose environment carries ``TAG_ENV=tag`` (``exclude``: one to skip, e.g. ourselves)."""
    needle = f"{TAG_ENV}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (exclude, os.getpid()):
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return [pid for pid in found if _not_zombie(pid)]


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def reap_tagged(tag: str, timeout: float = 10.0, grace: float = 3.0) -> int:
    """SIGTERM what is left of a stopped service (e.g. pyspark daemons and workers), SIGKILL after ``timeout``.

    Returns how many processes were left.  Called after the service's main process exited, so
    anything still carrying its tag after ``grace`` seconds is an orphan nobody else will stop.
    Why the grace: Spark's JVM exits by itself a fraction of a second after its Python driver, and
    a routine ``replyflow down`` should not warn about it."""
    with contextlib.suppress(WaitTimeout):
        wait_until(lambda: not tagged_pids(tag), grace, interval=0.1, what=f"the processes of {tag} to exit")
    left = tagged_pids(tag)
    if not left:
        return 0
    log.warning("%d process(es) of %s outlived it (%s); stopping them", len(left), tag, " ".join(map(str, left)))
    for pid in left:
        _signal(pid, signal.SIGTERM, group=False)
    try:
        wait_until(lambda: not tagged_pids(tag), timeout, interval=0.1, what=f"the processes of {tag} to exit")
    except WaitTimeout:
        for pid in tagged_pids(tag):
            _signal(pid, signal.SIGKILL, group=False)
    for pid in left:
        reap(pid)
    return len(left)
