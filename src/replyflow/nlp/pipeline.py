"""The serving interface: :class:`Enricher` turns raw tweet texts into enrichment dicts.

Used by the Spark job (once per Python worker via :func:`get_enricher`) and by evaluation.
Per batch: word pieces once; the LSTM student on every tweet; the fine-tuned teacher only on the
tweets where the student is unsure (the cascade: the calibrated confidence of the sentiment or of the
needs-reply decision below ``cascade_threshold``); ``clean_text`` from the lookup lemmatizer; entities from the airline rules
(spaCy's statistical NER costs more than everything else together, so it is off unless asked for:
see :mod:`replyflow.nlp.ner`).  Only onnxruntime, numpy and tokenizers: no TensorFlow at serving.

``cascade_threshold``: 0 = the student alone, 1 = the teacher alone; always passed in, so its one
default is ``settings.nlp_cascade_threshold`` (docs/MODEL_CARD.md has the table it was chosen from).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from replyflow.nlp.models import TOKENIZER_FILE, OnnxModel, WordPieces
from replyflow.nlp.ner import extract_entities_batch
from replyflow.nlp.tasks import NEEDS_REPLY, NO_TOPIC, SENTIMENT, TOPIC
from replyflow.nlp.text import PREPROCESSING_VERSION, clean_texts

log = logging.getLogger(__name__)

#: the tasks whose confidence decides the cascade: the topic is left out on purpose (nine classes: its top
#: probability is often low; an unsure topic only makes the reply use the general body, which is safe)
CASCADE_TASKS = (SENTIMENT, NEEDS_REPLY)


def confidence(probs: dict[str, np.ndarray]) -> np.ndarray:
    """Per tweet, the lower of the sentiment's and the needs-reply decision's top probabilities."""
    return np.min(np.stack([probs[t.name].max(axis=1) for t in CASCADE_TASKS]), axis=0)


class Enricher:
    """Sentiment, topic and needs-reply (student, teacher for the unsure) + clean text + entities."""

    model_version: str

    def __init__(self, tokenizer: WordPieces, student: OnnxModel, teacher: OnnxModel | None,
                 cascade_threshold: float, spacy_ner: bool = False) -> None:
        self.tokenizer = tokenizer
        self.student = student
        self.teacher = teacher
        self.cascade_threshold = cascade_threshold if teacher is not None else 0.0
        self.spacy_ner = spacy_ner
        teacher_part = (f"+teacher-{teacher.hash8}{'-int8' if teacher.int8 else ''}@{self.cascade_threshold:g}"
                        if teacher is not None else "")
        self.model_version = f"student-{student.hash8}{teacher_part}+prep-{PREPROCESSING_VERSION}"
        self.teacher_rows = 0  # how many tweets the teacher answered (benchmarks, metrics)

    @classmethod
    def load(cls, models_dir: Path, cascade_threshold: float, threads: int = 0,
             spacy_ner: bool = False) -> Enricher:
        """``models_dir/tokenizer.json``, ``student/`` and, when the cascade is on, ``teacher/``."""
        models_dir = Path(models_dir)
        tokenizer = WordPieces(models_dir / TOKENIZER_FILE)
        student = OnnxModel.load(models_dir / "student", tokenizer, threads)
        teacher = OnnxModel.load(models_dir / "teacher", tokenizer, threads, int8=True) if cascade_threshold > 0 else None
        enricher = cls(tokenizer, student, teacher, cascade_threshold, spacy_ner)
        log.info("loaded enricher %s from %s", enricher.model_version, models_dir)
        return enricher

    def probabilities(self, texts: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Calibrated probabilities per task for raw texts, and which rows the teacher answered."""
        pieces = self.tokenizer.encode(texts)
        probs = self.student.predict(pieces)
        escalate = np.zeros(len(texts), dtype=bool)
        if self.teacher is not None and len(texts):
            escalate = confidence(probs) < self.cascade_threshold
            rows = np.nonzero(escalate)[0]
            if len(rows):
                better = self.teacher.predict([pieces[i] for i in rows])
                for name in probs:
                    probs[name][rows] = better[name]
                self.teacher_rows += len(rows)
        return probs, escalate

    def classify(self, texts: list[str]) -> list[dict[str, Any]]:
        """sentiment, sentiment_score, topic (None for ``none``), topic_score, needs_reply_score per text.
        Evaluation calls this too, so it scores exactly what serving runs."""
        probs, _ = self.probabilities(texts)
        sentiment, topic = probs[SENTIMENT.name], probs[TOPIC.name]
        s_idx, t_idx = sentiment.argmax(1), topic.argmax(1)
        need = probs[NEEDS_REPLY.name][:, NEEDS_REPLY.classes.index("yes")]
        out = []
        for i in range(len(texts)):
            label = TOPIC.classes[t_idx[i]]
            out.append({
                "sentiment": SENTIMENT.classes[s_idx[i]], "sentiment_score": float(sentiment[i, s_idx[i]]),
                "topic": None if label == NO_TOPIC else label, "topic_score": float(topic[i, t_idx[i]]),
                "needs_reply_score": float(need[i]),
            })  # fmt: skip
        return out

    def enrich(self, texts: list[str]) -> list[dict[str, Any]]:
        """One dict per text, same order: clean_text, sentiment, sentiment_score, topic, topic_score,
        needs_reply_score, entities (list of {text, label, start, end}; offsets into the raw text)."""
        texts = ["" if t is None else str(t) for t in texts]
        if not texts:
            return []
        results = self.classify(texts)
        entities = extract_entities_batch(texts, statistical=self.spacy_ner)
        for result, cleaned, found in zip(results, clean_texts(texts), entities):
            result["clean_text"] = cleaned
            result["entities"] = found
        return results


_cache: dict[tuple[Path, float, int], Enricher] = {}
_cache_lock = threading.Lock()


def get_enricher(models_dir: Path, cascade_threshold: float, threads: int = 0) -> Enricher:
    """Process-level cache: the models are loaded once per Python worker and reused.  ``threads``:
    onnxruntime's threads (0: every core; Spark runs one Python worker per core, so it asks for 1)."""
    key = (Path(models_dir).resolve(), float(cascade_threshold), int(threads))
    with _cache_lock:
        if key not in _cache:
            _cache[key] = Enricher.load(key[0], key[1], threads=key[2])
        return _cache[key]
