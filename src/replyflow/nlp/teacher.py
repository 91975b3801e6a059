"""The teacher: the pretrained encoder fine-tuned end to end on all three tasks, offline in ``replyflow train``.

Why a teacher: fine-tuning the whole encoder beats reading it frozen by several points, but a
6-layer transformer is too slow to run on every tweet of a 2,000 tweets/s stream on 2 cores.
So the teacher (1) labels a large transfer set for the fast LSTM student
(:mod:`replyflow.nlp.student`) and (2) answers, at serving time, only the tweets the student is
unsure about (the cascade in :mod:`replyflow.nlp.pipeline`).

Multi-task: one encoder, mean-pooled, with a softmax head per task (:data:`replyflow.nlp.tasks.TASKS`);
a task's loss counts only rows that have its label (sentiment: every training tweet; topic and
needs_reply: the annotated ones).  Training only (Keras 3 on TensorFlow); the result is exported
as ONNX (int8) through :func:`replyflow.nlp.encoder.build_classifier_onnx`, so serving runs it with
onnxruntime like everything else.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from replyflow.nlp.tasks import TASKS, Task

log = logging.getLogger(__name__)

MISSING = -1  # label of a row that has none for a task


@dataclass
class TeacherConfig:
    """Fine-tuning hyper-parameters (chosen on validation; docs/MODEL_CARD.md)."""

    learning_rate: float = 5e-5
    head_learning_rate: float = 1e-3
    epochs: int = 4
    batch_size: int = 32
    dropout: float = 0.1
    warmup: float = 0.1
    weight_decay: float = 0.01
    loss_weights: dict[str, float] = field(default_factory=lambda: {"sentiment": 1.0, "topic": 1.0, "needs_reply": 0.5})
    seed: int = 42


def label_matrix(frame: Any, tasks: tuple[Task, ...] = TASKS) -> np.ndarray:
    """int32 [rows, tasks]: each task's class index, or :data:`MISSING`."""
    out = np.full((len(frame), len(tasks)), MISSING, dtype=np.int32)
    for j, task in enumerate(tasks):
        if task.name not in frame:
            continue
        index = {c: i for i, c in enumerate(task.classes)}
        values = frame[task.name].tolist()
        out[:, j] = [index.get(_as_class(task, v), MISSING) for v in values]
    return out


