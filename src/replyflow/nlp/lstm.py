"""Keras BiLSTM classifier heads over the frozen pretrained encoder: build, fit (early stopping
on validation macro-F1), export to ONNX, write the manifest.  Training only: serving never
imports this module (it would pull in TensorFlow); it loads the ONNX file with
``replyflow.nlp.heads``.

The input is the encoder's last hidden state per word piece (``nlp/encoder.py``), computed
for the data set with the same onnxruntime graph serving runs, so the heads train on
exactly what they see in production.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from replyflow.nlp.encoder import HIDDEN, MAX_LEN
from replyflow.nlp.heads import MANIFEST, ONNX_FILE, file_hash8
from replyflow.nlp.text import PREPROCESSING_VERSION

log = logging.getLogger(__name__)


@dataclass
class LstmConfig:
    """Hyper-parameters of one BiLSTM head over the frozen encoder's output (small: committed to git)."""

    lstm_units: int = 64
    spatial_dropout: float = 0.1
    dropout: float = 0.3
    batch_size: int = 32
    learning_rate: float = 1e-3
    patience: int = 3
    class_weight_power: float = 0.25  # 1 = "balanced", 0.5 = sqrt-balanced, 0 = none
    ensemble: int = 1  # members trained with seeds seed, seed+1, ...; softmax outputs averaged in ONE model


def class_weights(y: np.ndarray, n_classes: int, power: float) -> dict[int, float]:
    counts = np.bincount(y, minlength=n_classes).astype(float)
    w = (len(y) / (n_classes * np.maximum(counts, 1))) ** power
    return {i: float(w[i]) for i in range(n_classes)}


def _keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    return keras


def build_model(n_classes: int, cfg: LstmConfig, name: str = "lstm") -> Any:
    """Encoder hidden states -> SpatialDropout -> BiLSTM (all steps) -> global max pool -> dense softmax.

    The encoder zeroes padded positions and the max pool over the LSTM outputs keeps the
    head free of masks (masks complicate the ONNX export)."""
    keras = _keras()
    inp = keras.Input(shape=(MAX_LEN, HIDDEN), dtype="float32", name="hidden")
    x = keras.layers.SpatialDropout1D(cfg.spatial_dropout)(inp)
    x = keras.layers.Bidirectional(keras.layers.LSTM(cfg.lstm_units, return_sequences=True))(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
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


def average_models(members: list[Any]) -> Any:
    """ONE Keras model whose output is the mean of the members' softmax outputs (exported as one ONNX file)."""
    keras = _keras()
    if len(members) == 1:
        return members[0]
    inp = keras.Input(shape=(MAX_LEN, HIDDEN), dtype="float32", name="hidden")
    out = keras.layers.Average(name="probs")([m(inp) for m in members])
    return keras.Model(inp, out, name="ensemble")


def train_classifier(
    name: str,
    classes: list[str],
    train: tuple[np.ndarray, list[str]],
    val: tuple[np.ndarray, list[str]],
    out_dir: Path,
    seed: int,
    epochs: int,
    provenance: dict[str, Any],
    cfg: LstmConfig | None = None,
) -> dict[str, Any]:
    """Train one head on (encoder hidden states, labels); export ONNX + manifest to ``out_dir``.

    ``provenance`` goes into the manifest as is (data and split hashes, label source, encoder)."""
    cfg = cfg or LstmConfig()
    keras = _keras()
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(2)
    tf.config.threading.set_intra_op_parallelism_threads(2)
    index = {c: i for i, c in enumerate(classes)}
    x_tr, y_tr = train[0].astype(np.float32), np.array([index[c] for c in train[1]])
    x_va, y_va = val[0].astype(np.float32), np.array([index[c] for c in val[1]])
    weights = class_weights(y_tr, len(classes), cfg.class_weight_power)
    members, member_info = [], []
    t0 = time.time()
    for i in range(max(1, cfg.ensemble)):
        keras.utils.set_random_seed(seed + i)
        member = build_model(len(classes), cfg, name=f"member{i}")
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
    model = average_models(members)
    pred = model.predict(x_va, batch_size=512, verbose=0).argmax(1)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / ONNX_FILE
    model.export(str(onnx_path), format="onnx", verbose=False)
    manifest = {
        "name": name,
        "classes": classes,
        "max_len": MAX_LEN,
        "padding": "post (zeroed by the encoder)",
        "preprocessing_version": PREPROCESSING_VERSION,
        "input": "encoder_text",
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
