"""Benchmark: the stream job's sustained throughput and end-to-end latency at several input rates.

Everything real and on this machine: a Kafka broker started for the run (temp dir, free
ports), ``replyflow serve --no-sender`` as a separate process (SQLite, dry-run), one Spark
``local[2]`` session, the real NLP pipeline.  For each rate (default 50/s and 200/s for
``--seconds`` each, then a backlog of ``--backlog-tweets`` put in Kafka before the query starts)
dataset tweets (fresh ids per phase) are replayed into a new topic while a fresh query (own
checkpoint/parquet) runs, until it has been idle for 4 s.  A warm-up phase (not reported) loads
the models in every Python worker first.

Latencies are per tweet, from the Kafka message timestamp (producer CreateTime):
* tweet -> parquet: until the parquet write of the tweet's batch returned (``processed_at``,
  the end of the NLP step, is reported too);
* tweet -> reply queued: until the reply service created the outbox entry (public replies only).

Writes reports/bench/stream.json, reports/bench/stream.md and reports/bench/stream_latency.png.

    .venv/bin/python bench/bench_stream.py [--rates 50,200,max] [--seconds 30] [--max-tweets 3000]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports" / "bench"
TOKEN = "bench-token-0123456789"
log = logging.getLogger("bench_stream")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402

from replyflow.ops.background import free_port, wait_for_health  # noqa: E402


# --- environment -------------------------------------------------------------------------------
def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "models"], cwd=ROOT, capture_output=True,
                               text=True).stdout.strip()  # fmt: skip
        return head + (" (+ uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown"


def dataset_tweets(limit: int = 20000) -> list[Any]:
    from replyflow.ingest.replay import distinct_tweets

    return distinct_tweets(ROOT / "data" / "airline_tweets_sentiment.csv", limit)


def phase_file(tweets: list[Any], n: int, base_id: int, path: Path) -> list[str]:
    """``n`` dataset tweets with fresh, unique ids (so every phase creates new tickets)."""
    ids = []
    with path.open("wb") as handle:
        for i in range(n):
            src = tweets[i % len(tweets)]
            tid = str(base_id + i)
            tweet = src.model_copy(update={"tweet_id": tid, "conversation_id": tid})
            handle.write(tweet.to_json() + b"\n")
            ids.append(tid)
    return ids


class ReplyServer:
    """``replyflow serve --no-sender`` in its own process (no GIL shared with the Spark driver)."""

    def __init__(self, state_dir: Path) -> None:
        self.port = free_port()
        self.state_dir = state_dir
        env = {**os.environ, "REPLYFLOW_STATE_DIR": str(state_dir), "REPLYFLOW_API_PORT": str(self.port),
               "REPLYFLOW_API_HOST": "127.0.0.1", "REPLYFLOW_API_TOKEN": TOKEN, "REPLYFLOW_LOG_LEVEL": "WARNING"}  # fmt: skip
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "replyflow"), "serve", "--no-sender"], env=env, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=open(state_dir / "serve.err", "wb"),
        )  # fmt: skip
        try:
            wait_for_health(f"{self.url}/api/v1/health", 60, self.proc, interval=0.2)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"reply service did not start ({exc}); see {state_dir / 'serve.err'}") from None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def outbox_times(self, ids: set[str]) -> dict[str, datetime]:
        from sqlalchemy import create_engine, select

        from replyflow.reply.tables import OutboxEntry

        engine = create_engine(f"sqlite:///{self.state_dir / 'replyflow.db'}")
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(OutboxEntry.tweet_id, OutboxEntry.created_at)).all()
        finally:
            engine.dispose()
        return {t: (c if c.tzinfo else c.replace(tzinfo=timezone.utc)) for t, c in rows if t in ids}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- one phase -----------------------------------------------------------------------------------
def pct(values: list[float] | np.ndarray, q: float) -> float | None:
    arr = np.asarray(values, dtype=float)
    return round(float(np.percentile(arr, q)), 3) if arr.size else None


def run_phase(spark: Any, base: Any, server: ReplyServer, tweets: list[Any], label: str, rate: float, n: int,
              workdir: Path, loader: Any) -> dict[str, Any]:  # fmt: skip
    from replyflow.ingest.replay import replay_file
    from replyflow.kafka.topics import ensure_topics
    from replyflow.stream.job import StreamJob

    suffix = uuid.uuid4().hex[:8]
    settings = base.model_copy(update={
        "topic_raw": f"bench.raw.{suffix}", "topic_enriched": f"bench.enriched.{suffix}", "topic_dlq": f"bench.dlq.{suffix}",
        "parquet_path": str(workdir / f"{label}-{suffix}" / "parquet"),
        "checkpoint_dir": str(workdir / f"{label}-{suffix}" / "checkpoint"),
    })  # fmt: skip
    ensure_topics(settings)
    jsonl = workdir / f"{label}-{suffix}.jsonl"
    phase_file(tweets, n, base_id=10**15 + int(suffix, 16) % 10**6 * 10**7, path=jsonl)
    reports: list[Any] = []
    job = StreamJob(settings, spark=spark, on_batch=reports.append, enricher_loader=loader)
    backlog = label.endswith("backlog")
    if backlog:  # the whole phase is in Kafka before the query starts: the stream alone, flat out
        started = time.time()
        stats = replay_file(settings, jsonl, rate=0, progress=False)
        produced_s = time.time() - started
        load_before = os.getloadavg()
        job.start()
    else:
        job.start()
        time.sleep(3)  # let the query reach its first (empty) trigger
        load_before = os.getloadavg()
        started = time.time()
        stats = replay_file(settings, jsonl, rate=rate, progress=False)
        produced_s = time.time() - started
    try:
        job.wait(until_idle=4)
    finally:
        job.stop()
    load_after = os.getloadavg()
    frame = pd.read_parquet(settings.parquet_location,
                            columns=["tweet_id", "kafka_timestamp", "processed_at", "batch_id", "model_version"])
    written = {r.batch_id: r.parquet_written_at for r in reports}
    kafka_ts = frame["kafka_timestamp"].astype("datetime64[us]").astype("int64") / 1e6
    processed = frame["processed_at"].astype("datetime64[us]").astype("int64") / 1e6
    parquet_at = frame["batch_id"].astype(int).map(written)
    lat_parquet = (parquet_at - kafka_ts).dropna().to_numpy()
    lat_processed = (processed - kafka_ts).to_numpy()
    by_id = dict(zip(frame["tweet_id"], kafka_ts, strict=True))
    outbox = server.outbox_times(set(by_id))
    lat_reply = np.array([c.timestamp() - by_id[t] for t, c in outbox.items()])
    first_in = float(kafka_ts.min()) if len(frame) else started
    if backlog and reports:  # from the start of the first batch: the tweets were waiting in Kafka
        first_in = min(r.started_at for r in reports)
    # The end of the last batch, replies and topics included: what 'Kafka -> parquet + replies' sustains.
    last_out = max(r.finished_at for r in reports) if reports else started
    busy = sum(r.duration_s for r in reports)
    result = {
        "phase": label,
        "model_version": str(frame["model_version"].iloc[0]) if len(frame) else None,
        "target_rate": "backlog" if backlog else (rate if rate > 0 else "max"),
        "tweets_in": stats.published,
        "parquet_rows": int(len(frame)),
        "distinct_ids": int(frame["tweet_id"].nunique()),
        "produce_s": round(produced_s, 2),
        "input_rate": round(stats.published / produced_s, 1) if produced_s > 0 else None,
        "throughput_tweets_s": round(len(frame) / (last_out - first_in), 1) if last_out > first_in else None,
        "processing_rate_tweets_s": round(len(frame) / busy, 1) if busy else None,
        "batches": len(reports),
        "batch_duration_p50_s": pct([r.duration_s for r in reports], 50),
        "batch_rows_p50": pct([r.rows_in for r in reports], 50),
        "latency_parquet_p50_s": pct(lat_parquet, 50),
        "latency_parquet_p95_s": pct(lat_parquet, 95),
        "latency_processed_p50_s": pct(lat_processed, 50),
        "latency_processed_p95_s": pct(lat_processed, 95),
        "replies_queued": int(len(lat_reply)),
        "latency_reply_p50_s": pct(lat_reply, 50),
        "latency_reply_p95_s": pct(lat_reply, 95),
        "step_seconds_total": {k: round(sum(r.steps_s.get(k, 0.0) for r in reports), 2)
                               for k in sorted({k for r in reports for k in r.steps_s})},  # fmt: skip
        "loadavg_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
    }
    log.info("phase %s: %s", label, json.dumps(result))
    return result


# --- report --------------------------------------------------------------------------------------
COLUMNS = [
    ("target_rate", "target rate (tweets/s)"), ("tweets_in", "tweets"), ("input_rate", "input rate"),
    ("throughput_tweets_s", "throughput (tweets/s)"), ("processing_rate_tweets_s", "capacity (tweets/s busy)"),
    ("batches", "batches"),
    ("latency_parquet_p50_s", "tweet->parquet p50 (s)"), ("latency_parquet_p95_s", "p95 (s)"),
    ("latency_processed_p50_s", "tweet->NLP done p50 (s)"),
    ("latency_reply_p50_s", "tweet->reply queued p50 (s)"), ("latency_reply_p95_s", "p95 (s)"),
    ("loadavg_1m_before_after", "load avg 1m"),
]  # fmt: skip


def write_reports(meta: dict[str, Any], phases: list[dict[str, Any]], out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "stream.json").write_text(json.dumps({**meta, "phases": phases}, indent=2) + "\n")
    lines = [
        "## Stream job (Kafka -> Spark + NLP -> parquet / reply service)",
        "",
        f"Machine: {meta['cpu']}, {meta['cores']} cores (shared with other work: see load average). "
        f"Date: {meta['date']}. Spark {meta['spark']} `{meta['spark_master']}`, trigger {meta['trigger_s']} s, "
        f"max {meta['max_offsets']} offsets/trigger, NLP `{meta['nlp']}` (model `{meta['model_version']}`), "
        f"commit `{meta['commit']}`.",
        "",
        f"Command: `{meta['command']}`",
        "",
        "| " + " | ".join(h for _, h in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for phase in phases:
        cells = []
        for key, _ in COLUMNS:
            value = phase.get(key)
            cells.append("/".join(str(v) for v in value) if isinstance(value, list) else ("-" if value is None else str(value)))
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Latency is per tweet from its Kafka timestamp (producer time) to the end of the parquet write of its",
        "micro-batch, and to the creation of its outbox entry in the reply service (public replies only).",
        "Throughput = parquet rows / (end of the last batch, replies included - first Kafka timestamp; for the backlog",
        "phase, start of the first batch); capacity = parquet rows / sum of batch durations (what the job does while",
        "busy). Every phase had its own topic,",
        "checkpoint and parquet directory; one warm-up phase (model loading) is not reported.",
        "Plot: `reports/bench/stream_latency.png`. Raw figures and per-step times: `reports/bench/stream.json`.",
        "",
    ]
    (out / "stream.md").write_text("\n".join(lines))
    plot(phases, out)


def plot(phases: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{p['target_rate']}/s\n({p['throughput_tweets_s']}/s done)" for p in phases]
    x = np.arange(len(phases))
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, name, marker in (("latency_parquet", "tweet->parquet", "o"), ("latency_reply", "tweet->reply queued", "s")):
        p50 = [p[f"{key}_p50_s"] or np.nan for p in phases]
        p95 = [p[f"{key}_p95_s"] or np.nan for p in phases]
        ax.plot(x, p50, marker=marker, label=f"{name} p50")
        ax.plot(x, p95, marker=marker, linestyle="--", label=f"{name} p95")
    ax.set_xticks(x, labels)
    ax.set_xlabel("replay rate (achieved throughput)")
    ax.set_ylabel("latency (s)")
    ax.set_title("replyflow stream: latency vs input rate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "stream_latency.png", dpi=120)
    plt.close(fig)


# --- main ----------------------------------------------------------------------------------------
def _fake_loader(models_dir: str) -> Any:
    class Fake:
        model_version = "fake (no models: pipeline overhead only)"

        def enrich(self, texts: list[str]) -> list[dict[str, Any]]:
            return [{"clean_text": t.lower(), "sentiment": "negative", "sentiment_score": 0.9, "topic": "Baggage Issue",
                     "topic_score": 0.9, "entities": []} for t in texts]  # fmt: skip

    return Fake()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="50,200,backlog",
                        help="comma-separated tweets/s; 'max' = produce as fast as possible while the query runs; 'backlog' = produce first, then start the query")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each fixed-rate phase")
    parser.add_argument("--max-tweets", type=int, default=3000, help="tweets of the 'max' phase")
    parser.add_argument("--backlog-tweets", type=int, default=40000,
                        help="tweets of the 'backlog' phase (all in Kafka before the query starts)")
    parser.add_argument("--trigger", type=float, help="trigger interval in s (default: the setting's default)")
    parser.add_argument("--max-offsets", type=int, help="maxOffsetsPerTrigger (default: the setting's default)")
    parser.add_argument("--warmup", type=int, default=2500,
                        help="tweets of the unreported warm-up phase: enough for batches of over 1,000 rows, which run on "
                             "every core, so every Python worker has loaded the models (smaller batches run in one task)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for stream.json, stream.md, stream_latency.png")
    parser.add_argument("--fake-nlp", action="store_true", help="trivial enricher: measures the pipeline without models")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    sys.path.insert(0, str(ROOT / "src"))

    from replyflow.kafka import broker
    from replyflow.settings import Settings
    from replyflow.stream.enrich import load_enricher
    from replyflow.stream.session import create_spark

    loader = load_enricher
    if args.fake_nlp:
        from pyspark import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])
        loader = _fake_loader
    tmp = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    (tmp / "reply").mkdir()
    server = ReplyServer(tmp / "reply")
    settings = Settings(
        _env_file=None, state_dir=tmp / "var", models_dir=ROOT / "models", data_dir=ROOT / "data",
        jars_dir=ROOT / ".cache" / "jars", jvm_dir=ROOT / "jvm",
        kafka_local_port=free_port(), kafka_controller_port=free_port(), kafka_heap="512m",
        spark_master="local[2]", spark_shuffle_partitions=2, api_url=server.url, api_token=TOKEN,
    )  # fmt: skip
    if args.trigger is not None:
        settings = settings.model_copy(update={"stream_trigger_seconds": args.trigger})
    if args.max_offsets is not None:
        settings = settings.model_copy(update={"stream_max_offsets_per_trigger": args.max_offsets})
    broker.start(settings, timeout=90, die_with_parent=True)
    spark = None
    phases: list[dict[str, Any]] = []
    try:
        settings = settings.model_copy(update={"kafka_bootstrap_servers": settings.bootstrap_servers})
        spark = create_spark(settings)
        tweets = dataset_tweets()
        run_phase(spark, settings, server, tweets, "warmup", 0.0, args.warmup, tmp, loader)
        for raw in args.rates.split(","):
            rate = 0.0 if raw.strip() in ("max", "backlog") else float(raw)
            n = {"max": args.max_tweets, "backlog": args.backlog_tweets}.get(raw.strip(), int(rate * args.seconds))
            phases.append(run_phase(spark, settings, server, tweets, f"rate-{raw.strip()}", rate, n, tmp, loader))
        meta = {
            "cpu": cpu_model(), "cores": os.cpu_count(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": " ".join([".venv/bin/python bench/bench_stream.py", *(shlex.quote(a) for a in sys.argv[1:])]),
            "spark": spark.version, "spark_master": settings.spark_master, "trigger_s": settings.stream_trigger_seconds,
            "max_offsets": settings.stream_max_offsets_per_trigger,
            "nlp": "fake" if args.fake_nlp else "replyflow.nlp.pipeline (real models)",
            "model_version": phases[0].get("model_version") if phases else None, "commit": git_commit(),
        }  # fmt: skip
        write_reports(meta, phases, args.out)
        log.info("wrote %s", args.out / "stream.md")
    finally:
        if spark is not None:
            spark.stop()
        server.stop()
        broker.stop(settings.model_copy(update={"kafka_bootstrap_servers": None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
