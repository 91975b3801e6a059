"""The student: a small BiLSTM over word pieces, distilled from the teacher, that answers most tweets.

Why: the fine-tuned teacher (:mod:`replyflow.nlp.teacher`) is accurate but runs a 6-layer transformer
per tweet; a one-layer BiLSTM over the same word pieces is ~20x cheaper.  Trained on the teacher's
soft labels (all three tasks) over a transfer set of the training tweets and augmented copies of
them (Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple Neural
Networks"), plus the gold labels where a row has them, it keeps most of the teacher's quality.

Vocabulary: the word pieces that occur in the training transfer set (plus the special pieces),
mapped to compact ids; their embeddings start from the pretrained encoder's own input embeddings,
reduced to :data:`EMBED` dimensions by PCA.  Training is Keras (training only); serving runs the
ONNX graph :func:`build_student_onnx` writes from the trained weights, with the LSTM's
``sequence_lens`` so padding never changes a result (unit-tested against Keras).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from replyflow.nlp.tasks import TASKS, Task

log = logging.getLogger(__name__)

EMBED = 128
PAD, UNK = 0, 1  # compact ids; pad is also the pretrained tokenizer's [PAD] (0)
MASK_PIECE, UNK_PIECE = 103, 100  # [MASK] and [UNK] of the pretrained word-piece vocabulary


@dataclass
class StudentConfig:
    """Student hyper-parameters (chosen on validation; docs/MODEL_CARD.md)."""

    lstm_units: int = 64  # 128 scored the same on validation (score 1.457 vs 1.462) and ran 4x slower
    dense_units: int = 128
    dropout: float = 0.2
    learning_rate: float = 2e-3
    epochs: int = 12
    batch_size: int = 128
    augment_copies: int = 4
    gold_weight: float = 0.5
    patience: int = 3
    seed: int = 42
    loss_weights: dict[str, float] = field(default_factory=lambda: {"sentiment": 1.0, "topic": 1.0, "needs_reply": 0.5})


# --- vocabulary ---------------------------------------------------------------------------
def build_vocab(piece_ids: list[np.ndarray], size: int) -> np.ndarray:
    """Lookup table pretrained piece id -> compact id (UNK for pieces never seen in training)."""
    table = np.full(size, UNK, dtype=np.int64)
    seen = np.unique(np.concatenate(piece_ids)) if piece_ids else np.array([], dtype=np.int64)
    seen = seen[(seen != 0) & (seen != UNK_PIECE)]
    table[0] = PAD
    table[MASK_PIECE] = UNK  # the augmentation's masked piece reads as unknown
    table[seen] = np.arange(2, 2 + len(seen))
    return table


def initial_embeddings(table: np.ndarray, pretrained: np.ndarray, dim: int = EMBED, seed: int = 0) -> np.ndarray:
    """PCA of the pretrained input embeddings of the kept pieces, scaled to unit variance per dimension."""
    n = int(table.max()) + 1
    pieces = np.zeros(n, dtype=np.int64)
    kept = np.nonzero(table >= 2)[0]
    pieces[table[kept]] = kept
    vectors = pretrained[pieces[2:]].astype(np.float64)
    vectors -= vectors.mean(0)
    _, _, vt = np.linalg.svd(vectors, full_matrices=False)
    reduced = vectors @ vt[:dim].T
    reduced /= reduced.std(0) + 1e-8
    out = np.zeros((n, dim), dtype=np.float32)
    out[1] = np.random.default_rng(seed).normal(0, 0.1, dim)  # UNK
    out[2:] = 0.3 * reduced
    return out


# --- transfer set -------------------------------------------------------------------------
def augment(pieces: np.ndarray, rng: np.random.Generator, mask_p: float = 0.1) -> np.ndarray:
    """One augmented copy: mask ~10% of pieces, and sometimes keep only a random window of the tweet
    (Tang et al.'s masking and n-gram sampling). [CLS]/[SEP] stay in place."""
    body = pieces[1:-1].copy()
    if len(body) > 4 and rng.random() < 0.25:
        width = int(rng.integers(max(2, len(body) // 2), len(body) + 1))
        start = int(rng.integers(0, len(body) - width + 1))
        body = body[start : start + width]
    body[rng.random(len(body)) < mask_p] = MASK_PIECE
    return np.concatenate([pieces[:1], body, pieces[-1:]])


def transfer_set(pieces: list[np.ndarray], copies: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """The training tweets followed by ``copies`` augmented copies of each; returns (pieces, source row)."""
    rng = np.random.default_rng(seed)
    out = list(pieces)
    source = list(range(len(pieces)))
    for _ in range(copies):
        for i, p in enumerate(pieces):
            out.append(augment(p, rng))
            source.append(i)
    return out, np.array(source)


# --- model --------------------------------------------------------------------------------
def build_model(embeddings: np.ndarray, cfg: StudentConfig, tasks: tuple[Task, ...] = TASKS) -> Any:
    """ids (compact, 0-padded) -> {task: probabilities}: Embedding -> BiLSTM -> [max, mean] -> dense -> heads."""
    import keras
    from keras import ops

    ids = keras.Input((None,), dtype="int32", name="ids")
    mask = keras.layers.Lambda(lambda x: ops.not_equal(x, PAD), name="mask")(ids)
    x = keras.layers.Embedding(embeddings.shape[0], embeddings.shape[1], name="embedding")(ids)
    x = keras.layers.SpatialDropout1D(cfg.dropout)(x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(cfg.lstm_units, return_sequences=True), name="bilstm")(x, mask=mask)
    maskf = ops.cast(mask, "float32")[..., None]
    mean = ops.sum(x * maskf, axis=1) / ops.maximum(ops.sum(maskf, axis=1), 1.0)
    peak = ops.max(x + (maskf - 1.0) * 1e4, axis=1)
    h = keras.layers.Dense(cfg.dense_units, activation="relu", name="dense")(ops.concatenate([peak, mean], axis=-1))
    h = keras.layers.Dropout(cfg.dropout)(h)
    outputs = {t.name: keras.layers.Dense(len(t.classes), activation="softmax", name=t.name)(h) for t in tasks}
    model = keras.Model(ids, outputs, name="student")
    model.get_layer("embedding").set_weights([embeddings])
    return model


def pad(ids: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    width = max(1, max(len(ids[r]) for r in rows))
    out = np.zeros((len(rows), width), dtype=np.int32)
    for i, r in enumerate(rows):
        out[i, : len(ids[r])] = ids[r]
    return out


def fit(
    model: Any,
    ids: list[np.ndarray],
    soft: dict[str, np.ndarray],
    gold: np.ndarray,
    cfg: StudentConfig,
    evaluate: Any = None,
    tasks: tuple[Task, ...] = TASKS,
) -> list[dict[str, Any]]:
    """Distil: soft cross-entropy against the teacher's probabilities ``soft`` (every row) plus
    ``gold_weight`` x cross-entropy against ``gold`` labels [rows, tasks] where known (-1: none).
    Early stopping on ``evaluate(model)["score"]`` (validation); the best epoch's weights are kept."""
    import keras
    import tensorflow as tf

    from replyflow.nlp.teacher import length_batches

    keras.utils.set_random_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    lengths = np.array([len(x) for x in ids])
    optimizer = keras.optimizers.Adam(cfg.learning_rate, clipnorm=1.0)
    weights = [cfg.loss_weights.get(t.name, 1.0) for t in tasks]
    variables = model.trainable_variables

    @tf.function(reduce_retracing=True)
    def step(x: Any, targets: tuple[Any, ...], y: Any) -> Any:
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            loss = 0.0
            for j, task in enumerate(tasks):
                p = tf.clip_by_value(probs[task.name], 1e-7, 1.0)
                distil = -tf.reduce_mean(tf.reduce_sum(targets[j] * tf.math.log(p), axis=-1))
                known = tf.cast(y[:, j] >= 0, tf.float32)
                ce = keras.losses.sparse_categorical_crossentropy(tf.maximum(y[:, j], 0), probs[task.name])
                hard = tf.reduce_sum(ce * known) / tf.maximum(tf.reduce_sum(known), 1.0)
                loss += weights[j] * (distil + cfg.gold_weight * hard)
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    history: list[dict[str, Any]] = []
    best: tuple[float, list[np.ndarray]] | None = None
    stale = 0
    for epoch in range(cfg.epochs):
        began, total = time.time(), 0.0
        batches = length_batches(lengths, cfg.batch_size, rng)
        for rows in batches:
            targets = tuple(soft[t.name][rows].astype(np.float32) for t in tasks)
            total += float(step(pad(ids, rows), targets, gold[rows]))
        record: dict[str, Any] = {"epoch": epoch + 1, "loss": round(total / len(batches), 4),
                                  "seconds": round(time.time() - began, 1)}
        if evaluate is not None:
            record.update(evaluate(model))
        history.append(record)
        log.info("student epoch %s", record)
        score = record.get("score", -record["loss"])
        if best is None or score > best[0]:
            best, stale = (score, model.get_weights()), 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if best is not None:
        model.set_weights(best[1])
    return history


def predict(model: Any, ids: list[np.ndarray], batch_size: int = 512, tasks: tuple[Task, ...] = TASKS) -> dict[str, np.ndarray]:
    from replyflow.nlp.teacher import length_batches

    out = {t.name: np.zeros((len(ids), len(t.classes)), dtype=np.float32) for t in tasks}
    for rows in length_batches(np.array([len(x) for x in ids]), batch_size, None):
        probs = model(pad(ids, rows), training=False)
        for t in tasks:
            out[t.name][rows] = np.asarray(probs[t.name])
    return out


def config_dict(cfg: StudentConfig) -> dict[str, Any]:
    return asdict(cfg)


# --- export -------------------------------------------------------------------------------
def _onnx_lstm_weights(kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, ...]:
    """Keras LSTM weights (gates i, f, c, o; [in, 4H]) -> ONNX (gates i, o, f, c; [4H, in])."""
    h = recurrent.shape[0]

    def reorder(m: np.ndarray) -> np.ndarray:
        i, f, c, o = (m[..., k * h : (k + 1) * h] for k in range(4))
        return np.concatenate([i, o, f, c], axis=-1)

    return reorder(kernel).T, reorder(recurrent).T, reorder(bias)


def build_student_onnx(model: Any, tasks: tuple[Task, ...] = TASKS) -> Any:
    """The trained Keras student as an ONNX graph: inputs ``ids`` (int64 [batch, tokens], compact ids,
    0-padded) and ``lengths`` (int32 [batch]); one probability output per task.  The LSTM op's
    ``sequence_lens`` makes padding irrelevant, exactly like the Keras mask."""
    from onnx import TensorProto, helper

    from replyflow.nlp.graph import OPSET, GraphParts

    parts = GraphParts()
    const, node = parts.const, parts.node

    (embeddings,) = model.get_layer("embedding").get_weights()
    fk, fr, fb, bk, br, bb = model.get_layer("bilstm").get_weights()
    units = fr.shape[0]
    fw, bw = _onnx_lstm_weights(fk, fr, fb), _onnx_lstm_weights(bk, br, bb)
    w = np.stack([fw[0], bw[0]]).astype(np.float32)
    r = np.stack([fw[1], bw[1]]).astype(np.float32)
    b = np.stack([np.concatenate([fw[2], np.zeros_like(fw[2])]), np.concatenate([bw[2], np.zeros_like(bw[2])])])

    x = node("Transpose", [node("Gather", [const("embedding", embeddings.astype(np.float32)), "ids"], "emb")], "emb_t",
             perm=[1, 0, 2])
    lstm = node("LSTM", [x, const("lstm.W", w), const("lstm.R", r), const("lstm.B", b.astype(np.float32)), "lengths"],
                "lstm.Y", direction="bidirectional", hidden_size=units)
    y = node("Reshape", [node("Transpose", [lstm], "lstm.Yt", perm=[2, 0, 1, 3]),
                         const("shape.merge", np.array([0, 0, -1], np.int64))], "states")
    maskf = node("Unsqueeze", [node("Cast", [node("Greater", ["ids", const("zero", np.array(0, np.int64))], "real")],
                                    "maskb", to=TensorProto.FLOAT), const("axis2", np.array([2], np.int64))], "maskf")
    axis1 = const("axis1", np.array([1], np.int64))
    mean = node("Div", [node("ReduceSum", [node("Mul", [y, maskf], "masked"), axis1], "sum", keepdims=0),
                        node("Max", [node("ReduceSum", [maskf, axis1], "count", keepdims=0),
                                     const("one", np.array(1.0, np.float32))], "count1")], "mean")
    shifted = node("Add", [y, node("Mul", [node("Sub", [maskf, "one"], "maskm1"), const("big", np.array(1e4, np.float32))],
                                   "neg")], "shifted")
    peak = node("ReduceMax", [shifted], "peak", keepdims=0, axes=[1])  # opset 17: axes is an attribute here
    kernel, bias = model.get_layer("dense").get_weights()
    h = node("Relu", [node("Add", [node("MatMul", [node("Concat", [peak, mean], "pooled", axis=-1),
                                                   const("dense.w", kernel)], "dense.mm"), const("dense.b", bias)],
                           "dense.z")], "hidden")
    outputs = []
    for task in tasks:
        k, c = model.get_layer(task.name).get_weights()
        logits = node("Add", [node("MatMul", [h, const(f"{task.name}.w", k)], f"{task.name}.mm"),
                              const(f"{task.name}.b", c)], f"{task.name}.logits")
        node("Softmax", [logits], task.name, axis=-1)
        outputs.append(helper.make_tensor_value_info(task.name, TensorProto.FLOAT, ["batch", len(task.classes)]))
    graph = helper.make_graph(
        parts.nodes, "replyflow_student",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "tokens"]),
         helper.make_tensor_value_info("lengths", TensorProto.INT32, ["batch"])],
        outputs, parts.inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="replyflow", ir_version=8)
