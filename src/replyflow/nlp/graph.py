"""The pretrained encoder's graph in ONNX, built from weights: the frozen encoder and the fine-tuned teacher.

The standard post-LayerNorm BERT encoder (6 layers, 384 wide, 12 heads, exact-erf GELU) written with
``onnx.helper`` from Hugging Face-named weights, checked by a unit test against a plain numpy BERT.
:func:`build_classifier_onnx` adds mean pooling and one softmax head per task: the teacher at serving.
Weights are stored weight-only int8 (:func:`quantize_weights`); serving computes the teacher's MatMuls in int8
(:func:`quantize_matmuls`), everything else in float32.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HIDDEN = 384
HEADS = 12
LAYERS = 6
LN_EPS = 1e-12
OPSET = 17


class GraphParts:
    """The nodes and initialisers of an ONNX graph being written, with the two helpers every builder
    here uses (the encoder, the teacher's heads, the student): each returns the name it defined."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def build_onnx(weights: dict[str, np.ndarray]) -> Any:
    """The BERT encoder as an ONNX graph: inputs ``input_ids`` and ``attention_mask`` (int64,
    [batch, tokens]); output ``hidden`` (float32, [batch, tokens, 384]) with padded positions zeroed."""
    from onnx import TensorProto, helper

    hidden = helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "tokens", HIDDEN])
    return _model(_encoder_nodes(weights), [hidden])


def build_classifier_onnx(weights: dict[str, np.ndarray], heads: dict[str, tuple[np.ndarray, np.ndarray]]) -> Any:
    """The encoder, mean-pooled over real word pieces, with a softmax head per task: the fine-tuned teacher.

    ``heads``: task name -> (kernel [384, classes], bias [classes]); one output per task, named
    after it, with class probabilities [batch, classes]."""
    from onnx import TensorProto, helper

    parts = _encoder_nodes(weights)
    node, const = parts.node, parts.const
    axis1 = const("pool.axis1", np.array([1], np.int64))
    summed = node("ReduceSum", ["hidden", axis1], "pool.sum", keepdims=0)
    count = node("Max", [node("ReduceSum", ["maskf", axis1], "pool.count", keepdims=1),
                         const("pool.one", np.array(1.0, np.float32))], "pool.count1")
    pooled = node("Div", [summed, count], "pooled")
    outputs = []
    for name, (kernel, bias) in heads.items():
        logits = node("Add", [node("MatMul", [pooled, const(f"{name}.w", kernel.astype(np.float32))], f"{name}.mm"),
                              const(f"{name}.b", bias.astype(np.float32))], f"{name}.logits")
        node("Softmax", [logits], name, axis=-1)
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", kernel.shape[1]]))
    return _model(parts, outputs)


def _model(parts: GraphParts, outputs: list[Any]) -> Any:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        parts.nodes, "minilm_l6_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"])],
        outputs, parts.inits,
    )
    # IR version 8 (opset 17 era): onnxruntime refuses IR versions newer than it knows
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="replyflow", ir_version=8)


