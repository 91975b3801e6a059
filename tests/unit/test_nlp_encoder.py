"""The pretrained encoder graph (nlp/encoder.py): same numbers as a plain numpy BERT, padding
does not leak, and the weights are checked before anything runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from replyflow.nlp.encoder import (
    ENCODER_SHA256,
    MAX_LEN,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    TextEncoder,
    get_encoder,
    resolve_encoder_dir,
)


def _numpy_bert(weights: dict[str, np.ndarray], ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reference forward pass written from the BERT paper's equations, independent of the ONNX graph."""
    from scipy.special import erf

    def ln(x: np.ndarray, p: str) -> np.ndarray:
        m, v = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - m) / np.sqrt(v + 1e-12) * weights[p + ".weight"] + weights[p + ".bias"]

    def lin(x: np.ndarray, p: str) -> np.ndarray:
        return x @ weights[p + ".weight"].T + weights[p + ".bias"]

    b, t = ids.shape
    x = (weights["embeddings.word_embeddings.weight"][ids] + weights["embeddings.position_embeddings.weight"][:t]
         + weights["embeddings.token_type_embeddings.weight"][0])
    x = ln(x, "embeddings.LayerNorm")
    bias = (1.0 - mask[:, None, None, :]) * -1e4
    for i in range(6):
        p = f"encoder.layer.{i}."
        q, k, v = (lin(x, p + f"attention.self.{n}").reshape(b, t, 12, 32).transpose(0, 2, 1, 3)
                   for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(32) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        a = ((s / s.sum(-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(b, t, 384)
        x = ln(lin(a, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        h = lin(x, p + "intermediate.dense")
        x = ln(lin(0.5 * h * (1 + erf(h / np.sqrt(2))), p + "output.dense") + x, p + "output.LayerNorm")
    return x * mask[..., None]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return get_encoder()


def test_graph_matches_a_numpy_reference(encoder: TextEncoder) -> None:
    from safetensors.numpy import load_file

    texts = ["@united lost my bag AGAIN!!", "great crew, thanks", ""]
    hidden, mask = encoder.encode(texts)
    assert hidden.shape == (3, MAX_LEN, 384) and mask.shape == (3, MAX_LEN)
    ids, imask = encoder.tokenize(texts)
    ref = _numpy_bert(load_file(str(resolve_encoder_dir() / WEIGHTS_FILE)), ids, imask.astype(np.float32))
    assert np.abs(hidden - ref).max() < 1e-3


def test_padding_is_zero_and_batch_mates_do_not_matter(encoder: TextEncoder) -> None:
    short = "my flight is delayed"
    alone, mask = encoder.encode([short])
    with_long, _ = encoder.encode([short, "a much longer tweet about a lost bag and a rude agent at the gate " * 3])
    n = int(mask[0].sum())
    assert 2 < n < MAX_LEN and mask[0, :n].all() and not mask[0, n:].any()
    assert not alone[0, n:].any()  # padded positions zeroed for the heads
    np.testing.assert_allclose(alone[0], with_long[0], atol=1e-4)
    _, long_mask = encoder.encode(["word " * 200])
    assert long_mask.sum() == MAX_LEN  # truncated, never an error


def test_length_bucketing_gives_the_fixed_width_result(encoder: TextEncoder) -> None:
    texts = ["ok", "lost bag at ORD, flight 922, nobody helps!!", "", "thanks for the upgrade " * 4, "delayed"] * 3
    ids, mask = encoder.tokenize(texts)
    full = encoder.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    for batch_size in (1, 4, 32):
        hidden, _ = encoder.encode(texts, batch_size=batch_size)
        np.testing.assert_allclose(hidden, full, atol=1e-4)


def test_the_representation_is_semantic(encoder: TextEncoder) -> None:
    hidden, mask = encoder.encode(["my flight was delayed for three hours", "the plane left very late",
                                   "they lost my suitcase"])
    e = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)  # mean pooling, as the encoder was trained
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.1


def test_wrong_weights_are_refused(tmp_path: Path) -> None:
    src = resolve_encoder_dir()
    shutil.copy(src / TOKENIZER_FILE, tmp_path / TOKENIZER_FILE)
    (tmp_path / WEIGHTS_FILE).write_bytes(b"not the weights")
    with pytest.raises(RuntimeError, match=ENCODER_SHA256):
        TextEncoder.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="REPLYFLOW_ENCODER_DIR"):
        TextEncoder.load(tmp_path / "missing")
