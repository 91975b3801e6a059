"""Benchmark: stream throughput on the local cluster (Spark standalone) beside ``local[2]``.

Everything on this machine: the local cluster of ``replyflow up --cluster`` (3 Kafka brokers,
Spark standalone master + 2 workers of 1 core, PostgreSQL) in a temp dir on free ports.  The
same ``--tweets`` dataset tweets are replayed into a fresh topic (RF 3) per configuration, then
the stream job (a separate process, as operators run it; no reply posting, so only Spark is
measured) reads them until idle:

* ``local[2]``: the driver runs the tasks itself, 2 cores;
* ``cluster, 1 worker``: ``spark.cores.max=1``, one executor on one worker (tweets/s per worker);
* ``cluster, 2 workers``: both workers, one executor each.

Throughput is the steady state: tweets of every batch after the first, divided by the time from
the end of the first batch to the end of the last (start-up and model loading excluded; the
first batch's duration is reported apart).  ``--nlp fake`` uses the fault tests' keyword
enricher (Spark and Kafka cost only), ``--nlp real`` the trained models.

    .venv/bin/python bench/bench_cluster.py [--tweets 3000] [--nlp fake|real|both]

Writes reports/bench/cluster.json and reports/bench/cluster.md (a section of docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from bench_stream import dataset_tweets, git_commit, phase_file  # noqa: E402
from machine import cpu_model  # noqa: E402

log = logging.getLogger("bench_cluster")
BATCH_LINE = re.compile(r"^(\S+ \S+) INFO\s+replyflow\.stream\.job: batch (\d+): (\d+) in, .* in ([\d.]+) s")


def run_stream(client: Any, nlp: str, master: str, cores_max: int | None, workdir: Path, per_trigger: int) -> dict[str, Any]:
    """One stream process until idle; returns the batch figures parsed from its log."""
    log_path = workdir / "stream.out"
    module = ["-m", "replyflow.cli", "stream"] if nlp == "real" else ["-m", "tests.reliability.fake_nlp_stream"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLYFLOW_")}
    env.update({
        **client.to_env(), "REPLYFLOW_CONFIG": str(workdir / "none.toml"), "REPLYFLOW_STATE_DIR": str(workdir / "var"),
        "REPLYFLOW_PARQUET_PATH": "", "REPLYFLOW_CHECKPOINT_DIR": "", "REPLYFLOW_SPARK_MASTER": master,
        "REPLYFLOW_STREAM_POST_REPLIES": "false", "REPLYFLOW_STREAM_WRITE_ENRICHED_TOPIC": "false",
        "REPLYFLOW_STREAM_MAX_OFFSETS_PER_TRIGGER": str(per_trigger), "REPLYFLOW_STREAM_TRIGGER_SECONDS": "0.5",
        "REPLYFLOW_SPARK_SHUFFLE_PARTITIONS": "2", "REPLYFLOW_SPARK_DRIVER_MEMORY": "1g", "REPLYFLOW_STREAM_METRICS_PORT": "0",
        "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    })  # fmt: skip
    env.pop("REPLYFLOW_DATABASE_URL", None)
    if cores_max:
        env["PYSPARK_SUBMIT_ARGS"] = f"--conf spark.cores.max={cores_max} pyspark-shell"
    started = time.monotonic()
    with log_path.open("wb") as out:
        rc = subprocess.run([sys.executable, *module, "--until-idle", "6"], env=env, cwd=workdir, stdout=out,
                            stderr=subprocess.STDOUT, timeout=3600).returncode
    wall = time.monotonic() - started
    batches = []
    for line in log_path.read_text(errors="replace").splitlines():
        m = BATCH_LINE.match(line)
        if m:
            end = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            batches.append({"batch": int(m.group(2)), "rows": int(m.group(3)), "seconds": float(m.group(4)), "end": end})
    if rc != 0 or len(batches) < 2:
        raise RuntimeError(f"stream run failed (rc {rc}, {len(batches)} batches); see {log_path}")
    steady_rows = sum(b["rows"] for b in batches[1:])
    steady_s = batches[-1]["end"] - batches[0]["end"]
    return {
        "rows": sum(b["rows"] for b in batches), "batches": len(batches), "first_batch_s": batches[0]["seconds"],
        "steady_rows": steady_rows, "steady_s": round(steady_s, 2), "tweets_per_s": round(steady_rows / steady_s, 1),
        "wall_s": round(wall, 1),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tweets", type=int, default=3000)
    parser.add_argument("--nlp", choices=["fake", "real", "both"], default="fake")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from replyflow.ingest.replay import replay_file
    from replyflow.kafka.topics import ensure_topics
    from replyflow.ops import cluster
    from replyflow.ops.background import free_port
    from replyflow.ops.spark_cluster import master_url
    from replyflow.settings import Settings
    from tests.fixtures.cluster import free_port_base

    root = Path(tempfile.mkdtemp(prefix="replyflow-bench-cluster-"))
    root.chmod(0o755)
    base = Settings(_env_file=None, state_dir=root / "var", models_dir=ROOT / "models", jars_dir=ROOT / ".cache" / "jars",
                    jvm_dir=ROOT / "jvm", cluster_kafka_port=free_port_base((0, 1, 2, 100, 101, 102)),
                    cluster_spark_port=free_port_base((0, 1)), cluster_postgres_port=free_port())  # fmt: skip
    tweets = dataset_tweets(args.tweets)
    per_trigger = max(250, args.tweets // 8)
    configs = [("local[2]", "local[2]", None), ("cluster, 1 worker", master_url(base), 1),
               ("cluster, 2 workers", master_url(base), None)]
    nlps = ["fake", "real"] if args.nlp == "both" else [args.nlp]
    results: list[dict[str, Any]] = []
    try:
        client = cluster.start(base, die_with_parent=True)
        for nlp in nlps:
            for label, master, cores_max in configs:
                work = root / f"{nlp}-{len(results)}"
                work.mkdir()
                topic = f"bench.{uuid.uuid4().hex[:8]}"
                run_settings = client.model_copy(update={"topic_raw": topic, "topic_enriched": topic + ".e",
                                                         "topic_dlq": topic + ".d", "state_dir": work / "var"})
                ensure_topics(run_settings)
                path = work / "in.jsonl"
                phase_file(tweets, args.tweets, 7 * 10**17 + len(results) * 10**6, path)
                replay_file(run_settings, path, progress=False)
                log.info("running %s with %s NLP", label, nlp)
                figures = run_stream(run_settings, nlp, master, cores_max, work, per_trigger)
                results.append({"config": label, "nlp": nlp, "tweets": args.tweets, **figures})
                log.info("%s (%s NLP): %s tweets/s", label, nlp, figures["tweets_per_s"])
    finally:
        cluster.stop(base)
        shutil.rmtree(root, ignore_errors=True)

    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu_model(),
            "cores": os.cpu_count(), "load_avg_1m_at_end": round(os.getloadavg()[0], 1), "commit": git_commit(),
            "command": " ".join(["bench/bench_cluster.py", *sys.argv[1:]])}  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "cluster.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    lines = [
        "## Stream on the local cluster beside local[2] (`bench/bench_cluster.py`)", "",
        f"{meta['date']}, {meta['cpu']}, {meta['cores']} cores shared by everything below (3 Kafka JVMs, Spark master, "
        f"workers and executors, the driver), load average {meta['load_avg_1m_at_end']} at the end, commit {meta['commit']}. "
        f"Command: `.venv/bin/python {meta['command']}`. {args.tweets} dataset tweets per run, replayed first into a fresh "
        f"topic (3 partitions, RF 3), then one stream process until idle, {per_trigger} offsets per batch, no reply posting. "
        "Steady state = tweets of all batches after the first / time from the end of the first batch to the end of the "
        "last. One run each: noisy on a shared machine.", "",
        "| Spark | NLP | tweets/s (steady) | first batch (s) | batches | wall (s) |", "|---|---|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in results:
        lines.append(f"| {r['config']} | {r['nlp']} | {r['tweets_per_s']} | {r['first_batch_s']} | {r['batches']} | "
                     f"{r['wall_s']} |")
    (OUT / "cluster.md").write_text("\n".join(lines) + "\n")
    log.info("wrote %s", OUT / "cluster.md")


if __name__ == "__main__":
    main()