def _as_class(task: Task, value: Any) -> Any:
    if task.name == "needs_reply" and value in ("0", "1", 0, 1):
        return "yes" if str(value) == "1" else "no"
    return value


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Row indices grouped into batches of similar length (little padding); shuffled when ``rng`` is given."""
    order = np.argsort(lengths + (rng.random(len(lengths)) * 3 if rng is not None else 0), kind="stable")
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def pad_batch(ids: list[np.ndarray], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pad to the longest row (rounded up to 8, so few distinct shapes are compiled)."""
    width = max(len(ids[r]) for r in rows)
    width = min(-(-width // 8) * 8, max(8, width))
    out = np.zeros((len(rows), width), dtype=np.int32)
    mask = np.zeros((len(rows), width), dtype=np.int32)
    for i, r in enumerate(rows):
        seq = ids[r][:width]
        out[i, : len(seq)] = seq
        mask[i, : len(seq)] = 1
    return out, mask


class _WarmupLinear:
    """Learning rate: linear warm-up, then linear decay to 0 (the usual BERT fine-tuning schedule)."""

    def __init__(self, peak: float, total: int, warmup: float) -> None:
        import keras

        class Schedule(keras.optimizers.schedules.LearningRateSchedule):
            def __call__(self, step: Any) -> Any:
                from keras import ops

                step = ops.cast(step, "float32")
                warm = max(1.0, warmup * total)
                up = peak * step / warm
                down = peak * ops.maximum(0.0, (total - step) / max(1.0, total - warm))
                return ops.where(step < warm, up, down)

            def get_config(self) -> dict[str, Any]:
                return {}

        self.schedule = Schedule()


def build_model(weights: dict[str, np.ndarray], cfg: TeacherConfig, tasks: tuple[Task, ...] = TASKS) -> Any:
    """ids, mask -> {task: probabilities}, the encoder initialised from the pretrained ``weights``."""
    import keras

    from replyflow.nlp.bert_keras import Bert, load_weights, mean_pool

    ids = keras.Input((None,), dtype="int32", name="input_ids")
    mask = keras.Input((None,), dtype="int32", name="attention_mask")
    bert = Bert(dropout=cfg.dropout, name="bert")
    pooled = keras.layers.Dropout(cfg.dropout)(mean_pool(bert(ids, mask), mask))
    outputs = {t.name: keras.layers.Dense(len(t.classes), activation="softmax", name=t.name)(pooled) for t in tasks}
    model = keras.Model([ids, mask], outputs, name="teacher")
    load_weights(bert, weights)
    return model


def fit(
    model: Any,
    ids: list[np.ndarray],
    labels: np.ndarray,
    cfg: TeacherConfig,
    evaluate: Any = None,
    tasks: tuple[Task, ...] = TASKS,
) -> list[dict[str, Any]]:
    """Fine-tune ``model`` on token ``ids`` with ``labels`` [rows, tasks]; ``evaluate(model) -> dict`` after
    each epoch (validation).  The weights of the best epoch (``evaluate``'s ``score``) are kept."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    lengths = np.array([len(x) for x in ids])
    steps = cfg.epochs * -(-len(ids) // cfg.batch_size)
    encoder_opt = keras.optimizers.AdamW(_WarmupLinear(cfg.learning_rate, steps, cfg.warmup).schedule,
                                         weight_decay=cfg.weight_decay, clipnorm=1.0)
    head_opt = keras.optimizers.AdamW(_WarmupLinear(cfg.head_learning_rate, steps, cfg.warmup).schedule,
                                      weight_decay=cfg.weight_decay)
    encoder_vars = model.get_layer("bert").trainable_variables
    head_vars = [v for t in tasks for v in model.get_layer(t.name).trainable_variables]
    weights = [cfg.loss_weights.get(t.name, 1.0) for t in tasks]

    @tf.function(reduce_retracing=True)
    def step(x_ids: Any, x_mask: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            probs = model([x_ids, x_mask], training=True)
            loss = 0.0
            for j, task in enumerate(tasks):
                target = y[:, j]
                known = tf.cast(target >= 0, tf.float32)
                ce = keras.losses.sparse_categorical_crossentropy(tf.maximum(target, 0), probs[task.name])
                loss += weights[j] * tf.reduce_sum(ce * known) / tf.maximum(tf.reduce_sum(known), 1.0)
        grads = tape.gradient(loss, encoder_vars + head_vars)
        encoder_opt.apply_gradients(zip(grads[: len(encoder_vars)], encoder_vars))
        head_opt.apply_gradients(zip(grads[len(encoder_vars):], head_vars))
        return loss

    history: list[dict[str, Any]] = []
    best: tuple[float, list[np.ndarray]] | None = None
    for epoch in range(cfg.epochs):
        began, total = time.time(), 0.0
        batches = length_batches(lengths, cfg.batch_size, rng)
        for rows in batches:
            x_ids, x_mask = pad_batch(ids, rows)
            total += float(step(x_ids, x_mask, labels[rows]))
        record: dict[str, Any] = {"epoch": epoch + 1, "loss": round(total / len(batches), 4),
                                  "seconds": round(time.time() - began, 1)}
        if evaluate is not None:
            record.update(evaluate(model))
        history.append(record)
        log.info("teacher epoch %s", record)
        score = record.get("score", -record["loss"])
        if best is None or score > best[0]:
            best = (score, model.get_weights())
    if best is not None and evaluate is not None:
        model.set_weights(best[1])
    return history


def predict(model: Any, ids: list[np.ndarray], batch_size: int = 128, tasks: tuple[Task, ...] = TASKS) -> dict[str, np.ndarray]:
    """Class probabilities per task, rows in input order."""
    lengths = np.array([len(x) for x in ids])
    out = {t.name: np.zeros((len(ids), len(t.classes)), dtype=np.float32) for t in tasks}
    for rows in length_batches(lengths, batch_size, None):
        x_ids, x_mask = pad_batch(ids, rows)
        probs = model([x_ids, x_mask], training=False)
        for t in tasks:
            out[t.name][rows] = np.asarray(probs[t.name])
    return out


def config_dict(cfg: TeacherConfig) -> dict[str, Any]:
    return asdict(cfg)
