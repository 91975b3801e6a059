"""Benchmark: requests/s of POST /api/v1/replies: single tweets, batches of 100, and the stream's way.

The stream's way: one client posting 20,000 tweets in chunks of 500 (``api_max_batch``) one after the
other, as JSON text, which is how the stream's reply step feeds the service while catching up.

Starts ``replyflow serve --no-sender`` as a separate process (real waitress, SQLite in a
temp dir, loopback) so client and server do not share a GIL, then posts unique
enriched tweets from a small thread pool of ``requests.Session`` clients.  Counts are
bounded so the run takes well under a minute on 2 cores.  Writes
``reports/bench/api.json`` and ``reports/bench/api.md`` (a section for docs/BENCHMARKS.md).

    .venv/bin/python bench/bench_api.py [--single 600] [--batches 20] [--clients 4]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402

from replyflow.ops.background import free_port, wait_for_health  # noqa: E402
from tests.fixtures.reply import enriched_tweet  # noqa: E402

log = logging.getLogger("bench_api")
TOKEN = "bench-token-0123456789"
_ids = itertools.count(10**12)
_local = threading.local()


def tweet(i: int) -> dict[str, Any]:
    """Unique tweets with a realistic mix: 60% complaints, 25% questions, 15% ignored."""
    tid = next(_ids)
    kind = i % 20
    if kind < 12:
        return enriched_tweet(tweet_id=str(tid))
    if kind < 17:
        return enriched_tweet(tweet_id=str(tid), sentiment="neutral", topic="Online Booking", topic_score=0.9)
    return enriched_tweet(tweet_id=str(tid), sentiment="positive")


def session() -> requests.Session:
    if not hasattr(_local, "s"):
        _local.s = requests.Session()
        _local.s.headers["Authorization"] = f"Bearer {TOKEN}"
    return _local.s


def run_phase(url: str, bodies: list[Any], clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    lock = threading.Lock()

    def one(body: Any) -> None:
        t0 = time.perf_counter()
        r = session().post(url, json=body, timeout=120)
        r.raise_for_status()
        with lock:
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, bodies))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(bodies),
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(bodies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=600, help="single-tweet requests")
    parser.add_argument("--batches", type=int, default=20, help="batch requests of --batch-size tweets")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--stream-tweets", type=int, default=20000, help="tweets of the stream-like phase")
    parser.add_argument("--stream-chunk", type=int, default=500, help="tweets per request in the stream-like phase")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="replyflow-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REPLYFLOW_")}
        env.update(REPLYFLOW_STATE_DIR=tmp, REPLYFLOW_API_PORT=str(port), REPLYFLOW_API_TOKEN=TOKEN,
                   REPLYFLOW_LOG_LEVEL="WARNING")
        server = subprocess.Popen([sys.executable, "-m", "replyflow.cli", "serve", "--no-sender"], env=env, cwd=tmp,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}/api/v1"
        try:
            wait_for_health(f"{base}/health", 60, server)
            url = f"{base}/replies"
            run_phase(url, [tweet(i) for i in range(50)], args.clients)  # warm-up (connections, caches)
            single_bodies = [tweet(i) for i in range(args.single)]
            single = run_phase(url, single_bodies, args.clients)
            duplicate = run_phase(url, single_bodies[: max(1, args.single // 2)], args.clients)
            batch_bodies = [{"tweets": [tweet(i) for i in range(args.batch_size)]} for _ in range(args.batches)]
            batch = run_phase(url, batch_bodies, args.clients)
            batch["tweets_per_s"] = round(batch["requests_per_s"] * args.batch_size, 1)
            # the stream's reply step: one client, JSON text, chunks of api_max_batch, one after the other
            chunks = [{"tweets": [tweet(i) for i in range(args.stream_chunk)]}
                      for _ in range(max(1, args.stream_tweets // args.stream_chunk))]
            stream_like = run_phase(url, chunks, 1)
            stream_like["tweets_per_s"] = round(stream_like["requests_per_s"] * args.stream_chunk, 1)
            stats = requests.get(f"{base}/stats", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).json()
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()

    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()},
        "command": "python bench/bench_api.py " + " ".join(sys.argv[1:]),
        "setup": {"server": "replyflow serve --no-sender (waitress, 8 threads)", "database": "SQLite (WAL)",
                  "clients": args.clients, "batch_size": args.batch_size},
        "single": single,
        "single_duplicates": duplicate,
        "batch": batch,
        "stream_like": stream_like,
        "tickets_created": stats["tickets"]["total"],
        "tweets_stored": stats["tweets"]["total"],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "api.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    md = f"""## Reply API throughput (POST /api/v1/replies)

- Date: {result['date']}
- Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, Python {result['machine']['python']}
- Command: `{result['command'].strip()}`
- Setup: {result['setup']['server']}, {result['setup']['database']} in a temp dir, loopback HTTP,
  {args.clients} client threads with keep-alive sessions; unique tweets (60% complaints -> ticket + reply,
  25% questions, 15% ignored); a single tweet is one transaction, a batch is one transaction.

| Case | Requests | Seconds | Requests/s | Tweets/s | p50 ms | p95 ms |
|---|---:|---:|---:|---:|---:|---:|
| Single tweet | {single['requests']} | {single['seconds']} | {single['requests_per_s']} | {single['requests_per_s']} | {single['p50_ms']} | {single['p95_ms']} |
| Same tweets again (duplicates) | {duplicate['requests']} | {duplicate['seconds']} | {duplicate['requests_per_s']} | {duplicate['requests_per_s']} | {duplicate['p50_ms']} | {duplicate['p95_ms']} |
| Batch of {args.batch_size} | {batch['requests']} | {batch['seconds']} | {batch['requests_per_s']} | {batch['tweets_per_s']} | {batch['p50_ms']} | {batch['p95_ms']} |
| The stream's way: 1 client, chunks of {args.stream_chunk} in a row | {stream_like['requests']} | {stream_like['seconds']} | {stream_like['requests_per_s']} | {stream_like['tweets_per_s']} | {stream_like['p50_ms']} | {stream_like['p95_ms']} |

Tickets created: {result['tickets_created']}, tweets stored: {result['tweets_stored']}.
Client and server share the same {result['machine']['cores']} cores, so these are lower bounds for the server.
"""
    (args.out / "api.md").write_text(md, encoding="utf-8")
    log.info("single %.1f req/s, batch %.1f req/s (%.1f tweets/s), stream-like %.1f tweets/s; wrote %s",
             single["requests_per_s"], batch["requests_per_s"], batch["tweets_per_s"], stream_like["tweets_per_s"],
             args.out / "api.json")


if __name__ == "__main__":
    main()
