"""What machine a benchmark ran on: every bench script reports it the same way."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_gib() -> float | None:
    try:
        return int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    except (OSError, ValueError, IndexError):
        return None


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def describe() -> str:
    """One line: CPU, cores, memory, OS, Python."""
    mem = memory_gib()
    mem_text = f", {mem:.0f} GiB RAM" if mem else ""
    return (
        f"{cpu_model()}, {os.cpu_count()} cores{mem_text}, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )
