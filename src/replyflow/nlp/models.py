"""ONNX text classifiers for serving: onnxruntime + numpy only, never TensorFlow.

A model directory ``models/<name>/`` holds ``model.onnx``, ``vocab.json`` (token -> id;
0 = padding, 1 = out-of-vocabulary) and ``manifest.json`` (label order, max length,
padding side, preprocessing version, data hash, metrics).  The encoding below is the
one used in training (``replyflow.nlp.train`` imports it), so train == serve.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from replyflow.nlp.text import PREPROCESSING_VERSION, sentiment_texts

log = logging.getLogger(__name__)

PAD, OOV = 0, 1
MANIFEST = "manifest.json"
VOCAB = "vocab.json"
ONNX_FILE = "model.onnx"


def encode(clean_texts: list[str], vocab: dict[str, int], max_len: int) -> np.ndarray:
    """Token ids, truncated to the first ``max_len`` tokens and padded at the FRONT
    (the LSTM then reads the real tokens last)."""
    out = np.zeros((len(clean_texts), max_len), dtype=np.int32)
    for i, text in enumerate(clean_texts):
        ids = [vocab.get(t, OOV) for t in text.split()][:max_len]
        if ids:
            out[i, max_len - len(ids):] = ids
    return out


def file_hash8(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


@dataclass
class OnnxClassifier:
    """One exported LSTM classifier with its vocabulary and label order."""

    name: str
    classes: list[str]
    vocab: dict[str, int]
    max_len: int
    session: Any
    input_name: str
    hash8: str
    manifest: dict[str, Any]
    input_kind: str = "clean_text"

    @classmethod
    def load(cls, model_dir: Path, threads: int | None = None) -> "OnnxClassifier":
        import onnxruntime as ort

        manifest = json.loads((model_dir / MANIFEST).read_text())
        if manifest.get("preprocessing_version") != PREPROCESSING_VERSION:
            raise RuntimeError(
                f"{model_dir} was trained with preprocessing v{manifest.get('preprocessing_version')}, "
                f"this code has v{PREPROCESSING_VERSION}: retrain with `replyflow train`"
            )
        vocab = json.loads((model_dir / VOCAB).read_text())
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        onnx_path = model_dir / ONNX_FILE
        session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        return cls(
            name=manifest["name"], classes=list(manifest["classes"]), vocab=vocab,
            max_len=int(manifest["max_len"]), session=session,
            input_name=session.get_inputs()[0].name, hash8=file_hash8(onnx_path), manifest=manifest,
            input_kind=manifest.get("input", "clean_text"),
        )

    def inputs(self, raw_texts: list[str], cleaned: list[str]) -> list[str]:
        """The text variant this model was trained on (manifest ``input``)."""
        return cleaned if self.input_kind == "clean_text" else sentiment_texts(raw_texts)

    def predict_proba(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """Class probabilities, shape (n, len(classes)), in manifest label order, of texts
        already in this model's input form (see :meth:`inputs`)."""
        x = encode(texts, self.vocab, self.max_len)
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        parts = [
            self.session.run(None, {self.input_name: x[i : i + batch_size]})[0]
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(parts).astype(np.float32)
