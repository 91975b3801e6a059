"""``replyflow evaluate``: score what serving runs on the TEST split and on the out-of-time 2021 set.

Everything was chosen on validation (hyper-parameters, temperatures, the policy's thresholds, the
cascade's default); this reads test once and writes ``reports/``:

* sentiment: the serving configuration against the dataset's human labels, per class, with
  baselines (majority, VADER, TF-IDF + LR); positive precision/recall on test and on the 2021 set
  (the praise-scored-negative bias);
* topic: the gold 8-class macro-F1 (docs/LABELING.md) on test and on the 2021 set, with the
  TF-IDF baseline trained on the same gold labels and LDA's agreement with the gold;
* the cascade: quality of the student alone, the teacher alone and the cascade at several
  thresholds (the accuracy half of the Pareto table; bench/bench_models.py measures the speed half);
* the reply policy judged by what customers receive (:mod:`replyflow.nlp.policy_eval`);
* calibration: reliability before and after temperature scaling; the annotations' agreement.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from replyflow.core.addressing import KNOWN_AIRLINE_HANDLES, is_addressed
from replyflow.core.labels import SENTIMENT_CLASSES, TOPIC_CLASSES
from replyflow.core.policy import PolicyConfig
from replyflow.nlp import figures
from replyflow.nlp.annotations import agreement, live_texts, load_all, load_live_validation
from replyflow.nlp.baselines import majority, tfidf_lr, vader
from replyflow.nlp.calibration import reliability
from replyflow.nlp.data import data_hash, load_labelled
from replyflow.nlp.models import OnnxModel
from replyflow.nlp.pipeline import Enricher, confidence
from replyflow.nlp.policy_eval import coverage_curve, evaluate_policy
from replyflow.nlp.tasks import NO_TOPIC, SENTIMENT, TASKS, TOPIC
from replyflow.nlp.text import clean_texts, sentiment_texts
from replyflow.settings import Settings

log = logging.getLogger(__name__)

CASCADE_THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
GOLD8 = list(TOPIC_CLASSES)


def scores(y_true: list[str], y_pred: list[str], labels: list[str]) -> dict[str, float]:
    return {
        "n": len(y_true),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4) if y_true else 0.0,
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)), 4),
    }


def gold8(frame: pd.DataFrame, predicted: list[str]) -> dict[str, float]:
    """Rows whose gold topic is one of the 8 classes; a predicted ``none`` counts as an error."""
    keep = (frame["topic"] != NO_TOPIC).to_numpy()
    return scores(frame["topic"][keep].tolist(), [p for p, k in zip(predicted, keep) if k], GOLD8)


def _labels(probs: dict[str, np.ndarray], task: Any) -> list[str]:
    return [task.classes[i] for i in probs[task.name].argmax(1)]


def cascade(student: dict[str, np.ndarray], teacher: dict[str, np.ndarray], threshold: float) -> tuple[dict, float]:
    """The cascade's answers at ``threshold`` and the share of rows the teacher answered."""
    escalate = confidence(student) < threshold
    return {k: np.where(escalate[:, None], teacher[k], student[k]) for k in student}, float(escalate.mean())