def _encoder_nodes(weights: dict[str, np.ndarray]) -> GraphParts:
    """Nodes and initialisers of the encoder; they compute ``hidden`` [batch, tokens, 384] (padding
    zeroed) and ``maskf`` (the attention mask as float)."""
    from onnx import TensorProto

    parts = GraphParts()
    const, node = parts.const, parts.node

    def linear(x: str, prefix: str, out: str) -> str:
        w = const(f"{prefix}.wT", weights[f"{prefix}.weight"].T.astype(np.float32))
        b = const(f"{prefix}.b", weights[f"{prefix}.bias"].astype(np.float32))
        return node("Add", [node("MatMul", [x, w], f"{out}.mm"), b], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        g = const(f"{prefix}.g", weights[f"{prefix}.weight"])
        b = const(f"{prefix}.beta", weights[f"{prefix}.bias"])
        return node("LayerNormalization", [x, g, b], out, axis=-1, epsilon=LN_EPS)

    head_dim = HIDDEN // HEADS
    split_heads = const("shape.heads", np.array([0, 0, HEADS, head_dim], np.int64))
    merge_heads = const("shape.merge", np.array([0, 0, HIDDEN], np.int64))
    one = const("one", np.array(1.0, np.float32))
    half = const("half", np.array(0.5, np.float32))
    inv_sqrt2 = const("inv_sqrt2", np.array(1 / np.sqrt(2), np.float32))
    scale = const("scale", np.array(1 / np.sqrt(head_dim), np.float32))
    neg = const("neg", np.array(-1e4, np.float32))
    zero_i = const("zero_i", np.array([0], np.int64))
    one_i = const("one_i", np.array([1], np.int64))

    # embeddings: word + position (first T rows) + token type 0, then LayerNorm
    e = "embeddings"
    word = node("Gather", [const("word_emb", weights[f"{e}.word_embeddings.weight"]), "input_ids"], "word")
    seq_len = node("Slice", [node("Shape", ["input_ids"], "ids_shape"), one_i, const("two_i", np.array([2], np.int64))],
                   "seq_len")
    pos = node("Slice", [const("pos_emb", weights[f"{e}.position_embeddings.weight"]), zero_i, seq_len, zero_i], "pos")
    x = node("Add", [node("Add", [word, pos], "word_pos"), const("type_emb", weights[f"{e}.token_type_embeddings.weight"][0])],
             "emb_sum")
    x = layer_norm(x, f"{e}.LayerNorm", "emb")

    # additive attention bias: 0 for real tokens, -1e4 for padding, shape [B, 1, 1, T]
    maskf = node("Cast", ["attention_mask"], "maskf", to=TensorProto.FLOAT)
    bias = node("Mul", [node("Sub", [one, maskf], "inv_mask"), neg], "mask_bias_2d")
    bias = node("Unsqueeze", [bias, const("axes12", np.array([1, 2], np.int64))], "mask_bias")

    for i in range(LAYERS):
        p = f"encoder.layer.{i}"
        q = node("Transpose", [node("Reshape", [linear(x, f"{p}.attention.self.query", f"l{i}.q"), split_heads], f"l{i}.q4")],
                 f"l{i}.qt", perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [linear(x, f"{p}.attention.self.key", f"l{i}.k"), split_heads], f"l{i}.k4")],
                 f"l{i}.kt", perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [linear(x, f"{p}.attention.self.value", f"l{i}.v"), split_heads], f"l{i}.v4")],
                 f"l{i}.vt", perm=[0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [q, k], f"l{i}.qk"), scale], f"l{i}.qk_scaled"), bias],
                      f"l{i}.scores")
        attn = node("Softmax", [scores], f"l{i}.attn", axis=-1)
        ctx = node("Transpose", [node("MatMul", [attn, v], f"l{i}.ctx4")], f"l{i}.ctx_t", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, merge_heads], f"l{i}.ctx")
        attn_out = linear(ctx, f"{p}.attention.output.dense", f"l{i}.attn_out")
        x = layer_norm(node("Add", [attn_out, x], f"l{i}.res1"), f"{p}.attention.output.LayerNorm", f"l{i}.ln1")
        h = linear(x, f"{p}.intermediate.dense", f"l{i}.ff1")
        erf = node("Erf", [node("Mul", [h, inv_sqrt2], f"l{i}.ff_scaled")], f"l{i}.erf")
        h = node("Mul", [node("Mul", [h, half], f"l{i}.ff_half"), node("Add", [erf, one], f"l{i}.erf1")], f"l{i}.gelu")
        ff = linear(h, f"{p}.output.dense", f"l{i}.ff2")
        x = layer_norm(node("Add", [ff, x], f"l{i}.res2"), f"{p}.output.LayerNorm", f"l{i}.ln2")

    node("Mul", [x, node("Unsqueeze", [maskf, const("axis2", np.array([2], np.int64))], "mask3")], "hidden")
    return parts


# --- storing fine-tuned weights ------------------------------------------------------------
QUANTIZED_MIN_SIZE = 65_536  # matrices at least this large are stored as int8 (one scale per row)


def quantize_weights(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Weights for storage: every large float matrix as int8 with one float32 scale per row (``name:q``,
    ``name:scale``), the rest as float32.  Weight-only quantisation: serving dequantizes at load and
    computes in float32, so a tweet's result never depends on its batch mates (dynamic activation
    quantisation did: its scales come from the whole batch)."""
    out: dict[str, np.ndarray] = {}
    for name, value in weights.items():
        value = np.asarray(value)
        if value.dtype.kind == "f" and value.ndim == 2 and value.size >= QUANTIZED_MIN_SIZE:
            scale = np.maximum(np.abs(value).max(axis=1), 1e-12).astype(np.float32) / 127.0
            out[f"{name}:q"] = np.clip(np.round(value / scale[:, None]), -127, 127).astype(np.int8)
            out[f"{name}:scale"] = scale
        elif value.dtype.kind == "f":
            out[name] = value.astype(np.float32)
        else:
            out[name] = value
    return out


def dequantize_weights(stored: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inverse of :func:`quantize_weights` (up to the int8 rounding)."""
    out: dict[str, np.ndarray] = {}
    for name, value in stored.items():
        if name.endswith(":q"):
            base = name[:-2]
            out[base] = value.astype(np.float32) * stored[f"{base}:scale"][:, None]
        elif not name.endswith(":scale"):
            out[name] = value
    return out


def quantize_matmuls(model: bytes) -> bytes:
    """``model`` with its MatMul weights in int8, per output channel, and those products computed in int8
    (onnxruntime's dynamic quantization: activations are quantized on the fly; embeddings stay float).

    Why: the teacher answers the cascade's unsure tail and took over half of the classification time.
    Chosen on validation (2026-12-01, one tweet per run, see ``OnnxModel.predict``): at the default cascade
    0.45 sentiment 0.8409 / 0.7952 -> 0.8414 / 0.7955 (accuracy / macro-F1), topic gold-8 macro-F1 0.6734 ->
    0.6734, ``Enricher.enrich`` 3,604 -> 4,333 tweets/s; the teacher alone 0.8530 / 0.8158 -> 0.8562 / 0.8195,
    topic 0.7190 -> 0.7190."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    quiet = _DropAdvice()
    root.addFilter(quiet)  # the quantizer advises "pre-processing" on the root logger at every load
    try:
        with tempfile.TemporaryDirectory(prefix="replyflow-int8-") as tmp:
            source, target = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
            source.write_bytes(model)
            quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"], extra_options={"MatMulConstBOnly": True})
            return target.read_bytes()
    finally:
        root.removeFilter(quiet)


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider to run pre-processing")
