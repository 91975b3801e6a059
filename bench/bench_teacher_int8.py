"""The int8 teacher against the float one, on the VALIDATION split: the record of why serving runs int8.

Serving computes the teacher's MatMuls in int8, one tweet per run (``OnnxModel.load(int8=True)``,
docs/MODEL_CARD.md "The teacher"). This compares both on the validation tweets (never test): sentiment
accuracy / macro-F1 and topic gold-8 macro-F1 at the default cascade threshold and with the teacher
alone, plus ``Enricher.enrich`` throughput at the default (batches of 256, best of 3 passes).
Writes reports/bench/teacher_int8.json and reports/bench/teacher_int8.md.

    .venv/bin/python bench/bench_teacher_int8.py
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from machine import describe  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402

from replyflow.nlp.data import load_labelled  # noqa: E402
from replyflow.nlp.models import OnnxModel  # noqa: E402
from replyflow.nlp.pipeline import Enricher  # noqa: E402
from replyflow.nlp.tasks import NO_TOPIC  # noqa: E402
from replyflow.settings import Settings  # noqa: E402

BATCH = 256


def enrich_rate(enricher: Enricher, texts: list[str], n: int = 4096) -> float:
    """Best-of-3 tweets/s of ``Enricher.enrich`` in batches of 256 (one warm-up batch first)."""
    repeated = (texts * (n // max(1, len(texts)) + 1))[:n]
    batches = [repeated[i : i + BATCH] for i in range(0, n, BATCH)]
    enricher.enrich(batches[0])
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for batch in batches:
            enricher.enrich(batch)
        best = max(best, n / (time.perf_counter() - start))
    return best


def main() -> None:
    settings = Settings()
    frame = load_labelled(settings)
    va = frame[frame["split"] == "validation"].reset_index(drop=True)
    texts = va["text"].tolist()
    gold = (va["topic"].notna() & (va["topic"] != NO_TOPIC)).to_numpy()
    classes = sorted(set(va["topic"][gold]))
    rows = []
    for threshold in (settings.nlp_cascade_threshold, 1.0):
        for kind in ("float", "int8"):
            enricher = Enricher.load(settings.models_dir, threshold)  # serving: the int8 teacher
            if kind == "float":
                enricher.teacher = OnnxModel.load(settings.models_dir / "teacher", enricher.tokenizer)
            out = enricher.classify(texts)
            sentiment = [o["sentiment"] for o in out]
            topics = [o["topic"] or NO_TOPIC for o, g in zip(out, gold) if g]
            rows.append({
                "cascade_threshold": threshold, "teacher": kind,
                "sentiment_accuracy": round(float(accuracy_score(va["airline_sentiment"], sentiment)), 4),
                "sentiment_macro_f1": round(float(f1_score(va["airline_sentiment"], sentiment, average="macro")), 4),
                "topic_gold8_macro_f1": round(float(f1_score(va["topic"][gold], topics, labels=classes, average="macro")), 4),
                "enricher_tweets_per_s": round(enrich_rate(enricher, texts)) if threshold < 1.0 else None,
            })  # fmt: skip
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": describe(),
              "command": "python bench/bench_teacher_int8.py", "n_validation": len(va), "rows": rows}
    out_dir = ROOT / "reports" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "teacher_int8.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = [
        "## The int8 teacher against the float one (validation split)",
        "",
        f"- Date: {result['date']}",
        f"- Machine: {result['machine']}",
        f"- Command: `{result['command']}`",
        f"- {len(va)} validation tweets (topic: the {int(gold.sum())} with a gold topic among the 8 classes);"
        " serving runs the int8 teacher one tweet per run.",
        "",
        "| Cascade threshold | Teacher | Sentiment acc / macro-F1 | Topic gold-8 macro-F1 | Enricher tweets/s |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        speed = f"{r['enricher_tweets_per_s']:,}" if r["enricher_tweets_per_s"] else "-"
        lines.append(f"| {r['cascade_threshold']:g} | {r['teacher']} | {r['sentiment_accuracy']:.4f} / "
                     f"{r['sentiment_macro_f1']:.4f} | {r['topic_gold8_macro_f1']:.4f} | {speed} |")
    (out_dir / "teacher_int8.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
