"""``replyflow evaluate``: score the ONNX models (what serving runs) and baselines on the
TEST split, and write ``reports/``.

Sentiment is scored on all test tweets against the human labels.  Topic is scored on the
GOLD set: test negatives whose human ``negativereason`` maps to a class (``lda.GOLD_MAP``);
macro-F1 is averaged over the classes present in gold (5 of 8: the human reasons do not
cover Extra Charges, Seating Preferences, Reservation Issue; predicting those counts as an
error).  Baselines get the same split and labels; their hyper-parameter (C) is chosen on
validation.  Besides majority class, TF-IDF+LR and VADER, ``encoder_mean_lr`` (the same frozen
encoder, mean-pooled, + logistic regression) shows what the LSTM head adds.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    adjusted_mutual_info_score,
    classification_report,
    confusion_matrix,
    f1_score,
)

from replyflow.core.labels import SENTIMENT_CLASSES, TOPIC_CLASSES
from replyflow.nlp.data import data_hash, load_clean_split, load_features
from replyflow.nlp.lda import GOLD_MAP, gold_label
from replyflow.nlp.text import sentiment_texts
from replyflow.settings import Settings

log = logging.getLogger(__name__)

VADER_THRESHOLD = 0.05


def _scores(y_true: list[str], y_pred: list[str], labels: list[str]) -> dict[str, float]:
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)), 4),
    }


def _lr(x_tr: Any, y_tr: list[str], x_va: Any, y_va: list[str], x_te: Any,
        labels: list[str]) -> tuple[list[str], float]:
    """Logistic regression (balanced class weights); C picked by validation macro-F1."""
    best: tuple[float, float] = (-1.0, 1.0)
    for c in (0.3, 1.0, 3.0, 10.0):
        m = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(x_tr, y_tr)
        f1 = f1_score(y_va, m.predict(x_va), labels=labels, average="macro", zero_division=0)
        best = max(best, (f1, c))
    model = LogisticRegression(C=best[1], max_iter=3000, class_weight="balanced").fit(x_tr, y_tr)
    return list(model.predict(x_te)), best[1]


def tfidf_lr(train: tuple[list[str], list[str]], val: tuple[list[str], list[str]], test_x: list[str],
             labels: list[str]) -> tuple[list[str], float]:
    """TF-IDF (1-2 grams) + logistic regression; C picked by validation macro-F1."""
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, token_pattern=r"\S+")
    return _lr(vec.fit_transform(train[0]), train[1], vec.transform(val[0]), val[1], vec.transform(test_x), labels)


def mean_pool(hidden: np.ndarray) -> np.ndarray:
    """Mean of the encoder's hidden states over real word pieces (padding is zero: all-zero rows)."""
    h = hidden.astype(np.float32)
    real = (np.abs(h).sum(-1) > 0).astype(np.float32)
    return (h * real[..., None]).sum(1) / np.maximum(real.sum(1, keepdims=True), 1)


def encoder_lr(train: tuple[np.ndarray, list[str]], val: tuple[np.ndarray, list[str]], test_x: np.ndarray,
               labels: list[str]) -> tuple[list[str], float]:
    """The same frozen encoder, mean-pooled (a sentence embedding), + logistic regression: shows
    what the LSTM head adds on top of the pretrained representation."""
    return _lr(mean_pool(train[0]), train[1], mean_pool(val[0]), val[1], mean_pool(test_x), labels)


def vader(texts: list[str]) -> list[str]:
    """VADER compound score with the usual +-0.05 thresholds (raw text: VADER wants punctuation/case)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sia = SentimentIntensityAnalyzer()
    out = []
    for t in texts:
        c = sia.polarity_scores(t)["compound"]
        out.append("positive" if c >= VADER_THRESHOLD else "negative" if c <= -VADER_THRESHOLD else "neutral")
    return out


def _report_files(reports: Path, name: str, y_true: list[str], y_pred: list[str], labels: list[str],
                  cols: list[str], title: str) -> None:
    """classification report (.txt, .json) and confusion-matrix PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (reports / f"{name}_classification_report.txt").write_text(
        classification_report(y_true, y_pred, labels=cols, zero_division=0, digits=3)
    )
    rep = classification_report(y_true, y_pred, labels=cols, zero_division=0, output_dict=True)
    (reports / f"{name}_classification_report.json").write_text(json.dumps(rep, indent=2) + "\n")
    cm = confusion_matrix(y_true, y_pred, labels=cols)[[cols.index(lbl) for lbl in labels]]
    fig, ax = plt.subplots(figsize=(1.1 * len(cols) + 3, 0.8 * len(labels) + 2.5))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(cols)), cols, rotation=40, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(reports / f"{name}_confusion.png", dpi=110)
    plt.close(fig)


