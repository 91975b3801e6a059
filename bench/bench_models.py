"""Inference throughput of the serving models (onnxruntime) and the full Enricher.

Measures tweets/s at batch sizes 1 and 256 (text already in model-input form, so this is
model time only) for: sentiment + topic together (the pretrained encoder once, then both
LSTM heads: what serving runs), the encoder alone and each head alone; then the whole
``Enricher.enrich`` (cleaning with spaCy + encoder + both heads + NER) at batch size 256,
on real tweets of the test split.  Writes reports/bench/models.json and reports/bench/models.md.

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
sys.path.insert(0, str(ROOT / "bench"))

from machine import cpu_model, load_average  # noqa: E402

from replyflow.nlp.data import load_split  # noqa: E402
from replyflow.nlp.pipeline import Enricher  # noqa: E402
from replyflow.nlp.text import clean_texts, encoder_texts  # noqa: E402
from replyflow.settings import Settings  # noqa: E402


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
    inputs = encoder_texts(texts)
    enc, sent, topic = enricher.encoder, enricher.sentiment, enricher.topic
    hidden_all, _ = enc.encode(inputs)

    def both(batch: list[str]) -> None:
        hidden, _ = enc.encode(batch)
        sent.predict_proba(hidden)
        topic.predict_proba(hidden)

    cases = [
        ("sentiment + topic (encoder once + both LSTM heads)", lambda b: both(b), inputs),
        ("encoder only (all-MiniLM-L6-v2, onnxruntime)", lambda b: enc.encode(b), inputs),
        ("sentiment LSTM head only", lambda h: sent.predict_proba(h), hidden_all),
        ("topic LSTM head only", lambda h: topic.predict_proba(h), hidden_all),
    ]
    rows = []
    for case, fn, data in cases:
        for bs, n in ((1, args.n_single), (256, args.n)):
            sub = data[:n]

            def run(fn=fn, sub=sub, bs=bs) -> None:
                for i in range(0, len(sub), bs):
                    fn(sub[i : i + bs])

            rows.append({"case": case, "batch_size": bs, "tweets": len(sub),
                         "tweets_per_s": round(timed(run, len(sub)), 1)})
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
        "onnxruntime_threads": "default (all cores, no spinning)",
        "load": " ".join(f"{x:.2f}" for x in load_average() or ()),
    }
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "models.json").write_text(json.dumps({**meta, "results": rows}, indent=2) + "\n")
    lines = [
        "## NLP model inference (encoder + sentiment and topic LSTM heads, Enricher)",
        "",
        f"- Date: {meta['date']}",
        f"- Machine: {meta['machine']}, Python {meta['python']}",
        f"- Command: `{meta['command'].strip()}`",
        f"- Models: `{meta['model_version']}` (ONNX, onnxruntime CPU); input: real tweets of the test split",
        "- Batch size = tweets per call. Model rows time word-piece tokenizing + the ONNX sessions (input text prepared",
        "  beforehand; head-only rows start from the encoder's output); Enricher rows include spaCy cleaning, the",
        "  encoder, both heads and NER (spaCy + rules). Best of 3 runs for model rows, 1 run otherwise.",
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
