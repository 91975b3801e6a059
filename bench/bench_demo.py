"""Time the README's first command: `replyflow demo` end to end.

Runs the demo as a user would (a subprocess, embedded defaults, dry-run replies) in a
temporary state directory on free ports, and reads back what it printed: time to first
reply and total run time, plus the counts of its summary. Writes reports/bench/demo.json
and reports/bench/demo.md.

    .venv/bin/python bench/bench_demo.py [--limit 1000] [--rate 50]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from machine import describe, load_average  # noqa: E402

from replyflow.ops.background import free_port  # noqa: E402


def _children(pid: int) -> list[int]:
    """All descendants of ``pid`` (Spark's JVM and Python workers run under the stream service)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += parents.get(current, [])
    return found


def _rss_mib(pids: list[int]) -> float:
    total_kib = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total_kib / 1024


class MemorySampler(threading.Thread):
    """Peak resident memory of each service's process tree, sampled once a second."""

    def __init__(self, state: Path) -> None:
        super().__init__(daemon=True)
        self.pidfiles = {
            "kafka broker": state / "kafka" / "broker.pid",
            "reply service": state / "run" / "serve.pid",
            "stream job (Spark JVM + Python workers)": state / "run" / "stream.pid",
        }
        self.peak_mib: dict[str, float] = {name: 0.0 for name in self.pidfiles}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(1.0):
            for name, pidfile in self.pidfiles.items():
                try:
                    pid = int(pidfile.read_text().strip())
                except (OSError, ValueError):
                    continue
                self.peak_mib[name] = max(self.peak_mib[name], _rss_mib(_children(pid)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=50.0)
    args = ap.parse_args()
    command = f".venv/bin/replyflow demo --limit {args.limit} --rate {args.rate:g}"
    load = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as state:
        env = {
            **os.environ,
            "REPLYFLOW_STATE_DIR": state,
            "XDG_CACHE_HOME": str(Path(state) / "user-cache"),  # empty, as on a fresh machine: the int8 teacher is built
            "REPLYFLOW_API_PORT": str(free_port()),
            "REPLYFLOW_KAFKA_LOCAL_PORT": str(free_port()),
            "REPLYFLOW_KAFKA_CONTROLLER_PORT": str(free_port()),
            "COLUMNS": "120",
        }
        sampler = MemorySampler(Path(state))
        sampler.start()
        started = time.monotonic()
        proc = subprocess.run(
            [str(ROOT / ".venv/bin/replyflow"), "demo", "--limit", str(args.limit), "--rate", str(args.rate)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
        )
        wall = time.monotonic() - started
        sampler.done.set()
    out = proc.stdout
    if proc.returncode != 0:
        print(out[-3000:], proc.stderr[-3000:], file=sys.stderr)
        return proc.returncode

    def grab(pattern: str) -> str | None:
        match = re.search(pattern, out)
        return match.group(1) if match else None

    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": describe(),
        "load_average_at_start": load,
        "command": command,
        "limit": args.limit,
        "rate": args.rate,
        "time_to_first_reply_s": float(grab(r"time to first reply: ([0-9.]+) s") or "nan"),
        "demo_total_s": float(grab(r"total run time: ([0-9.]+) s") or "nan"),
        "wall_incl_shutdown_s": round(wall, 1),
        "published": int(grab(r"tweets published: (\d+)") or 0),
        "enriched": int(grab(r"enriched: (\d+)") or 0),
        "tickets": int(grab(r"tickets: (\d+)") or 0),
        "replies_sent_dry_run": int(grab(r"replies sent \(dry run\): (\d+)") or 0),
        "peak_rss_mib": {name: round(mib) for name, mib in sampler.peak_mib.items()},
    }
    out_dir = ROOT / "reports" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "demo.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "demo.md").write_text(
        "## The demo end to end (`replyflow demo`)\n\n"
        f"- Date: {result['date']}\n- Machine: {result['machine']} "
        f"(load average at start: {' '.join(f'{x:.2f}' for x in load) if load else 'n/a'})\n"
        f"- Command: `{command}` (run by `.venv/bin/python bench/bench_demo.py --limit {args.limit} --rate {args.rate:g}`,"
        " in a fresh state directory and an empty user cache: broker, Spark job and reply service start cold, the"
        " int8 teacher graph is built; models and jars already present)\n\n"
        "| tweets replayed | enriched | tickets | replies (dry run) | time to first reply | demo total | wall incl. shutdown |\n"
        "|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {result['published']} | {result['enriched']} | {result['tickets']} | {result['replies_sent_dry_run']} "
        f"| {result['time_to_first_reply_s']:.1f} s | {result['demo_total_s']:.1f} s | {result['wall_incl_shutdown_s']:.1f} s |\n\n"
        "Peak resident memory during the run (each service's whole process tree, sampled every second):\n\n"
        "| service | peak RSS (MiB) |\n|---|---:|\n"
        + "".join(f"| {name} | {mib} |\n" for name, mib in result["peak_rss_mib"].items())
        + "\nTime to first reply is dominated by the Spark job's start (JVM, Kafka source, Python workers loading "
        "the models); the replay itself is rate-limited to the given rate.\n"
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
