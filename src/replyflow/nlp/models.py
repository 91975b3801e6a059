"""Loading the trained models for serving: the LSTM student, the fine-tuned teacher, their tokenizer.

Only onnxruntime, numpy and the ``tokenizers`` package are used: no TensorFlow, no PyTorch.
Every model folder carries a ``manifest.json`` (task classes in order, calibration temperatures,
preprocessing version, the hashes of the tokenizer and the ONNX file) and loading refuses a
folder whose preprocessing version or tokenizer differs from this code's, so a model can never
read text prepared differently from how it was trained.

Layout of ``models/``: ``tokenizer.json`` (the encoder's word-piece tokenizer, Apache-2.0),
``student/`` (``model.onnx``, ``vocab.npy``: pretrained piece id -> student id), ``teacher/``
(``weights.npz``: the fine-tuned encoder and heads, int8 per row, from which the ONNX graph is built
at load, ~1 s; serving's int8 version of it is cached in :func:`replyflow.core.files.user_cache_dir`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from replyflow.core.files import file_sha256, user_cache_dir, write_atomically
from replyflow.nlp.tasks import TASKS
from replyflow.nlp.text import PREPROCESSING_VERSION, encoder_texts

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
ONNX_FILE = "model.onnx"
WEIGHTS_FILE = "weights.npz"
TOKENIZER_FILE = "tokenizer.json"
VOCAB_FILE = "vocab.npy"
MAX_PIECES = 48  # word pieces per tweet, [CLS] and [SEP] included (99th percentile of the data: 41)


class ModelError(RuntimeError):
    """A model folder is missing, incomplete or does not match this code."""


def session_options(threads: int = 0) -> Any:
    """onnxruntime options shared by every model: no thread spinning (the models and Spark's Python
    workers take turns on the cores; spinning threads steal them), ``threads`` intra-op (0: all)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return opts


