"""``replyflow train``: reproduce every model artefact from data/.

Steps (each can be run alone with ``--only``): ``split`` (data/splits/), ``lda`` (models/lda/:
LDA model, topic naming, weak topic labels), ``sentiment`` and ``topic`` (models/<name>/:
ONNX + vocab + manifest).  Deterministic given ``settings.seed`` up to TensorFlow CPU
non-determinism in the last decimals.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import pandas as pd
from tqdm import tqdm

from replyflow.nlp.data import SPLIT_FILE, data_hash, file_sha256, load_clean_split, make_split
from replyflow.settings import SENTIMENT_CLASSES, TOPIC_CLASSES, Settings

log = logging.getLogger(__name__)

STEPS = ("split", "lda", "sentiment", "topic")


def _provenance(settings: Settings, labels: str) -> dict[str, Any]:
    return {
        "data_sha256": data_hash(settings),
        "split_sha256": file_sha256(settings.data_dir / SPLIT_FILE),
        "labels": labels,
    }


def train_sentiment(settings: Settings, df: pd.DataFrame, epochs: int) -> dict[str, Any]:
    """3-class sentiment LSTM on the human airline_sentiment labels."""
    from replyflow.nlp.lstm import LstmConfig, train_classifier

    from replyflow.nlp.text import sentiment_texts

    df = df.assign(model_text=sentiment_texts(df["text"].fillna("").tolist()))
    df = df[df["model_text"] != ""]
    tr, va = df[df["split"] == "train"], df[df["split"] == "validation"]
    return train_classifier(
        "sentiment", list(SENTIMENT_CLASSES),
        (tr["model_text"].tolist(), tr["airline_sentiment"].tolist()),
        (va["model_text"].tolist(), va["airline_sentiment"].tolist()),
        settings.models_dir / "sentiment", settings.seed, epochs,
        _provenance(settings, "airline_sentiment (human, CrowdFlower)"),
        # chosen on validation among 7 configs (docs/MODEL_CARD.md): sqrt-ish weights keep accuracy;
        # 3-seed ensemble (softmax average in one ONNX graph) chosen on validation too
        LstmConfig(max_len=36, class_weight_power=0.25, learning_rate=1e-3, batch_size=32, ensemble=3),
        input_kind="sentiment_text",
    )


def train_topic(settings: Settings, df: pd.DataFrame, epochs: int) -> dict[str, Any]:
    """8-class topic LSTM on the weak labels of models/lda/labels.csv (negative tweets)."""
    from replyflow.nlp.lstm import LstmConfig, train_classifier

    labels = pd.read_csv(settings.models_dir / "lda" / "labels.csv", dtype={"tweet_id": str})
    labels = labels[labels["train_label"].notna()][["tweet_id", "train_label"]]
    d = df.merge(labels, on="tweet_id")
    d = d[d["clean"] != ""]
    tr, va = d[d["split"] == "train"], d[d["split"] == "validation"]
    return train_classifier(
        "topic", list(TOPIC_CLASSES),
        (tr["clean"].tolist(), tr["train_label"].tolist()),
        (va["clean"].tolist(), va["train_label"].tolist()),
        settings.models_dir / "topic", settings.seed, epochs,
        _provenance(settings, "weak: human negativereason mapping + keyword rules + named LDA topics "
                    "(see models/lda/topics.json, docs/MODEL_CARD.md)"),
        # base config chosen on validation (weak labels) among 7 configs; embedding skip path + 3-seed
        # ensemble chosen on VALIDATION gold macro-F1 (docs/MODEL_CARD.md)
        LstmConfig(max_len=20, class_weight_power=0.5, learning_rate=2e-3, batch_size=32, lstm_units=32,
                   embed_dim=100, dropout=0.5, embed_skip=True, ensemble=3),
    )


def train_all(settings: Settings, only: list[str] | None = None, epochs: int = 15) -> dict[str, Any]:
    """Run the requested steps in order; returns what each step reported."""
    steps = [s for s in STEPS if not only or s in only]
    unknown = set(only or []) - set(STEPS)
    if unknown:
        raise ValueError(f"unknown training steps {sorted(unknown)}; choose from {STEPS}")
    results: dict[str, Any] = {}
    df: pd.DataFrame | None = None
    for step in tqdm(steps, desc="replyflow train", unit="step", file=sys.stderr):
        log.info("training step: %s", step)
        if step == "split":
            results["split"] = len(make_split(settings))
            continue
        if df is None:
            df = load_clean_split(settings)
        if step == "lda":
            from replyflow.nlp.lda import build_labels

            results["lda"] = build_labels(df, settings.seed, settings.models_dir / "lda")
        elif step == "sentiment":
            results["sentiment"] = train_sentiment(settings, df, epochs)
        elif step == "topic":
            results["topic"] = train_topic(settings, df, epochs)
    return results