def _lda_agreement(settings: Settings, test_neg: pd.DataFrame, gold_classes: list[str]) -> dict[str, Any]:
    """Agreement of LDA topics (ours and the course project's) with the human reasons on test."""
    labels = pd.read_csv(settings.models_dir / "lda" / "labels.csv", dtype={"tweet_id": str})
    t = test_neg.merge(labels[["tweet_id", "lda_topic", "lda_class"]], on="tweet_id")
    reasoned = t[t["negativereason"].notna() & (t["negativereason"] != "Can't Tell")]
    gold = t[t["gold"].notna()]
    out: dict[str, Any] = {
        "coherence": json.loads((settings.models_dir / "lda" / "topics.json").read_text())["coherence"],
        "ami_topic_vs_negativereason_test": round(float(adjusted_mutual_info_score(
            reasoned["negativereason"], reasoned["lda_topic"])), 4),
        "named_lda_vs_gold_test": _scores(gold["gold"].tolist(), gold["lda_class"].fillna("none").tolist(),
                                          gold_classes),
    }
    course = settings.data_dir / "airline_tweets_topics_lda.csv"
    if course.exists():
        c = pd.read_csv(course, dtype={"tweet_id": str}, usecols=["tweet_id", "topic_no", "topic_desc"])
        c = c.drop_duplicates("tweet_id").assign(
            course=lambda d: d["topic_desc"].replace({"Phone and Online Booking": "Online Booking"}))
        g = gold.merge(c, on="tweet_id")
        r = reasoned.merge(c, on="tweet_id")
        out["course_project_lda_vs_gold_test"] = {
            **_scores(g["gold"].tolist(), g["course"].tolist(), gold_classes),
            "ami_vs_negativereason": round(float(adjusted_mutual_info_score(r["negativereason"], r["topic_no"])), 4),
            "n": len(g),
        }
    return out


