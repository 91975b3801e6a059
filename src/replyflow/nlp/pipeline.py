"""The serving interface: :class:`Enricher` turns raw tweet texts into enrichment dicts.

Used by the Spark job (once per Python worker via :func:`get_enricher`) and the reply
service.  Only onnxruntime and spaCy are loaded: no TensorFlow at serving time.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from replyflow.nlp.models import OnnxClassifier
from replyflow.nlp.ner import extract_entities_batch
from replyflow.nlp.text import PREPROCESSING_VERSION, clean_texts

log = logging.getLogger(__name__)

#: what a text with no usable words (empty, only a URL/mention) gets: neutral, with the
#: uniform probability as its score so every confidence threshold treats it as "unsure"
BLANK_SENTIMENT = "neutral"
BLANK_TOPIC = "Customer Experience"


class Enricher:
    """Sentiment + topic (ONNX LSTMs) + entities (spaCy + rules) for batches of tweets."""

    model_version: str

    def __init__(self, sentiment: OnnxClassifier, topic: OnnxClassifier, batch_size: int = 256) -> None:
        self.sentiment = sentiment
        self.topic = topic
        self.batch_size = batch_size
        self.model_version = f"sent-{sentiment.hash8}+topic-{topic.hash8}+prep-{PREPROCESSING_VERSION}"

    @classmethod
    def load(cls, models_dir: Path, batch_size: int = 256, threads: int | None = None) -> "Enricher":
        """Load ``models_dir/sentiment`` and ``models_dir/topic`` (ONNX + vocab + manifest)."""
        models_dir = Path(models_dir)
        enricher = cls(
            OnnxClassifier.load(models_dir / "sentiment", threads),
            OnnxClassifier.load(models_dir / "topic", threads),
            batch_size=batch_size,
        )
        log.info("loaded enricher %s from %s", enricher.model_version, models_dir)
        return enricher

    def classify(self, texts: list[str], cleaned: list[str] | None = None) -> list[dict[str, Any]]:
        """Sentiment and topic (no NER) of raw texts; ``cleaned`` = their :func:`clean_texts`
        if already computed.  Used by evaluation too, so it scores exactly what serving runs."""
        if cleaned is None:
            cleaned = clean_texts(texts, batch_size=self.batch_size)
        out: list[dict[str, Any]] = [{} for _ in texts]
        for model, key in ((self.sentiment, "sentiment"), (self.topic, "topic")):
            inputs = model.inputs(texts, cleaned)
            probs = model.predict_proba(inputs, self.batch_size)
            blank = BLANK_SENTIMENT if key == "sentiment" else BLANK_TOPIC
            for i, text in enumerate(inputs):
                if not text or not cleaned[i]:
                    # nothing to classify: uniform probability, so every threshold says "unsure"
                    out[i][key], out[i][f"{key}_score"] = blank, round(1 / len(model.classes), 4)
                else:
                    k = int(np.argmax(probs[i]))
                    out[i][key], out[i][f"{key}_score"] = model.classes[k], float(probs[i, k])
        return out

    def enrich(self, texts: list[str]) -> list[dict[str, Any]]:
        """One dict per text, same order: clean_text, sentiment, sentiment_score, topic,
        topic_score, entities (list of {text, label, start, end}; offsets into the raw text)."""
        texts = ["" if t is None else str(t) for t in texts]
        if not texts:
            return []
        cleaned = clean_texts(texts, batch_size=self.batch_size)
        results = self.classify(texts, cleaned)
        entities = extract_entities_batch(texts, batch_size=self.batch_size)
        for r, c, e in zip(results, cleaned, entities):
            r["clean_text"] = c
            r["entities"] = e
        return [
            {k: r[k] for k in ("clean_text", "sentiment", "sentiment_score", "topic", "topic_score", "entities")}
            for r in results
        ]


_cache: dict[Path, Enricher] = {}
_cache_lock = threading.Lock()


def get_enricher(models_dir: Path) -> Enricher:
    """Process-level cache: the models are loaded once per Python worker and reused."""
    key = Path(models_dir).resolve()
    with _cache_lock:
        if key not in _cache:
            _cache[key] = Enricher.load(key)
        return _cache[key]