def evaluate_all(settings: Settings) -> dict[str, Any]:
    """Write reports/metrics.json and the report files; returns the metrics."""
    reports = settings.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    df = load_labelled(settings)
    airline, live, second = load_all(settings.data_dir, df[["tweet_id", "split"]])
    texts_2021 = live_texts(settings.data_dir)
    live = live.merge(texts_2021, on="tweet_id")
    tr, va, te = (df[df["split"] == s].reset_index(drop=True) for s in ("train", "validation", "test"))
    te_gold = te[te["topic"].notna()].reset_index(drop=True)
    policy = PolicyConfig.from_settings(settings.model_copy(update={"our_handles": sorted(KNOWN_AIRLINE_HANDLES)}))

    # --- what serving runs ------------------------------------------------------------
    enricher = Enricher.load(settings.models_dir, settings.nlp_cascade_threshold)
    served_test = enricher.classify(te["text"].tolist())
    served_live = enricher.classify(live["text"].tolist())
    y = te["airline_sentiment"].tolist()
    serving = scores(y, [p["sentiment"] for p in served_test], list(SENTIMENT_CLASSES))
    figures.classification_files(reports, "sentiment", y, [p["sentiment"] for p in served_test], list(SENTIMENT_CLASSES),
                                 list(SENTIMENT_CLASSES), f"Sentiment (serving: {enricher.model_version}), test split")

    # --- the cascade: student, teacher and thresholds in between (same rows) -----------
    # the serving enricher's own models (loading the teacher again would quantize it again); the teacher is
    # loaded here only when the cascade is off
    tokenizer, student_model = enricher.tokenizer, enricher.student
    teacher_model = enricher.teacher or OnnxModel.load(settings.models_dir / "teacher", tokenizer, int8=True)
    pieces = tokenizer.encode(te["text"].tolist())
    student, teacher = student_model.predict(pieces), teacher_model.predict(pieces)
    topic_rows = te["topic"].notna().to_numpy()
    pareto = []
    for threshold in CASCADE_THRESHOLDS:
        probs, share = cascade(student, teacher, threshold)
        topics = _labels(probs, TOPIC)
        pareto.append({
            "cascade_threshold": threshold, "teacher_share": round(share, 4),
            "sentiment": scores(y, _labels(probs, SENTIMENT), list(SENTIMENT_CLASSES)),
            "topic_gold8": gold8(te_gold, [t for t, keep in zip(topics, topic_rows) if keep]),
        })  # fmt: skip

    # --- baselines ----------------------------------------------------------------------
    (lr_test, lr_live), lr_c = tfidf_lr(
        (sentiment_texts(tr["text"].tolist()), tr["airline_sentiment"].tolist()),
        (sentiment_texts(va["text"].tolist()), va["airline_sentiment"].tolist()),
        [sentiment_texts(te["text"].tolist()), sentiment_texts(live["text"].tolist())], list(SENTIMENT_CLASSES))
    sentiment = {
        "n_test": len(te),
        "serving": {k: serving[k] for k in ("accuracy", "macro_f1")},
        "serving_model": enricher.model_version,
        "per_class": _per_class(y, [p["sentiment"] for p in served_test], list(SENTIMENT_CLASSES)),
        "positive_test": _positive(y, [p["sentiment"] for p in served_test]),
        "positive_live2021": _positive(live["sentiment"].tolist(), [p["sentiment"] for p in served_live]),
        "baselines": {
            "majority": scores(y, [majority(tr["airline_sentiment"].tolist())] * len(y), list(SENTIMENT_CLASSES)),
            "vader": scores(y, vader(te["text"].tolist()), list(SENTIMENT_CLASSES)),
            "tfidf_lr": {**scores(y, lr_test, list(SENTIMENT_CLASSES)), "C": lr_c},
        },
        "baselines_positive_live2021": {"tfidf_lr": _positive(live["sentiment"].tolist(), lr_live)},
    }

    # --- topic (gold annotations) --------------------------------------------------------
    tr_gold, va_gold = (d[d["topic"].notna()] for d in (tr, va))
    (t_lr_test, t_lr_live), t_c = tfidf_lr(
        (clean_texts(tr_gold["text"].tolist()), tr_gold["topic"].tolist()),
        (clean_texts(va_gold["text"].tolist()), va_gold["topic"].tolist()),
        [clean_texts(te_gold["text"].tolist()), clean_texts(live["text"].tolist())], GOLD8)
    served_topics = [p["topic"] or NO_TOPIC for p, keep in zip(served_test, topic_rows) if keep]
    live_topics = [p["topic"] or NO_TOPIC for p in served_live]
    topic = {
        "gold8_test": gold8(te_gold, served_topics),
        "live2021": gold8(live, live_topics),
        "all9_test_accuracy": round(float(accuracy_score(te_gold["topic"], served_topics)), 4),
        "per_class_test": _per_class(te_gold["topic"].tolist(), served_topics, list(TOPIC.classes)),
        "baselines": {
            "tfidf_lr_gold": {**gold8(te_gold, t_lr_test), "C": t_c, "live2021": gold8(live, t_lr_live)},
            "majority": gold8(te_gold, [majority(tr_gold["topic"].tolist())] * len(te_gold)),
            "lda_named": _lda_vs_gold(settings, te_gold),
        },
    }
    keep8 = te_gold["topic"] != NO_TOPIC
    figures.classification_files(reports, "topic", te_gold["topic"][keep8].tolist(),
                                 [p for p, k in zip(served_topics, keep8) if k], GOLD8, list(TOPIC.classes),
                                 "Topic (serving) vs gold annotations, test split")

    # --- the reply policy ------------------------------------------------------------------
    test_rows = te_gold.assign(author_handle=te_gold["name"]).to_dict("records")
    test_preds = [p for p, keep in zip(served_test, topic_rows) if keep]
    live_rows = live.assign(author_handle="someone").to_dict("records")
    # validation only: where the thresholds and the addressing rules were chosen
    live_val = load_live_validation(settings.data_dir, live).merge(texts_2021, on="tweet_id")
    live_val_rows = live_val.assign(author_handle="someone").to_dict("records")
    policy_metrics = {
        "thresholds": {"reply_min_needs_reply": policy.reply_min_needs_reply,
                       "reply_min_topic_confidence": policy.reply_min_topic_confidence,
                       "reply_ticket_min_needs_reply": policy.reply_ticket_min_needs_reply},
        "our_handles": "core.addressing.KNOWN_AIRLINE_HANDLES",
        "test": evaluate_policy(test_rows, test_preds, policy).as_dict(),
        "live2021": evaluate_policy(live_rows, served_live, policy).as_dict(),
        "live2021_validation": evaluate_policy(live_val_rows, enricher.classify(live_val["text"].tolist()), policy).as_dict(),
    }
    addressing = {name: _addressing(frame) for name, frame in
                  (("validation", va_gold), ("live2021_validation", live_val), ("test", te_gold), ("live2021", live))}
    figures.policy_curve_figure(reports / "policy_coverage.png", {
        "test": coverage_curve(test_rows, test_preds, policy),
        "2021 set": coverage_curve(live_rows, served_live, policy)}, policy.reply_min_needs_reply)

    # --- calibration ------------------------------------------------------------------------
    calibration = _calibration(reports, student_model, teacher_model, pieces, te)

    metrics = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model_version": enricher.model_version,
        "data_sha256": data_hash(settings),
        "split": "data/splits/split.csv (test split and the 2021 set read once; everything chosen on validation)",
        "sentiment": sentiment,
        "topic": topic,
        "policy": policy_metrics,
        "addressing": addressing,
        "cascade": pareto,
        "calibration": calibration,
        "annotations": {"rows": len(airline) + len(live), **agreement(airline, live, second),
                        "negativereason_consistency": _reason_consistency(df)},
    }
    (reports / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log.info("sentiment %s | topic %s | policy %s", sentiment["serving"], topic["gold8_test"], policy_metrics["test"])
    return metrics


def _addressing(frame: pd.DataFrame) -> dict[str, Any]:
    """``core.addressing.is_addressed`` (all known airline handles as ours) against the gold ``addressed``."""
    gold = (frame["addressed"] == "1").to_numpy()
    rule = np.array([is_addressed(t, KNOWN_AIRLINE_HANDLES) for t in frame["text"]])
    return {"n": len(frame), "accuracy": round(float((gold == rule).mean()), 4),
            "false_addressed": int((rule & ~gold).sum()), "missed_addressed": int((~rule & gold).sum())}


def _per_class(y_true: list[str], y_pred: list[str], labels: list[str]) -> dict[str, dict[str, float]]:
    p = precision_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    r = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    f = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {c: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4), "f1": round(float(f[i]), 4),
                "support": int(sum(t == c for t in y_true))} for i, c in enumerate(labels)}