def evaluate_all(settings: Settings) -> dict[str, Any]:
    """Write reports/metrics.json, classification reports and confusion matrices."""
    from replyflow.nlp.pipeline import Enricher

    reports = settings.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    df = load_clean_split(settings)
    tr, va, te = (df[df["split"] == s] for s in ("train", "validation", "test"))
    enricher = Enricher.load(settings.models_dir, encoder_dir=settings.encoder_dir)
    sent_labels = list(SENTIMENT_CLASSES)

    # --- sentiment -------------------------------------------------------------------
    y = te["airline_sentiment"].tolist()
    raw_te = te["text"].fillna("").tolist()
    # every test tweet classified once; the topic sets below are subsets of the test split
    classified = dict(zip(te["tweet_id"], enricher.classify(raw_te, te["clean"].tolist())))
    lstm = [classified[t]["sentiment"] for t in te["tweet_id"]]
    # TF-IDF+LR on its best input form (sentiment_text, see nlp/text.py) and on clean_text
    s_in = {n: sentiment_texts(d["text"].fillna("").tolist()) for n, d in (("tr", tr), ("va", va), ("te", te))}
    lr_pred, lr_c = tfidf_lr((s_in["tr"], tr["airline_sentiment"].tolist()),
                             (s_in["va"], va["airline_sentiment"].tolist()), s_in["te"], sent_labels)
    feats = load_features(settings, df)
    f_tr, f_va, f_te = (feats[(df["split"] == s).to_numpy()] for s in ("train", "validation", "test"))
    enc_pred, enc_c = encoder_lr((f_tr, tr["airline_sentiment"].tolist()), (f_va, va["airline_sentiment"].tolist()),
                                 f_te, sent_labels)
    lr_clean, lr_clean_c = tfidf_lr((tr["clean"].tolist(), tr["airline_sentiment"].tolist()),
                                    (va["clean"].tolist(), va["airline_sentiment"].tolist()),
                                    te["clean"].tolist(), sent_labels)
    majority = tr["airline_sentiment"].mode()[0]
    sentiment = {
        "n_test": len(te),
        "lstm_onnx": _scores(y, lstm, sent_labels),
        "majority": {**_scores(y, [majority] * len(y), sent_labels), "class": majority},
        "lstm_input": "encoder_text -> frozen all-MiniLM-L6-v2 -> BiLSTM head",
        "encoder_mean_lr": {**_scores(y, enc_pred, sent_labels), "C": enc_c,
                            "input": "mean-pooled frozen encoder output (same encoder as the LSTM)"},
        "tfidf_lr": {**_scores(y, lr_pred, sent_labels), "C": lr_c, "input": "sentiment_text"},
        "tfidf_lr_clean_text": {**_scores(y, lr_clean, sent_labels), "C": lr_clean_c, "input": "clean_text"},
        "vader": {**_scores(y, vader(te["text"].fillna("").tolist()), sent_labels),
                  "thresholds": f"compound >= {VADER_THRESHOLD} positive, <= -{VADER_THRESHOLD} negative"},
    }
    _report_files(reports, "sentiment", y, lstm, sent_labels, sent_labels, "Sentiment LSTM (ONNX), test split")

    # --- topic (gold = human reasons on the test split) --------------------------------
    labels = pd.read_csv(settings.models_dir / "lda" / "labels.csv", dtype={"tweet_id": str})
    weak = df.merge(labels[["tweet_id", "train_label"]], on="tweet_id")
    weak = weak[weak["train_label"].notna() & (weak["clean"] != "")]
    wtr, wva = weak[weak["split"] == "train"], weak[weak["split"] == "validation"]
    test_neg = te[te["airline_sentiment"] == "negative"].assign(gold=lambda d: d["negativereason"].map(gold_label))
    gold = test_neg[test_neg["gold"].notna()]
    gold_classes = [c for c in TOPIC_CLASSES if c in set(gold["gold"])]
    yg = gold["gold"].tolist()
    t_lstm = [classified[t]["topic"] for t in gold["tweet_id"]]
    t_lr, t_c = tfidf_lr((wtr["clean"].tolist(), wtr["train_label"].tolist()),
                         (wva["clean"].tolist(), wva["train_label"].tolist()), gold["clean"].tolist(),
                         list(TOPIC_CLASSES))
    row = {t: i for i, t in enumerate(df["tweet_id"])}
    pick = lambda d: feats[[row[t] for t in d["tweet_id"]]]  # noqa: E731
    t_enc, t_enc_c = encoder_lr((pick(wtr), wtr["train_label"].tolist()), (pick(wva), wva["train_label"].tolist()),
                                pick(gold), list(TOPIC_CLASSES))
    t_major = wtr["train_label"].mode()[0]
    topic = {
        "n_gold_test": len(gold),
        "gold_classes": gold_classes,
        "gold_map": GOLD_MAP,
        "macro_f1_over": "the gold classes present (predictions of other classes count as errors)",
        "lstm_onnx": _scores(yg, t_lstm, gold_classes),
        "majority": {**_scores(yg, [t_major] * len(yg), gold_classes), "class": t_major},
        "tfidf_lr": {**_scores(yg, t_lr, gold_classes), "C": t_c, "trained_on": "same weak labels as the LSTM"},
        "encoder_mean_lr": {**_scores(yg, t_enc, gold_classes), "C": t_enc_c,
                            "trained_on": "same weak labels as the LSTM"},
        "lstm_predicted_distribution_test_negatives": pd.Series(
            [classified[t]["topic"] for t in test_neg["tweet_id"]]).value_counts().to_dict(),
    }
    _report_files(reports, "topic", yg, t_lstm, gold_classes, list(TOPIC_CLASSES),
                  "Topic LSTM (ONNX) vs human-derived gold, test")

    metrics = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model_version": enricher.model_version,
        "data_sha256": data_hash(settings),
        "split": "data/splits/split.csv (test split only; tuning on validation)",
        "sentiment": sentiment,
        "topic": topic,
        "lda": _lda_agreement(settings, test_neg, gold_classes),
    }
    (reports / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log.info("sentiment %s | topic %s", sentiment["lstm_onnx"], topic["lstm_onnx"])
    return metrics
