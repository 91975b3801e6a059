"""``replyflow train``: reproduce every model artefact from data/.

Steps (each can be run alone with ``--only``): ``split`` (data/splits/), ``lda`` (models/lda/:
LDA model, topic naming, weak topic labels), ``sentiment`` and ``topic`` (models/<name>/: ONNX
LSTM head + manifest, trained on the frozen encoder's output, which is computed once for both).
Deterministic given ``settings.seed`` up to TensorFlow CPU non-determinism in the last decimals.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import track

from replyflow.core.files import file_sha256
from replyflow.core.labels import SENTIMENT_CLASSES, TOPIC_CLASSES
from replyflow.nlp.data import SPLIT_FILE, data_hash, load_clean_split, make_split
from replyflow.settings import Settings

log = logging.getLogger(__name__)

STEPS = ("split", "lda", "sentiment", "topic")


def _provenance(settings: Settings, labels: str) -> dict[str, Any]:
    """What a manifest records about where a head comes from: data, split, labels, encoder."""
    from replyflow.nlp.encoder import get_encoder

    return {
        "data_sha256": data_hash(settings),
        "split_sha256": file_sha256(settings.data_dir / SPLIT_FILE),
        "labels": labels,
        "encoder": get_encoder(settings.encoder_dir).describe(),
    }


def train_sentiment(settings: Settings, df: pd.DataFrame, feats: np.ndarray, epochs: int) -> dict[str, Any]:
    """3-class sentiment head on the human airline_sentiment labels (``feats`` row-aligned with ``df``)."""
    from replyflow.nlp.lstm import LstmConfig, train_classifier

    tr, va = (df["split"] == "train").to_numpy(), (df["split"] == "validation").to_numpy()
    return train_classifier(
        "sentiment", list(SENTIMENT_CLASSES),
        (feats[tr], df.loc[tr, "airline_sentiment"].tolist()),
        (feats[va], df.loc[va, "airline_sentiment"].tolist()),
        settings.models_dir / "sentiment", settings.seed, epochs,
        _provenance(settings, "airline_sentiment (human, CrowdFlower)"),
        # config (one candidate, validation only) and 3-seed ensemble: docs/MODEL_CARD.md
        LstmConfig(lstm_units=64, dropout=0.3, learning_rate=1e-3, class_weight_power=0.25, ensemble=3),
    )


def train_topic(settings: Settings, df: pd.DataFrame, feats: np.ndarray, epochs: int) -> dict[str, Any]:
    """8-class topic head on the weak labels of models/lda/labels.csv (negative tweets)."""
    from replyflow.nlp.lstm import LstmConfig, train_classifier

    labels = pd.read_csv(settings.models_dir / "lda" / "labels.csv", dtype={"tweet_id": str})
    labels = labels[labels["train_label"].notna()].set_index("tweet_id")["train_label"]
    label = df["tweet_id"].map(labels)
    # tweets with no words left after cleaning get the blank rule at serving, not the model
    usable = (label.notna() & (df["clean"] != "")).to_numpy()
    tr = usable & (df["split"] == "train").to_numpy()
    va = usable & (df["split"] == "validation").to_numpy()
    return train_classifier(
        "topic", list(TOPIC_CLASSES),
        (feats[tr], label[tr].tolist()),
        (feats[va], label[va].tolist()),
        settings.models_dir / "topic", settings.seed, epochs,
        _provenance(settings, "weak: human negativereason mapping + keyword rules + named LDA topics "
                    "(see models/lda/topics.json, docs/MODEL_CARD.md)"),
        # config (one candidate, validation gold) and 3-seed ensemble: docs/MODEL_CARD.md
        LstmConfig(lstm_units=32, dropout=0.5, learning_rate=1e-3, class_weight_power=0.5, ensemble=3),
    )


def train_all(settings: Settings, only: list[str] | None = None, epochs: int = 15) -> dict[str, Any]:
    """Run the requested steps in order; returns what each step reported."""
    steps = [s for s in STEPS if not only or s in only]
    unknown = set(only or []) - set(STEPS)
    if unknown:
        raise ValueError(f"unknown training steps {sorted(unknown)}; choose from {STEPS}")
    results: dict[str, Any] = {}
    df: pd.DataFrame | None = None
    feats: np.ndarray | None = None
    for step in track(steps, description="replyflow train", console=Console(stderr=True)):
        log.info("training step: %s", step)
        if step == "split":
            results["split"] = len(make_split(settings))
            continue
        if df is None:
            df = load_clean_split(settings)
        if step == "lda":
            from replyflow.nlp.lda import build_labels

            results["lda"] = build_labels(df, settings.seed, settings.models_dir / "lda")
        else:
            if feats is None:
                from replyflow.nlp.data import load_features

                feats = load_features(settings, df)
            trainer = train_sentiment if step == "sentiment" else train_topic
            results[step] = trainer(settings, df, feats, epochs)
    return results