def _positive(y_true: list[str], y_pred: list[str]) -> dict[str, float]:
    """Precision and recall of the positive class, and how many gold positives were called negative."""
    pos = [t == "positive" for t in y_true]
    called_negative = sum(1 for t, p in zip(y_true, y_pred) if t == "positive" and p == "negative")
    return {
        "precision": round(float(precision_score(y_true, y_pred, labels=["positive"], average="micro", zero_division=0)), 4),
        "recall": round(float(recall_score(y_true, y_pred, labels=["positive"], average="micro", zero_division=0)), 4),
        "gold_positive": int(sum(pos)),
        "positive_called_negative": int(called_negative),
    }


def _calibration(reports: Any, student: OnnxModel, teacher: OnnxModel, pieces: list[np.ndarray],
                 te: pd.DataFrame) -> dict[str, Any]:
    from replyflow.nlp.teacher import label_matrix

    labels = label_matrix(te.rename(columns={"airline_sentiment": "sentiment"}).assign(
        airline_sentiment=te["airline_sentiment"]))
    out: dict[str, Any] = {}
    curves: dict[str, dict[str, dict[str, Any]]] = {}
    for model in (student, teacher):
        raw = model.predict(pieces) if not model.temperatures else _uncalibrated(model, pieces)
        calibrated = model.predict(pieces)
        for j, task in enumerate(TASKS):
            before, after = reliability(raw[task.name], labels[:, j]), reliability(calibrated[task.name], labels[:, j])
            out[f"{model.name}.{task.name}"] = {"temperature": model.temperatures.get(task.name, 1.0),
                                               "ece_before": before["ece"], "ece_after": after["ece"]}
            if model is student:
                curves[task.name] = {"student, raw": before, "student, calibrated": after}
    figures.reliability_figure(reports / "calibration.png", curves)
    return out


