"""Throughput of the serving NLP: each step alone, the cascade at several thresholds, the whole Enricher.

On real tweets of the test split (repeated to ``--n``), batches of 256 as the stream sends them:
word pieces, the LSTM student, the fine-tuned teacher, the cascade at the thresholds that
``replyflow evaluate`` scores (the speed half of the Pareto table; the quality half is read from
reports/metrics.json), clean_text, the rule entities, spaCy's statistical NER, and
``Enricher.enrich`` at the default threshold (cleaning + models + rule entities: the headline
figure).  Writes reports/bench/models.json and reports/bench/models.md.

    .venv/bin/python bench/bench_models.py [--n 4096]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from machine import cpu_model, describe, load_average  # noqa: E402

from replyflow.nlp.data import load_split  # noqa: E402
from replyflow.nlp.ner import extract_entities_batch  # noqa: E402
from replyflow.nlp.pipeline import Enricher  # noqa: E402
from replyflow.nlp.text import clean_texts  # noqa: E402
from replyflow.settings import Settings  # noqa: E402

BATCH = 256


def rate(fn, texts: list[str], repeat: int = 3) -> float:
    """Best-of-``repeat`` tweets per second, calling ``fn`` on batches of 256 (one warm-up pass first)."""
    batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    fn(batches[0])
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        for batch in batches:
            fn(batch)
        best = min(best, time.perf_counter() - began)
    return len(texts) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4096, help="tweets per measurement")
    args = ap.parse_args()

    settings = Settings(_env_file=None, data_dir=ROOT / "data", models_dir=ROOT / "models")
    df = load_split(settings)
    texts = df[df["split"] == "test"]["text"].fillna("").tolist()
    texts = (texts * (args.n // len(texts) + 1))[: args.n]
    default = settings.nlp_cascade_threshold
    teacher_only = Enricher.load(settings.models_dir, 1.0)
    tok, student, teacher = teacher_only.tokenizer, teacher_only.student, teacher_only.teacher
    assert teacher is not None
    rows = [
        {"case": "word pieces (tokenizer)", "tweets_per_s": rate(tok.encode, texts)},
        {"case": "LSTM student (tokenize + model)", "tweets_per_s": rate(lambda b: student.predict(tok.encode(b)), texts)},
        {"case": "fine-tuned teacher, int8 (tokenize + model)",
         "tweets_per_s": rate(lambda b: teacher.predict(tok.encode(b)), texts, repeat=1)},
    ]
    metrics_path = ROOT / "reports" / "metrics.json"
    quality = {c["cascade_threshold"]: c for c in json.loads(metrics_path.read_text()).get("cascade", [])} \
        if metrics_path.exists() else {}
    pareto = []
    for threshold in sorted(quality) or [0.0, default, 1.0]:
        enricher = Enricher.load(settings.models_dir, threshold)
        speed = rate(lambda b, e=enricher: e.classify(b), texts, repeat=1 if threshold >= 0.9 else 3)
        q = quality.get(threshold, {})
        pareto.append({"cascade_threshold": threshold, "tweets_per_s": round(speed),
                       "teacher_share_test": q.get("teacher_share"),
                       "sentiment": q.get("sentiment"), "topic_gold8": q.get("topic_gold8")})
    rows += [
        {"case": "clean_text (lookup lemmas)", "tweets_per_s": rate(clean_texts, texts)},
        {"case": "entities, airline rules", "tweets_per_s": rate(lambda b: extract_entities_batch(b, statistical=False), texts)},
        {"case": "entities, spaCy statistical NER + rules",
         "tweets_per_s": rate(lambda b: extract_entities_batch(b, statistical=True), texts[:1024], repeat=1)},
    ]
    serving = Enricher.load(settings.models_dir, default)
    headline = rate(serving.enrich, texts)
    rows.append({"case": f"Enricher.enrich (default: cascade {default:g}, rules NER)", "tweets_per_s": headline})
    for r in rows:
        r["tweets_per_s"] = round(r["tweets_per_s"])
    now = datetime.now(timezone.utc)
    result = {"date": now.isoformat(timespec="seconds"), "machine": describe(), "batch_size": BATCH, "tweets": len(texts),
              "model_version": serving.model_version, "rows": rows, "pareto": pareto,
              "enricher_tweets_per_s": round(headline), "load_average_after": load_average()}
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "models.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "models.md").write_text(markdown(result, default) + "\n")
    print(markdown(result, default))


def _q(entry: dict | None) -> str:
    return f"{entry['accuracy']:.3f} / {entry['macro_f1']:.3f}" if entry else "n/a"


def markdown(result: dict, default: float) -> str:
    lines = [
        "## NLP throughput and the cascade's Pareto table",
        "",
        f"- Date: {result['date']}",
        f"- Machine: {result['machine']} ({cpu_model()})",
        "- Command: `.venv/bin/python bench/bench_models.py`",
        f"- Models: `{result['model_version']}` (onnxruntime CPU); {result['tweets']} real tweets of the test split,"
        f" batches of {result['batch_size']}; best of 3 passes (1 for the slow cases).",
        f"- Load average (1/5/15 min) when it finished: {result['load_average_after']}",
        "",
        "| Step | Tweets/s |",
        "|---|---:|",
        *[f"| {r['case']} | {r['tweets_per_s']:,} |" for r in result["rows"]],
        "",
        "Pareto table: quality on the TEST split (`replyflow evaluate`, reports/metrics.json `cascade`) against",
        "speed of sentiment + topic + needs-reply (`Enricher.classify`: word pieces, student, teacher for the",
        "unsure tweets). Threshold 0 = the student alone, 1 = the teacher alone; the default is set by",
        f"`REPLYFLOW_NLP_CASCADE_THRESHOLD` (now {default:g}).",
        "",
        "| Cascade threshold | Teacher answers (test) | Tweets/s | Sentiment acc / macro-F1 | Topic gold-8 acc / macro-F1 |",
        "|---:|---:|---:|---:|---:|",
    ]
    for p in result["pareto"]:
        name = f"**{p['cascade_threshold']:g} (default)**" if p["cascade_threshold"] == default else f"{p['cascade_threshold']:g}"
        share = f"{p['teacher_share_test']:.1%}" if p["teacher_share_test"] is not None else "n/a"
        lines.append(f"| {name} | {share} | {p['tweets_per_s']:,} | {_q(p['sentiment'])} | {_q(p['topic_gold8'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
