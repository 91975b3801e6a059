"""ONNX LSTM heads for serving: onnxruntime + numpy only, never TensorFlow.

A model directory ``models/<name>/`` holds ``model.onnx`` (input ``hidden``: the frozen
encoder's output, float32 [batch, tokens, 384]; output: class probabilities) and
``manifest.json`` (label order, input text form, preprocessing version, the hash of the
encoder it was trained on, data hash, metrics).  Both heads read the same encoder output,
computed once per batch by :class:`replyflow.nlp.encoder.TextEncoder`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from replyflow.nlp.text import PREPROCESSING_VERSION

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
ONNX_FILE = "model.onnx"


def session_options() -> Any:
    """onnxruntime options shared by the encoder and the heads.

    Spinning is off: by default each session's idle threads keep spinning after a run and
    steal the cores from the next session (encoder, then two heads, in turn; and Spark runs
    one Python worker per core). Measured on 2 cores: sentiment + topic went from 83 to 141
    tweets/s at batch 1 and from 212 to 244 at batch 256."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


def file_hash8(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


@dataclass
class OnnxClassifier:
    """One exported LSTM head with its label order."""

    name: str
    classes: list[str]
    session: Any
    input_name: str
    hash8: str
    manifest: dict[str, Any]

    @classmethod
    def load(cls, model_dir: Path) -> "OnnxClassifier":
        import onnxruntime as ort

        manifest = json.loads((model_dir / MANIFEST).read_text())
        if manifest.get("preprocessing_version") != PREPROCESSING_VERSION:
            raise RuntimeError(
                f"{model_dir} was trained with preprocessing v{manifest.get('preprocessing_version')}, "
                f"this code has v{PREPROCESSING_VERSION}: retrain with `replyflow train`"
            )
        onnx_path = model_dir / ONNX_FILE
        session = ort.InferenceSession(str(onnx_path), session_options(), providers=["CPUExecutionProvider"])
        return cls(
            name=manifest["name"], classes=list(manifest["classes"]), session=session,
            input_name=session.get_inputs()[0].name, hash8=file_hash8(onnx_path), manifest=manifest,
        )

    @property
    def encoder_sha256(self) -> str | None:
        """sha256 of the encoder weights this head was trained on (manifest ``encoder``)."""
        return (self.manifest.get("encoder") or {}).get("sha256")

    def predict_proba(self, hidden: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities, shape (n, len(classes)), in manifest label order, from the
        encoder's hidden states (float32 [n, tokens, 384])."""
        if len(hidden) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        parts = [
            self.session.run(None, {self.input_name: np.asarray(hidden[i : i + batch_size], dtype=np.float32)})[0]
            for i in range(0, len(hidden), batch_size)
        ]
        return np.concatenate(parts).astype(np.float32)
