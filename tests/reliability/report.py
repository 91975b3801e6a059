"""Counts of the reliability tests, collected into ``reports/reliability.json``.

Why a file: docs/RELIABILITY.md quotes numbers, and those must come from real runs, not
from memory.  Each test calls :func:`record` once with what went in and what came out;
entries are merged by test name so a partial run only updates its own rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPORT = Path(__file__).resolve().parents[2] / "reports" / "reliability.json"
_lock = threading.Lock()
# Read once at import (test collection): the ``settings`` fixture removes REPLYFLOW_* variables
# from the environment while a test runs.
_ENABLED = os.environ.get("REPLYFLOW_RELIABILITY_REPORT", "0") == "1"


def record(fault: str, test: str, *, rows_in: int, rows_out: int, replies: int, duplicates: int, lost: int,
           dlq: int = 0, **extra: Any) -> None:
    """Merge one test's counts into the report, only with REPLYFLOW_RELIABILITY_REPORT=1.

    Opt-in so that everyday ``make test`` runs leave the committed report alone.
    """
    if not _ENABLED:
        return
    with _lock:
        data: dict[str, Any] = {}
        if REPORT.exists():
            try:
                data = json.loads(REPORT.read_text(encoding="utf-8"))
            except ValueError:
                data = {}
        try:
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                    cwd=REPORT.parents[1], timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = ""
        data.setdefault("results", {})[test] = {
            "fault": fault, "test": test, "rows_in": rows_in, "rows_out": rows_out, "dlq": dlq,
            "replies_sent": replies, "duplicates": duplicates, "lost": lost,
            "recorded_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "commit": commit, **extra,
        }
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def markdown_table(path: Path = REPORT) -> str:
    """The RELIABILITY.md table from the recorded runs (``python -m tests.reliability.report``)."""
    data = json.loads(path.read_text(encoding="utf-8"))["results"]
    lines = ["| fault or input class | test | rows in | rows out | DLQ / rejected | replies sent | duplicates | lost | recorded (UTC, commit) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for test, r in sorted(data.items(), key=lambda kv: kv[1]["fault"]):
        lines.append(
            f"| {r['fault']} | `{test}` | {r['rows_in']} | {r['rows_out']} | {r.get('dlq', 0)} | {r['replies_sent']} | "
            f"{r['duplicates']} | {r['lost']} | {r['recorded_at']} {r.get('commit', '')} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())  # noqa: T201 - a command-line helper, not library code
