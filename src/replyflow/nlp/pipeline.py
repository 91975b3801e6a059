"""The serving interface: :class:`Enricher` turns raw tweet texts into enrichment dicts.

Used by the Spark job (once per Python worker via :func:`get_enricher`) and evaluation.
Only onnxruntime, tokenizers and spaCy are loaded: no TensorFlow, no PyTorch at serving time.

Per batch: spaCy cleaning (``clean_text`` column, NER), ONE pass of the frozen pretrained
encoder over :func:`encoder_text`, then the two small LSTM heads on its output.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from replyflow.nlp.encoder import TextEncoder, get_encoder
from replyflow.nlp.heads import OnnxClassifier
from replyflow.nlp.ner import extract_entities_batch
from replyflow.nlp.text import PREPROCESSING_VERSION, clean_texts, encoder_texts

log = logging.getLogger(__name__)

#: what a text with no usable words (empty, only a URL/mention) gets: neutral, with the
#: uniform probability as its score so every confidence threshold treats it as "unsure"
BLANK_SENTIMENT = "neutral"
BLANK_TOPIC = "Customer Experience"
#: texts per encoder run (grouped by length): on 2 cores 348 tweets/s at 32, 310 at 16, 333 at 64, 252 at 256
ENCODER_BATCH = 32


class Enricher:
    """Sentiment + topic (encoder + ONNX LSTM heads) + entities (spaCy + rules) for batches of tweets."""

    model_version: str

    def __init__(self, sentiment: OnnxClassifier, topic: OnnxClassifier, encoder: TextEncoder,
                 batch_size: int = 256) -> None:
        for head in (sentiment, topic):
            if head.encoder_sha256 != encoder.sha256:
                raise RuntimeError(
                    f"the {head.name} model was trained on encoder {head.encoder_sha256}, "
                    f"the loaded encoder is {encoder.sha256}: retrain with `replyflow train`"
                )
        self.sentiment = sentiment
        self.topic = topic
        self.encoder = encoder
        self.batch_size = batch_size
        self.model_version = (f"sent-{sentiment.hash8}+topic-{topic.hash8}+enc-{encoder.hash8}"
                              f"+prep-{PREPROCESSING_VERSION}")

    @classmethod
    def load(cls, models_dir: Path, batch_size: int = 256, encoder_dir: Path | None = None) -> "Enricher":
        """Load ``models_dir/sentiment`` and ``models_dir/topic`` (ONNX + manifest) and the encoder
        (``encoder_dir``, else the installed package; one per process)."""
        models_dir = Path(models_dir)
        enricher = cls(
            OnnxClassifier.load(models_dir / "sentiment"),
            OnnxClassifier.load(models_dir / "topic"),
            get_encoder(encoder_dir),
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
        inputs = encoder_texts(texts)
        hidden, _ = self.encoder.encode(inputs, ENCODER_BATCH)
        for model, key in ((self.sentiment, "sentiment"), (self.topic, "topic")):
            probs = model.predict_proba(hidden, self.batch_size)
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


_cache: dict[tuple[Path, Path | None], Enricher] = {}
_cache_lock = threading.Lock()


def get_enricher(models_dir: Path, encoder_dir: Path | None = None) -> Enricher:
    """Process-level cache: the models are loaded once per Python worker and reused.

    ``encoder_dir`` is the encoder folder the caller was configured with (None: the installed
    package); Spark workers get it inside the job's picklable enrich function, not from the
    environment."""
    key = (Path(models_dir).resolve(), Path(encoder_dir).resolve() if encoder_dir else None)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = Enricher.load(key[0], encoder_dir=key[1])
        return _cache[key]
