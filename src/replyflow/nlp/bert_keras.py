"""The pretrained encoder (all-MiniLM-L6-v2) as a trainable Keras 3 model, for fine-tuning the teacher.

Training only (TensorFlow backend); serving never imports this module.  The layers are the
standard post-LayerNorm BERT that :func:`replyflow.nlp.encoder.build_onnx` writes as ONNX, with
the same weight names, so a fine-tuned model goes back to serving by exporting its weights
(:func:`export_weights`) and building the ONNX graph from them: one graph builder, tested once
against a plain numpy BERT, serves both the frozen and the fine-tuned encoder.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from replyflow.nlp.graph import HEADS, HIDDEN, LAYERS, LN_EPS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
from keras import ops  # noqa: E402

FFN = 4 * HIDDEN
HEAD_DIM = HIDDEN // HEADS


class Embeddings(keras.layers.Layer):
    """Word + position + token-type-0 embeddings, then LayerNorm."""

    def __init__(self, vocab: int, positions: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.word = keras.layers.Embedding(vocab, HIDDEN, name="word_embeddings")
        self.position = keras.layers.Embedding(positions, HIDDEN, name="position_embeddings")
        self.norm = keras.layers.LayerNormalization(epsilon=LN_EPS, name="LayerNorm")
        self.type0 = self.add_weight(shape=(HIDDEN,), initializer="zeros", name="token_type_0")

    def call(self, ids: Any) -> Any:
        positions = ops.arange(ops.shape(ids)[1])
        return self.norm(self.word(ids) + self.position(positions)[None] + self.type0)


class EncoderLayer(keras.layers.Layer):
    """Self-attention (12 heads) + residual + LayerNorm, feed-forward (exact GELU) + residual + LayerNorm."""

    def __init__(self, dropout: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.query = keras.layers.Dense(HIDDEN, name="query")
        self.key = keras.layers.Dense(HIDDEN, name="key")
        self.value = keras.layers.Dense(HIDDEN, name="value")
        self.attn_out = keras.layers.Dense(HIDDEN, name="attention_output")
        self.norm1 = keras.layers.LayerNormalization(epsilon=LN_EPS, name="attention_LayerNorm")
        self.ff1 = keras.layers.Dense(FFN, name="intermediate")
        self.ff2 = keras.layers.Dense(HIDDEN, name="output")
        self.norm2 = keras.layers.LayerNormalization(epsilon=LN_EPS, name="output_LayerNorm")
        self.drop = keras.layers.Dropout(dropout)

    def _heads(self, x: Any) -> Any:
        b, t = ops.shape(x)[0], ops.shape(x)[1]
        return ops.transpose(ops.reshape(x, (b, t, HEADS, HEAD_DIM)), (0, 2, 1, 3))

    def call(self, x: Any, bias: Any, training: bool = False) -> Any:
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / float(np.sqrt(HEAD_DIM)) + bias
        ctx = ops.matmul(ops.softmax(scores, axis=-1), v)
        b, t = ops.shape(x)[0], ops.shape(x)[1]
        ctx = ops.reshape(ops.transpose(ctx, (0, 2, 1, 3)), (b, t, HIDDEN))
        x = self.norm1(x + self.drop(self.attn_out(ctx), training=training))
        h = keras.activations.gelu(self.ff1(x), approximate=False)
        return self.norm2(x + self.drop(self.ff2(h), training=training))


class Bert(keras.layers.Layer):
    """ids, mask -> last hidden state (padding zeroed, like the ONNX graph)."""

    def __init__(self, vocab: int = 30522, positions: int = 512, dropout: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.embeddings = Embeddings(vocab, positions, name="embeddings")
        self.blocks = [EncoderLayer(dropout, name=f"layer_{i}") for i in range(LAYERS)]

    def call(self, ids: Any, mask: Any, training: bool = False) -> Any:
        maskf = ops.cast(mask, "float32")
        bias = ((1.0 - maskf) * -1e4)[:, None, None, :]
        x = self.embeddings(ids)
        for block in self.blocks:
            x = block(x, bias, training=training)
        return x * maskf[..., None]


def mean_pool(hidden: Any, mask: Any) -> Any:
    """Mean over the real word pieces (how the sentence encoder was trained)."""
    maskf = ops.cast(mask, "float32")[..., None]
    return ops.sum(hidden * maskf, axis=1) / ops.maximum(ops.sum(maskf, axis=1), 1.0)


def load_weights(bert: Bert, weights: dict[str, np.ndarray]) -> None:
    """Copy the Hugging Face-named safetensors weights into ``bert`` (built)."""
    e = bert.embeddings
    e.word.set_weights([weights["embeddings.word_embeddings.weight"]])
    e.position.set_weights([weights["embeddings.position_embeddings.weight"]])
    e.type0.assign(weights["embeddings.token_type_embeddings.weight"][0])
    e.norm.set_weights([weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"]])
    for i, block in enumerate(bert.blocks):
        for layer, name in _dense_names(block, i):
            layer.set_weights([weights[f"{name}.weight"].T, weights[f"{name}.bias"]])
        for layer, name in _norm_names(block, i):
            layer.set_weights([weights[f"{name}.weight"], weights[f"{name}.bias"]])


def export_weights(bert: Bert, like: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The trained weights under the Hugging Face names (what ``build_onnx`` reads); other keys from ``like``."""
    out = dict(like)
    e = bert.embeddings
    out["embeddings.word_embeddings.weight"] = e.word.get_weights()[0]
    out["embeddings.position_embeddings.weight"] = e.position.get_weights()[0]
    types = np.array(like["embeddings.token_type_embeddings.weight"], dtype=np.float32)
    types[0] = np.asarray(e.type0.numpy())
    out["embeddings.token_type_embeddings.weight"] = types
    out["embeddings.LayerNorm.weight"], out["embeddings.LayerNorm.bias"] = e.norm.get_weights()
    for i, block in enumerate(bert.blocks):
        for layer, name in _dense_names(block, i):
            kernel, bias = layer.get_weights()
            out[f"{name}.weight"], out[f"{name}.bias"] = kernel.T.copy(), bias
        for layer, name in _norm_names(block, i):
            out[f"{name}.weight"], out[f"{name}.bias"] = layer.get_weights()
    return {k: np.ascontiguousarray(v, dtype=np.float32) if v.dtype == np.float64 else v for k, v in out.items()}


def _dense_names(block: EncoderLayer, i: int) -> list[tuple[Any, str]]:
    p = f"encoder.layer.{i}"
    return [(block.query, f"{p}.attention.self.query"), (block.key, f"{p}.attention.self.key"),
            (block.value, f"{p}.attention.self.value"), (block.attn_out, f"{p}.attention.output.dense"),
            (block.ff1, f"{p}.intermediate.dense"), (block.ff2, f"{p}.output.dense")]


def _norm_names(block: EncoderLayer, i: int) -> list[tuple[Any, str]]:
    p = f"encoder.layer.{i}"
    return [(block.norm1, f"{p}.attention.output.LayerNorm"), (block.norm2, f"{p}.output.LayerNorm")]
