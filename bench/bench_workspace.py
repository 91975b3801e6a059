"""Benchmark: latency of the workspace's queue and ticket-list pages with 100,000 tickets, SQLite and PostgreSQL.

For each database: fills a fresh one with ``--tickets`` tickets (one tweet each, a realistic mix of
statuses, reasons, topics, assignees, automatic replies and SLA times over the last 30 days, bulk
inserted), starts ``replyflow serve --no-sender`` as a separate process (real waitress, loopback),
signs in as an agent through the login form, then requests each page ``--requests`` times one after
the other (after 3 warm-up requests) and reports p50/p95/max.  PostgreSQL is a throwaway server
(the test suite's), ``ANALYZE``d after the load as autovacuum would in steady state; SQLite is
used as it is (no ANALYZE).  Target from issue 13: queue and ticket-list pages p95 <= 200 ms.
Writes ``reports/bench/workspace.json`` and ``reports/bench/workspace.md`` (a docs/BENCHMARKS.md section).

    .venv/bin/python bench/bench_workspace.py [--tickets 100000] [--requests 40] [--only sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, load_average  # noqa: E402

from replyflow.ops.background import free_port, wait_for_health  # noqa: E402
from tests.fixtures.postgres import throwaway_postgres  # noqa: E402

log = logging.getLogger("bench_workspace")
TOKEN = "bench-token-0123456789"
AGENTS = ["alice", "bob", "carol", "dan", "erin"]
PASSWORD = "bench-password-1"
TOPICS = ["Baggage Issue", "Customer Experience", "Delay and Customer Service", "Extra Charges", "Online Booking",
          "Reschedule and Refund", "Reservation Issue", "Seating Preferences", None]
#: (name, path, counted against the 200 ms target)
PAGES = [
    ("ticket list (all, newest first)", "/", True),
    ("ticket list, status=open", "/?status=open", True),
    ("ticket list, page 100", "/?page=100", True),
    ("queue: unassigned", "/queues/unassigned", True),
    ("queue: mine", "/queues/mine", True),
    ("queue: low confidence", "/queues/low_confidence", True),
    ("queue: SLA breached", "/queues/breached", True),
    ("queue: needs approval", "/approvals", True),
    ("queue: failures", "/failures", True),
    ("queue counts + freshness (htmx, every 15 s)", "/fragments/nav", False),
    ("ticket page", "/tickets/{ticket}", False),
    ("SLA figures (30 days)", "/sla", False),
]


def fill(url: str, n: int, seed: int = 13) -> str:
    """Bulk-load ``n`` tickets with their tweets and automatic replies; returns one ticket ID to open."""
    from sqlalchemy import insert

    from replyflow.reply.accounts import Accounts
    from replyflow.reply.store import Store
    from replyflow.reply.tables import OutboxEntry, Ticket, Tweet

    rng = random.Random(seed)
    store = Store(url)
    store.create_all()
    accounts = Accounts(store.db)
    user_ids = [accounts.add(name, PASSWORD).id for name in AGENTS]
    now = datetime.now(timezone.utc)
    codes = {"Baggage Issue": "BAG", "Customer Experience": "CXP", "Delay and Customer Service": "DLY",
             "Extra Charges": "CHG", "Online Booking": "ONL", "Reschedule and Refund": "RFD",
             "Reservation Issue": "RES", "Seating Preferences": "SEA", None: "GEN"}
    chunk = 5000
    for start in range(0, n, chunk):
        tickets, tweets, outbox = [], [], []
        for i in range(start, min(n, start + chunk)):
            created = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
            topic = rng.choice(TOPICS)
            low = rng.random() < 0.12
            roll = rng.random()
            status = "resolved" if roll < 0.6 else ("pending" if roll < 0.7 else "open")
            answered = not low and rng.random() < 0.97
            first_response = created + timedelta(seconds=rng.expovariate(1 / 900)) if answered else None
            resolved = created + timedelta(hours=rng.expovariate(1 / 10)) if status == "resolved" else None
            tid = f"{codes[topic]}-{created:%Y%m%d}-{i:06d}"
            tweet_id = str(10**15 + i)
            tickets.append({"id": i + 1, "ticket_id": tid, "conversation_id": tweet_id,
                            "open_conversation_id": None if status == "resolved" else tweet_id, "status": status,
                            "topic": topic, "topic_code": codes[topic], "sentiment": "negative",
                            "reason": "low_confidence" if low else "complaint", "author_handle": f"user{i % 5000}",
                            "first_tweet_id": tweet_id, "created_at": created, "updated_at": created,
                            "assignee_id": rng.choice(user_ids) if rng.random() < 0.7 else None,
                            "first_response_at": first_response, "resolved_at": resolved})
            tweets.append({"tweet_id": tweet_id, "text": f"@united tweet number {i} about my {topic or 'trip'} & more",
                           "author_id": str(i % 5000), "author_handle": f"user{i % 5000}", "created_at": created,
                           "conversation_id": tweet_id, "matched_rules": [], "sentiment": "negative",
                           "sentiment_score": 0.4 if low else 0.9, "topic": topic, "topic_score": 0.8, "entities": [],
                           "processed_at": created, "needs_reply": True, "auto_reply": not low,
                           "reason": "low_confidence" if low else "complaint", "received_at": created, "ticket_pk": i + 1})
            if not low:
                state = "sent" if answered else rng.choice(["awaiting_approval", "failed", "queued"])
                outbox.append({"tweet_id": tweet_id, "ticket_pk": i + 1, "ticket_id": tid, "kind": "auto",
                               "text": f"@user{i % 5000} Sorry. Ref {tid} ^RF", "status": state, "attempts": 1,
                               "created_at": created, "updated_at": created, "sent_at": first_response})
        with store.db.write() as session:
            session.execute(insert(Ticket), tickets)
            session.execute(insert(Tweet), tweets)
            if outbox:
                session.execute(insert(OutboxEntry), outbox)
    if store.db.dialect == "postgresql":
        with store.db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
            conn.exec_driver_sql("SELECT setval('tickets_id_seq', (SELECT max(id) FROM tickets))")
    store.dispose()
    return tickets[-1]["ticket_id"]


def serve(url: str, state: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "REPLYFLOW_STATE_DIR": str(state), "REPLYFLOW_DATABASE_URL": url,
           "REPLYFLOW_API_PORT": str(port), "REPLYFLOW_API_TOKEN": TOKEN, "REPLYFLOW_LOG_LEVEL": "WARNING",
           "REPLYFLOW_WEB_LOGIN_RATE_LIMIT": "1000 per minute"}
    proc = subprocess.Popen([sys.executable, "-m", "replyflow.cli", "serve", "--no-sender"], env=env, cwd=ROOT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    wait_for_health(f"{base}/api/v1/health", 120)
    return proc, base


def measure(base: str, ticket: str, n: int) -> list[dict[str, Any]]:
    session = requests.Session()
    login = session.get(f"{base}/login", timeout=60).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)  # type: ignore[union-attr]
    r = session.post(f"{base}/login", data={"username": AGENTS[0], "password": PASSWORD, "csrf_token": token},
                     allow_redirects=False, timeout=60)
    assert r.status_code == 302, r.status_code
    rows = []
    for name, path, target in PAGES:
        url = base + path.format(ticket=ticket)
        for _ in range(3):
            assert session.get(url, timeout=60).status_code == 200, url
        times = []
        for _ in range(n):
            started = time.perf_counter()
            response = session.get(url, timeout=60)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, url
        times.sort()
        rows.append({"page": name, "path": path, "target": target, "requests": n,
                     "p50_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * (n - 1))], 1),
                     "max_ms": round(times[-1], 1)})
        log.info("%-45s p50 %6.1f ms  p95 %6.1f ms", name, rows[-1]["p50_ms"], rows[-1]["p95_ms"])
    return rows


def run(backend: str, tickets: int, n: int) -> dict[str, Any]:
    with ExitStack() as stack:
        state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ws-")))
        url = stack.enter_context(throwaway_postgres()) if backend == "postgresql" else f"sqlite:///{state / 'ws.db'}"
        load = load_average()
        started = time.monotonic()
        ticket = fill(url, tickets)
        load_s = time.monotonic() - started
        log.info("%s: %d tickets loaded in %.0f s", backend, tickets, load_s)
        proc, base = serve(url, state)
        try:
            rows = measure(base, ticket, n)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    return {"backend": backend, "tickets": tickets, "load_seconds": round(load_s, 1), "pages": rows,
            "load_average_at_start": list(load) if load else None}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "## Agent workspace pages with 100,000 tickets (SQLite and PostgreSQL)",
        "",
        f"- Date: {result['date']}",
        f"- Machine: {result['machine']}",
        f"- Command: `{result['command']}`",
        "- Setup: a fresh database per backend filled with one ticket, one tweet and (88 %) one automatic reply per",
        "  ticket over 30 days (60 % resolved, 70 % assigned to 5 agents, 12 % low confidence); `replyflow serve",
        "  --no-sender` (waitress) in its own process; one signed-in client on loopback, requests one after the other,",
        f"  {result['requests']} timed requests per page after 3 warm-up ones. PostgreSQL: the tests' throwaway",
        "  server (fsync off), ANALYZEd after the load; SQLite (WAL) as is. Target: p95 <= 200 ms for the queue",
        "  and ticket-list pages (marked *). Client and server share the machine's cores; figures of one run.",
        "",
        "| Page | SQLite p50 ms | SQLite p95 ms | PostgreSQL p50 ms | PostgreSQL p95 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    by_backend = {r["backend"]: {p["page"]: p for p in r["pages"]} for r in result["runs"]}
    for name, _, target in PAGES:
        cells = []
        for backend in ("sqlite", "postgresql"):
            page = by_backend.get(backend, {}).get(name)
            cells += [f"{page['p50_ms']:.1f}", f"{page['p95_ms']:.1f}"] if page else ["-", "-"]
        lines.append(f"| {name}{' *' if target else ''} | " + " | ".join(cells) + " |")
    worst = {b: max((p["p95_ms"] for p in pages.values() if p["target"]), default=0) for b, pages in by_backend.items()}
    lines += ["", "Worst p95 of the target pages: " + ", ".join(f"{b} {v:.1f} ms" for b, v in worst.items()) + ". "
              + "Load time: " + ", ".join(f"{r['backend']} {r['load_seconds']:.0f} s" for r in result["runs"]) + "."]
    loads = [f"{r['backend']} {r['load_average_at_start'][0]:.1f}" for r in result["runs"] if r.get("load_average_at_start")]
    if loads:
        lines += ["", "1-minute load average when each run started: " + ", ".join(loads) + " (on 2 cores: the machine "
                  "was shared with other jobs, so the SQLite figures especially are noisy and pessimistic)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--only", default="sqlite,postgresql")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench")
    parser.add_argument("--render", action="store_true", help="only rewrite workspace.md from workspace.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.render:
        result = json.loads((args.out / "workspace.json").read_text(encoding="utf-8"))
        (args.out / "workspace.md").write_text(markdown(result), encoding="utf-8")
        return
    runs = [run(backend, args.tickets, args.requests) for backend in args.only.split(",")]
    result = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": describe(),
              "command": "python bench/bench_workspace.py" + (f" --tickets {args.tickets}" if args.tickets != 100_000 else ""),
              "requests": args.requests, "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "workspace.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / "workspace.md").write_text(markdown(result), encoding="utf-8")
    log.info("wrote %s", args.out / "workspace.md")


if __name__ == "__main__":
    main()
