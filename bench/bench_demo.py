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
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from machine import describe, load_average  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
            "REPLYFLOW_API_PORT": str(free_port()),
            "REPLYFLOW_KAFKA_LOCAL_PORT": str(free_port()),
            "REPLYFLOW_KAFKA_CONTROLLER_PORT": str(free_port()),
            "COLUMNS": "120",
        }
        started = time.monotonic()
        proc = subprocess.run(
            [str(ROOT / ".venv/bin/replyflow"), "demo", "--limit", str(args.limit), "--rate", str(args.rate)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
        )
        wall = time.monotonic() - started
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
    }
    out_dir = ROOT / "reports" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "demo.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "demo.md").write_text(
        "## The demo end to end (`replyflow demo`)\n\n"
        f"- Date: {result['date']}\n- Machine: {result['machine']} (load average at start: {load})\n"
        f"- Command: `{command}` (run by `.venv/bin/python bench/bench_demo.py --limit {args.limit} --rate {args.rate:g}`,"
        " in a fresh state directory: broker, Spark job and reply service start cold; models and jars already present)\n\n"
        "| tweets replayed | enriched | tickets | replies (dry run) | time to first reply | demo total | wall incl. shutdown |\n"
        "|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {result['published']} | {result['enriched']} | {result['tickets']} | {result['replies_sent_dry_run']} "
        f"| {result['time_to_first_reply_s']:.1f} s | {result['demo_total_s']:.1f} s | {result['wall_incl_shutdown_s']:.1f} s |\n\n"
        "Time to first reply is dominated by the Spark job's start (JVM, Kafka source, Python workers loading "
        "the models); the replay itself is rate-limited to the given rate.\n"
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
