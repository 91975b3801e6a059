"""Inference throughput of the serving models (onnxruntime) and the full Enricher.

Measures tweets/s for the sentiment and topic ONNX LSTMs at batch sizes 1 and 256 (text
already in model-input form, so this is model time only), and the whole
``Enricher.enrich`` (cleaning with spaCy + both models + NER) at batch size 256, on real
tweets of the test split.  Writes reports/bench/models.json and reports/bench/models.md.

    .venv/bin/python bench/bench_models.py [--n 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from replyflow.nlp.data import load_split  # noqa: E402
from replyflow.nlp.pipeline import Enricher  # noqa: E402
from replyflow.nlp.text import clean_texts  # noqa: E402
from replyflow.settings import Settings  # noqa: E402


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def timed(fn, n_items: int, repeat: int = 3) -> float:
    """Best-of-``repeat`` items per second (first call is a warm-up)."""
    fn()
    best = min(_once(fn) for _ in range(repeat))
    return n_items / best


def _once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="tweets per measurement (batch 256 cases)")
    ap.add_argument("--n-single", type=int, default=300, help="tweets for the batch-size-1 cases")
    args = ap.parse_args()

    settings = Settings(_env_file=None, data_dir=ROOT / "data", models_dir=ROOT / "models")
    df = load_split(settings)
    texts = df[df["split"] == "test"]["text"].fillna("").tolist()
    texts = (texts * (args.n // max(len(texts), 1) + 1))[: args.n]
    enricher = Enricher.load(settings.models_dir, batch_size=256)
    cleaned = clean_texts(texts)
    rows = []
    for model in (enricher.sentiment, enricher.topic):
        inputs = model.inputs(texts, cleaned)
        for bs, n in ((1, args.n_single), (256, args.n)):
            sub = inputs[:n]
            rate = timed(lambda: model.predict_proba(sub, batch_size=bs), len(sub))
            rows.append({"case": f"{model.name} LSTM (onnxruntime)", "batch_size": bs, "tweets": len(sub),
                         "tweets_per_s": round(rate, 1)})
    rate = timed(lambda: clean_texts(texts), len(texts), repeat=1)
    rows.append({"case": "clean_texts only (spaCy lemmatizer)", "batch_size": 256, "tweets": len(texts),
                 "tweets_per_s": round(rate, 1)})
    rate = timed(lambda: enricher.enrich(texts), len(texts), repeat=1)
    rows.append({"case": "Enricher.enrich (clean + both models + NER)", "batch_size": 256, "tweets": len(texts),
                 "tweets_per_s": round(rate, 1)})

    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{cpu_model()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "command": "python bench/bench_models.py " + " ".join(sys.argv[1:]),
        "model_version": enricher.model_version,
        "onnxruntime_threads": "default (all cores)",
        "load": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "models.json").write_text(json.dumps({**meta, "results": rows}, indent=2) + "\n")
    lines = [
        "## NLP model inference (sentiment + topic LSTMs, Enricher)",
        "",
        f"- Date: {meta['date']}",
        f"- Machine: {meta['machine']}, Python {meta['python']}",
        f"- Command: `{meta['command'].strip()}`",
        f"- Models: `{meta['model_version']}` (ONNX, onnxruntime CPU); input: real tweets of the test split",
        "- Model rows time token-id encoding + the ONNX session (input text prepared beforehand); Enricher rows include",
        "  spaCy cleaning, both models and NER (spaCy + rules). Best of 3 runs for model rows, 1 run otherwise.",
        f"- Load average (1/5/15 min) when it finished: {meta['load']} (the 2 cores are shared with other work; numbers are lower bounds).",
        "",
        "| Case | Batch size | Tweets | Tweets/s |",
        "|---|---:|---:|---:|",
        *[f"| {r['case']} | {r['batch_size']} | {r['tweets']} | {r['tweets_per_s']:,.0f} |" for r in rows],
        "",
    ]
    (out / "models.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
