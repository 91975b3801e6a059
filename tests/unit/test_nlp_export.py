"""Training and serving compute the same thing: the Keras models against the ONNX graphs serving runs.

The teacher is trained as a Keras BERT and served through the ONNX graph built from its weights; the
student is trained as a Keras BiLSTM and served through a hand-written ONNX graph (the LSTM op with
``sequence_lens``).  These tests put the same weights through both and compare the numbers.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from replyflow.nlp.calibration import fit_temperature, reliability
from replyflow.nlp.models import calibrate

tf_keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def pretrained() -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    from replyflow.nlp.encoder import WEIGHTS_FILE, resolve_encoder_dir

    return load_file(str(resolve_encoder_dir() / WEIGHTS_FILE))


def test_keras_teacher_equals_its_onnx_export(pretrained: dict[str, np.ndarray]) -> None:
    from replyflow.nlp import teacher
    from replyflow.nlp.bert_keras import export_weights
    from replyflow.nlp.graph import build_classifier_onnx
    from replyflow.nlp.tasks import TASKS

    model = teacher.build_model(pretrained, teacher.TeacherConfig())
    rng = np.random.default_rng(0)
    for task in TASKS:  # heads with non-trivial weights
        layer = model.get_layer(task.name)
        layer.set_weights([w + rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in layer.get_weights()])
    ids = [np.array([101, 2026, 4524, 2003, 2439, 999, 102], np.int32), np.array([101, 7592, 102], np.int32)]
    keras_probs = teacher.predict(model, ids)
    heads = {t.name: tuple(model.get_layer(t.name).get_weights()) for t in TASKS}
    graph = build_classifier_onnx(export_weights(model.get_layer("bert"), pretrained), heads)
    session = ort.InferenceSession(graph.SerializeToString())
    x = np.zeros((2, 7), np.int64)
    x[0], x[1, :3] = ids[0], ids[1]
    outputs = dict(zip([o.name for o in session.get_outputs()],
                       session.run(None, {"input_ids": x, "attention_mask": (x > 0).astype(np.int64)})))
    for task in TASKS:
        assert np.abs(outputs[task.name] - keras_probs[task.name]).max() < 1e-4


def test_export_weights_round_trip(pretrained: dict[str, np.ndarray]) -> None:
    from replyflow.nlp import teacher
    from replyflow.nlp.bert_keras import export_weights

    model = teacher.build_model(pretrained, teacher.TeacherConfig())
    back = export_weights(model.get_layer("bert"), pretrained)
    assert all(np.array_equal(back[k], pretrained[k]) for k in pretrained)


def test_keras_student_equals_its_onnx_graph_whatever_the_padding() -> None:
    from replyflow.nlp import student

    cfg = student.StudentConfig(lstm_units=16, dense_units=8)
    rng = np.random.default_rng(1)
    embeddings = rng.normal(size=(50, 128)).astype("float32")
    embeddings[0] = 0
    model = student.build_model(embeddings, cfg)
    model.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in model.get_weights()])
    seqs = [rng.integers(2, 50, n) for n in (3, 7, 5, 2)]
    keras_probs = {k: np.asarray(v) for k, v in model(student.pad(seqs, np.arange(4)), training=False).items()}
    session = ort.InferenceSession(student.build_student_onnx(model).SerializeToString())
    wide = np.zeros((4, 12), np.int64)  # more padding than Keras saw: must not matter
    for i, s in enumerate(seqs):
        wide[i, : len(s)] = s
    out = dict(zip([o.name for o in session.get_outputs()],
                   session.run(None, {"ids": wide, "lengths": np.array([len(s) for s in seqs], np.int32)})))
    for name, probs in keras_probs.items():
        assert np.abs(out[name] - probs).max() < 1e-5


def test_vocabulary_keeps_seen_pieces_and_maps_the_rest_to_unknown() -> None:
    from replyflow.nlp import student

    table = student.build_vocab([np.array([101, 2000, 3000, 102]), np.array([101, 3000, 102])], 30522)
    assert table[0] == student.PAD and table[4000] == student.UNK and table[student.MASK_PIECE] == student.UNK
    assert len({table[101], table[102], table[2000], table[3000]}) == 4 and table[2000] >= 2


def test_augment_keeps_cls_and_sep_and_never_grows() -> None:
    from replyflow.nlp import student

    rng = np.random.default_rng(0)
    pieces = np.array([101, *range(2000, 2020), 102])
    for _ in range(50):
        copy = student.augment(pieces, rng)
        assert copy[0] == 101 and copy[-1] == 102 and len(copy) <= len(pieces)


def test_temperature_scaling_recovers_an_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1, (4000, 3))
    true = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(3, p=p) for p in true])
    overconfident = calibrate(true.astype(np.float32), 1 / 3.0)  # logits x 3
    t = fit_temperature(overconfident, labels)
    assert 2.5 < t < 3.5
    assert reliability(calibrate(overconfident, t), labels)["ece"] < reliability(overconfident, labels)["ece"]