def _uncalibrated(model: OnnxModel, pieces: list[np.ndarray]) -> dict[str, np.ndarray]:
    saved = model.manifest.get("temperatures")
    model.manifest["temperatures"] = {}
    try:
        return model.predict(pieces)
    finally:
        model.manifest["temperatures"] = saved


def _lda_vs_gold(settings: Settings, te_gold: pd.DataFrame) -> dict[str, Any]:
    """The named LDA topics (the exploration that named the taxonomy) against the gold topics."""
    path = settings.models_dir / "lda" / "labels.csv"
    if not path.exists():
        return {}
    labels = pd.read_csv(path, dtype={"tweet_id": str})
    both = te_gold.merge(labels[["tweet_id", "lda_class"]], on="tweet_id")
    return {**gold8(both, both["lda_class"].fillna(NO_TOPIC).tolist()),
            "scope": "test tweets the LDA labelled (negatives only)"}


def _reason_consistency(df: pd.DataFrame) -> dict[str, Any]:
    """How often the dataset's human negativereason agrees with the gold topic (where one implies the other)."""
    from replyflow.nlp.lda import GOLD_MAP

    rows = df[df["topic"].notna() & df["negativereason"].isin(list(GOLD_MAP))]
    per_reason = {}
    for reason, group in rows.groupby("negativereason"):
        per_reason[reason] = {"n": len(group), "expected_topic": GOLD_MAP[reason],
                              "agree": round(float((group["topic"] == GOLD_MAP[reason]).mean()), 3)}
    total = float((rows["topic"] == rows["negativereason"].map(GOLD_MAP)).mean()) if len(rows) else 0.0
    return {"overall": round(total, 3), "per_reason": per_reason}
