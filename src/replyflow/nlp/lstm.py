"""Keras Embedding + BiLSTM text classifier: build, fit (early stopping on validation
macro-F1), export to ONNX, write the manifest.  Training only: serving never imports this
module (it would pull in TensorFlow); it loads the ONNX file with ``replyflow.nlp.models``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from replyflow.nlp.models import MANIFEST, ONNX_FILE, OOV, PAD, VOCAB, encode, file_hash8
from replyflow.nlp.text import PREPROCESSING_VERSION

log = logging.getLogger(__name__)


@dataclass
class LstmConfig:
    """Hyper-parameters; small on purpose (artefacts are committed to git)."""

    max_vocab: int = 10_000
    min_count: int = 2
    max_len: int = 30
    embed_dim: int = 64
    lstm_units: int = 64
    dropout: float = 0.3
    batch_size: int = 64
    learning_rate: float = 2e-3
    patience: int = 3
    class_weight_power: float = 1.0  # 1 = "balanced", 0.5 = sqrt-balanced, 0 = none
    embed_skip: bool = False  # also max-pool the embeddings themselves and concatenate (bag-of-words path)
    ensemble: int = 1  # members trained with seeds seed, seed+1, ...; softmax outputs averaged in ONE model


def build_vocab(texts: list[str], max_vocab: int, min_count: int) -> dict[str, int]:
    """Most frequent training tokens (ties broken alphabetically, so the vocab is deterministic)."""
    counts = Counter(t for text in texts for t in text.split())
    ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    vocab = {"<pad>": PAD, "<oov>": OOV}
    for w in ranked[: max_vocab - 2]:
        vocab[w] = len(vocab)
    return vocab


def class_weights(y: np.ndarray, n_classes: int, power: float) -> dict[int, float]:
    counts = np.bincount(y, minlength=n_classes).astype(float)
    w = (len(y) / (n_classes * np.maximum(counts, 1))) ** power
    return {i: float(w[i]) for i in range(n_classes)}


def _keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    return keras


def build_model(n_vocab: int, n_classes: int, cfg: LstmConfig, name: str = "lstm") -> Any:
    """Embedding -> BiLSTM (all steps) -> global max pool [+ max-pooled embeddings] -> dense softmax.

    Max pooling over the LSTM outputs makes the front padding harmless without a
    mask (masks complicate the ONNX export)."""
    keras = _keras()
    inp = keras.Input(shape=(cfg.max_len,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(n_vocab, cfg.embed_dim, name="embedding")(inp)
    emb = x = keras.layers.SpatialDropout1D(0.2)(x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(cfg.lstm_units, return_sequences=True))(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    if cfg.embed_skip:
        x = keras.layers.Concatenate()([x, keras.layers.GlobalMaxPooling1D()(emb)])
    x = keras.layers.Dropout(cfg.dropout)(x)
    out = keras.layers.Dense(n_classes, activation="softmax", name="probs")(x)
    model = keras.Model(inp, out, name=name)
    model.compile(
        optimizer=keras.optimizers.Adam(cfg.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _macro_f1_callback(x_val: np.ndarray, y_val: np.ndarray) -> Any:
    keras = _keras()

    class ValMacroF1(keras.callbacks.Callback):
        """Puts val_macro_f1 into the epoch logs (early stopping watches it)."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            pred = self.model.predict(x_val, batch_size=512, verbose=0).argmax(1)
            f1 = f1_score(y_val, pred, average="macro")
            if logs is not None:
                logs["val_macro_f1"] = f1
            log.info("epoch %d: val_macro_f1=%.4f val_acc=%.4f", epoch + 1, f1, accuracy_score(y_val, pred))

    return ValMacroF1()


def average_models(members: list[Any], max_len: int) -> Any:
    """ONE Keras model whose output is the mean of the members' softmax outputs (exported as one ONNX file)."""
    keras = _keras()
    if len(members) == 1:
        return members[0]
    inp = keras.Input(shape=(max_len,), dtype="int32", name="tokens")
    out = keras.layers.Average(name="probs")([m(inp) for m in members])
    return keras.Model(inp, out, name="ensemble")