def calibrate(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature scaling of probabilities: softmax(log p / T), i.e. softmax(logits / T)."""
    if temperature == 1.0 or len(probs) == 0:
        return probs
    logp = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


class WordPieces:
    """The encoder's word-piece tokenizer on :func:`~replyflow.nlp.text.encoder_text` (at most 48 pieces)."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(path))
        self.tokenizer.enable_truncation(MAX_PIECES)
        self.tokenizer.no_padding()
        self.sha256 = file_sha256(path)

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        # encode_batch_fast: the same ids without character offsets (which nothing here reads), 25% faster
        encodings = self.tokenizer.encode_batch_fast(encoder_texts(texts))
        return [np.asarray(e.ids, dtype=np.int64) for e in encodings]


def artifact(folder: Path) -> Path:
    """The file that holds a model: the teacher's weights, or the student's ONNX graph."""
    return folder / WEIGHTS_FILE if (folder / WEIGHTS_FILE).is_file() else folder / ONNX_FILE


def _manifest(folder: Path, tokenizer: WordPieces) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file() or not artifact(folder).is_file():
        raise ModelError(f"{folder} has no trained model ({MANIFEST}, {ONNX_FILE} or {WEIGHTS_FILE}): "
                         "run `replyflow train`")
    manifest = json.loads(path.read_text())
    if manifest.get("preprocessing_version") != PREPROCESSING_VERSION:
        raise ModelError(f"{folder} was trained with preprocessing v{manifest.get('preprocessing_version')}, this code has "
                         f"v{PREPROCESSING_VERSION}: retrain with `replyflow train`")
    if manifest.get("tokenizer_sha256") != tokenizer.sha256:
        raise ModelError(f"{folder} was trained with another tokenizer than {TOKENIZER_FILE}: retrain with `replyflow train`")
    for task in TASKS:
        if tuple(manifest["classes"][task.name]) != task.classes:
            raise ModelError(f"{folder}: classes of {task.name} differ from this code's: retrain with `replyflow train`")
    return manifest


@dataclass
class OnnxModel:
    """One exported model (student or teacher): an onnxruntime session and its manifest."""

    name: str
    session: Any
    manifest: dict[str, Any]
    hash8: str
    vocab: np.ndarray | None = None  # the student's piece -> id table
    int8: bool = False  # the teacher's MatMuls computed in int8 (serving), see graph.quantize_matmuls

    @classmethod
    def load(cls, folder: Path, tokenizer: WordPieces, threads: int = 0, int8: bool = False) -> OnnxModel:
        """The model of ``folder``, checked against its manifest.  ``int8``: the teacher with int8 MatMuls, as
        serving runs it; training (the student's soft labels, the teacher's own validation figures) keeps float."""
        import onnxruntime as ort

        manifest = _manifest(folder, tokenizer)
        path = artifact(folder)
        digest = file_sha256(path)
        if manifest.get("artifact_sha256") != digest:
            raise ModelError(f"{path} does not match its manifest (sha256 {digest[:8]}): retrain or restore it")
        teacher = path.name == WEIGHTS_FILE
        source: str | bytes = str(path)
        if teacher:
            source = _int8_teacher_graph(path, digest) if int8 else _teacher_graph(path)
        session = ort.InferenceSession(source, session_options(threads), providers=["CPUExecutionProvider"])
        vocab = np.load(folder / VOCAB_FILE) if (folder / VOCAB_FILE).is_file() else None
        return cls(manifest["name"], session, manifest, digest[:8], vocab, int8=teacher and int8)

    @property
    def temperatures(self) -> dict[str, float]:
        return {k: float(v) for k, v in (self.manifest.get("temperatures") or {}).items()}

    def predict(self, pieces: list[np.ndarray], batch_size: int | None = None) -> dict[str, np.ndarray]:
        """Calibrated class probabilities per task for already tokenized tweets, in input order.

        Rows run in batches of similar length, each padded to its longest row: padding does not
        change a result (the student's LSTM gets the lengths, the teacher masks attention).  The
        batch size is the manifest's (measured: the teacher is fastest at 32, the student at 256).

        The int8 teacher runs one tweet at a time: dynamic quantization scales activations per tensor, so in
        a batch a tweet's result would depend on the tweets next to it.  Alone, each result is reproducible,
        and still 1.7x the float teacher's speed at 32 (321 against 193 tweets/s on one core)."""
        batch_size = 1 if self.int8 else batch_size or int(self.manifest.get("batch_size", 256))
        out = {t.name: np.zeros((len(pieces), len(t.classes)), dtype=np.float32) for t in TASKS}
        if not pieces:
            return out
        lengths = np.array([len(p) for p in pieces])
        order = np.argsort(lengths, kind="stable")
        names = [o.name for o in self.session.get_outputs()]
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = int(lengths[rows].max())
            ids = np.zeros((len(rows), width), dtype=np.int64)
            for i, r in enumerate(rows):
                ids[i, : lengths[r]] = pieces[r]
            if self.vocab is not None:
                feed = {"ids": self.vocab[ids], "lengths": lengths[rows].astype(np.int32)}  # vocab[0] is 0: padding stays
            else:
                feed = {"input_ids": ids, "attention_mask": (np.arange(width)[None, :] < lengths[rows, None]).astype(np.int64)}
            for name, probs in zip(names, self.session.run(None, feed)):
                out[name][rows] = probs
        return {name: calibrate(p, self.temperatures.get(name, 1.0)) for name, p in out.items()}


def _int8_teacher_graph(path: Path, digest: str, cache_dir: Path | None = None) -> bytes:
    """The teacher's graph with int8 MatMuls (``graph.quantize_matmuls``), from the user cache when it is there.

    Why a cache: building and quantizing take 2-4 s, in every Python worker at every start (the demo's first
    reply waits for it).  The key covers everything the bytes depend on: the weights' sha256, the onnx and
    onnxruntime versions and the source of the code that builds the graph, so a change to any of them makes
    a new file instead of reusing a stale one.  A cache that cannot be written is skipped."""
    import onnx
    import onnxruntime as ort

    from replyflow.nlp import graph

    code = Path(graph.__file__).read_bytes() + Path(__file__).read_bytes()  # graph.py builds it, this module loads it
    key = hashlib.sha256(f"{digest}|{onnx.__version__}|{ort.__version__}|".encode() + code).hexdigest()[:20]
    cached = (cache_dir or user_cache_dir()) / f"teacher-int8-{key}.onnx"
    if cached.is_file():
        return cached.read_bytes()
    model = graph.quantize_matmuls(_teacher_graph(path))
    try:
        write_atomically(cached, model)
    except OSError as exc:
        log.warning("could not cache the int8 teacher in %s (%s): it is built again at the next start", cached, exc)
    return model


def _teacher_graph(path: Path) -> bytes:
    """The teacher's ONNX graph, built from its stored weights (``head.<task>.kernel``/``bias`` for the heads)."""
    from replyflow.nlp.graph import build_classifier_onnx, dequantize_weights

    with np.load(path) as stored:
        arrays = {k: stored[k] for k in stored.files}
    heads = {t.name: (arrays.pop(f"head.{t.name}.kernel"), arrays.pop(f"head.{t.name}.bias")) for t in TASKS}
    return build_classifier_onnx(dequantize_weights(arrays), heads).SerializeToString()
