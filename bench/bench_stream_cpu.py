"""Benchmark: where a backlog batch's CPU goes, process by process, and whether both cores stay busy.

Runs ``bench_stream.py --rates backlog`` (its own reports go to a temporary folder) while sampling the CPU time
of every process from ``/proc`` every 0.25 s.  For the last batch of at least 10,000 tweets it reports the CPU
seconds of each process group (Spark's JVM, the Python workers, the reply service, the Kafka broker, the
driver), per tweet, and a timeline of the cores in use every 0.5 s: an idle core in a batch is throughput lost.
Linux only.  Writes reports/bench/stream_cpu.json and reports/bench/stream_cpu.md.

    .venv/bin/python bench/bench_stream_cpu.py [--backlog-tweets 40000]
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
OUT = ROOT / "reports" / "bench"
sys.path.insert(0, str(ROOT / "bench"))

from machine import describe  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
GROUPS = ("spark-jvm", "python-workers", "reply-service", "kafka-broker", "driver")
BATCH_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*batch \d+: (\d+) in, .* in ([0-9.]+) s \(")


def group(cmdline: str) -> str | None:
    """Which part of the pipeline a process is, from its command line."""
    if "kafka.Kafka" in cmdline:
        return "kafka-broker"
    if "org.apache.spark.deploy.SparkSubmit" in cmdline:
        return "spark-jvm"
    if "pyspark.daemon" in cmdline or "pyspark.worker" in cmdline:
        return "python-workers"
    if "replyflow" in cmdline and " serve" in cmdline:
        return "reply-service"
    if "bench_stream.py" in cmdline:
        return "driver"
    return None


def snapshot() -> dict[int, tuple[str, float]]:
    """pid -> (group, CPU seconds so far) for every process of the pipeline."""
    found: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = group((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            if name is None:
                continue
            stat = (entry / "stat").read_text()
            fields = stat[stat.rfind(")") + 2:].split()
            found[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / TICK)
        except (OSError, IndexError, ValueError):
            continue
    return found


class Sampler(threading.Thread):
    def __init__(self, every: float = 0.25) -> None:
        super().__init__(daemon=True, name="cpu-sampler")
        self.every = every
        self.samples: list[tuple[float, dict[int, tuple[str, float]]]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append((time.time(), snapshot()))
            self.done.wait(self.every)

    def at(self, when: float) -> tuple[float, dict[int, tuple[str, float]]]:
        return min(self.samples, key=lambda sample: abs(sample[0] - when))


def cpu_between(first: dict[int, tuple[str, float]], last: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds per group between two snapshots (a process born in between counts from zero)."""
    totals = dict.fromkeys(GROUPS, 0.0)
    for pid, (name, cpu) in last.items():
        totals[name] += cpu - first.get(pid, (name, 0.0))[1]
    return totals


def last_big_batch(log: str) -> tuple[float, float, int]:
    """(start, end, rows) in UNIX seconds of the last batch of >= 10,000 tweets in bench_stream's log."""
    found = None
    for line in log.splitlines():
        match = BATCH_LINE.match(line)
        if match and int(match.group(2)) >= 10_000:
            end = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=timezone.utc).timestamp()
            found = (end - float(match.group(3)), end, int(match.group(2)))
    if found is None:
        raise SystemExit("bench_stream logged no batch of >= 10,000 tweets: see its output above")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog-tweets", type=int, default=40000)
    args = parser.parse_args()
    sampler = Sampler()
    sampler.start()
    with tempfile.TemporaryDirectory(prefix="bench-stream-cpu-") as tmp:
        command = [sys.executable, str(ROOT / "bench" / "bench_stream.py"), "--rates", "backlog",
                   "--backlog-tweets", str(args.backlog_tweets), "--out", tmp]
        run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    sampler.done.set()
    sampler.join()
    if run.returncode != 0:
        print(run.stdout[-3000:], run.stderr[-3000:], sep="\n")
        return run.returncode
    start, end, rows = last_big_batch(run.stderr + run.stdout)
    (t0, first), (t1, last) = sampler.at(start), sampler.at(end)
    cpu = cpu_between(first, last)
    wall = t1 - t0
    cores = os.cpu_count() or 1
    timeline = []
    window = [s for s in sampler.samples if t0 <= s[0] <= t1]
    for (a, before), (b, after) in zip(window[::2], window[2::2]):
        used = cpu_between(before, after)
        timeline.append({"t_s": round(a - t0, 2), **{k: round(v / (b - a), 2) for k, v in used.items()}})
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": describe(),
        "command": ".venv/bin/python bench/bench_stream_cpu.py" + ("" if args.backlog_tweets == 40000 else
                                                                   f" --backlog-tweets {args.backlog_tweets}"),
        "batch_rows": rows, "batch_wall_s": round(wall, 2), "cores": cores,
        "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
        "cpu_ms_per_tweet": {k: round(1000 * v / rows, 3) for k, v in cpu.items()},
        "cores_busy_share": round(sum(cpu.values()) / (wall * cores), 3),
        "timeline_cores_in_use": timeline,
    }  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "stream_cpu.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "## Where a backlog batch's CPU goes (per process)",
        "",
        f"- Date: {result['date']}\n- Machine: {result['machine']}\n- Command: `{result['command']}` (runs "
        "`bench_stream.py --rates backlog`; `/proc` sampled every 0.25 s)",
        f"- The last batch of {rows:,} tweets: {wall:.2f} s wall, {sum(cpu.values()):.2f} s CPU, both cores busy "
        f"{100 * result['cores_busy_share']:.0f} % of the time",
        "",
        "| process | CPU s | ms per tweet |",
        "|---|---:|---:|",
        *[f"| {k} | {cpu[k]:.2f} | {result['cpu_ms_per_tweet'][k]:.3f} |" for k in GROUPS],
        f"| all | {sum(cpu.values()):.2f} | {1000 * sum(cpu.values()) / rows:.3f} |",
        "",
        "Cores in use through the batch (0.5 s steps):",
        "",
        "| t (s) | " + " | ".join(GROUPS) + " | all |",
        "|---:|" + "---:|" * (len(GROUPS) + 1),
        *[f"| {row['t_s']:.1f} | " + " | ".join(f"{row[k]:.2f}" for k in GROUPS) + f" | {sum(row[k] for k in GROUPS):.2f} |"
          for row in timeline],
        "",
    ]  # fmt: skip
    (OUT / "stream_cpu.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