def train_classifier(
    name: str,
    classes: list[str],
    train: tuple[list[str], list[str]],
    val: tuple[list[str], list[str]],
    out_dir: Path,
    seed: int,
    epochs: int,
    provenance: dict[str, Any],
    cfg: LstmConfig | None = None,
    input_kind: str = "clean_text",
) -> dict[str, Any]:
    """Train one classifier on (texts, labels) (texts in the form named by ``input_kind``), export ONNX + vocab + manifest to ``out_dir``."""
    cfg = cfg or LstmConfig()
    keras = _keras()
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    tf.config.threading.set_intra_op_parallelism_threads(2)
    index = {c: i for i, c in enumerate(classes)}
    vocab = build_vocab(train[0], cfg.max_vocab, cfg.min_count)
    x_tr, y_tr = encode(train[0], vocab, cfg.max_len), np.array([index[c] for c in train[1]])
    x_va, y_va = encode(val[0], vocab, cfg.max_len), np.array([index[c] for c in val[1]])
    weights = class_weights(y_tr, len(classes), cfg.class_weight_power)
    members, member_info = [], []
    t0 = time.time()
    for i in range(max(1, cfg.ensemble)):
        keras.utils.set_random_seed(seed + i)
        member = build_model(len(vocab), len(classes), cfg, name=f"member{i}")
        stop = keras.callbacks.EarlyStopping(
            monitor="val_macro_f1", mode="max", patience=cfg.patience, restore_best_weights=True
        )
        hist = member.fit(
            x_tr, y_tr, validation_data=(x_va, y_va), epochs=epochs, batch_size=cfg.batch_size,
            class_weight=weights, callbacks=[_macro_f1_callback(x_va, y_va), stop], verbose=2, shuffle=True,
        )
        p = member.predict(x_va, batch_size=512, verbose=0).argmax(1)
        members.append(member)
        member_info.append({
            "seed": seed + i,
            "epochs_run": len(hist.history["loss"]),
            "best_epoch": int(np.argmax(hist.history["val_macro_f1"])) + 1,
            "validation": {
                "accuracy": round(float(accuracy_score(y_va, p)), 4),
                "macro_f1": round(float(f1_score(y_va, p, average="macro")), 4),
            },
        })
    train_seconds = time.time() - t0
    model = average_models(members, cfg.max_len)
    pred = model.predict(x_va, batch_size=512, verbose=0).argmax(1)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / ONNX_FILE
    model.export(str(onnx_path), format="onnx", verbose=False)
    (out_dir / VOCAB).write_text(json.dumps(vocab, ensure_ascii=False, separators=(",", ":")) + "\n")
    manifest = {
        "name": name,
        "classes": classes,
        "max_len": cfg.max_len,
        "padding": "pre",
        "vocab_size": len(vocab),
        "preprocessing_version": PREPROCESSING_VERSION,
        "input": input_kind,
        "config": asdict(cfg),
        "class_weights": {classes[i]: round(w, 4) for i, w in weights.items()},
        "seed": seed,
        "epochs_run": max(m["epochs_run"] for m in member_info),
        "best_epoch": member_info[0]["best_epoch"],
        "members": member_info,
        "train_seconds": round(train_seconds, 1),
        "n_train": len(y_tr),
        "n_validation": len(y_va),
        "validation": {
            "accuracy": round(float(accuracy_score(y_va, pred)), 4),
            "macro_f1": round(float(f1_score(y_va, pred, average="macro")), 4),
        },
        "onnx_sha256_8": file_hash8(onnx_path),
        "versions": {"keras": keras.__version__, "tensorflow": tf.__version__},
        **provenance,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("%s: validation %s, %d epochs in %.0f s -> %s", name, manifest["validation"],
             manifest["epochs_run"], train_seconds, out_dir)
    return manifest
