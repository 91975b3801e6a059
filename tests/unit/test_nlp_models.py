"""The committed model artefacts and the Enricher serving interface (student, cascade, teacher)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from replyflow.core.labels import SENTIMENT_CLASSES, TOPIC_CLASSES
from replyflow.nlp.models import ModelError, OnnxModel, WordPieces, artifact
from replyflow.nlp.pipeline import Enricher, confidence, get_enricher
from replyflow.nlp.tasks import TASKS
from replyflow.nlp.text import PREPROCESSING_VERSION

KEYS = {"clean_text", "sentiment", "sentiment_score", "topic", "topic_score", "needs_reply_score", "entities"}
TEXTS = [
    "@united you lost my bags at ORD again, flight 922. Terrible!",
    "Thank you @JetBlue, the crew was amazing, best flight ever!",
    "@SouthwestAir why is there a $75 change fee??",
    "",
    "   ",
    "@delta http://t.co/abc",
]


@pytest.mark.parametrize("name", ["student", "teacher"])
def test_manifest(settings, name: str) -> None:
    folder = settings.models_dir / name
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["classes"] == {t.name: list(t.classes) for t in TASKS}
    assert manifest["preprocessing_version"] == PREPROCESSING_VERSION
    assert set(manifest["temperatures"]) == {t.name for t in TASKS}
    assert len(manifest["data_sha256"]) == 64 and len(manifest["annotations_sha256"]) == 64
    assert artifact(folder).stat().st_size < 30_000_000  # small enough to ship in the repository


def test_enricher_on_a_few_tweets(settings) -> None:
    enricher = get_enricher(settings.models_dir, 0.8)
    assert get_enricher(settings.models_dir, 0.8) is enricher  # cached per process and threshold
    assert enricher.model_version.startswith("student-") and f"+prep-{PREPROCESSING_VERSION}" in enricher.model_version
    out = enricher.enrich(TEXTS)
    assert len(out) == len(TEXTS)
    for r in out:
        assert set(r) == KEYS
        assert r["sentiment"] in SENTIMENT_CLASSES and (r["topic"] is None or r["topic"] in TOPIC_CLASSES)
        assert 0.0 <= r["sentiment_score"] <= 1.0 and 0.0 <= r["topic_score"] <= 1.0 and 0.0 <= r["needs_reply_score"] <= 1.0
    assert out[0]["sentiment"] == "negative" and out[0]["topic"] == "Baggage Issue" and out[0]["needs_reply_score"] > 0.5
    assert out[1]["sentiment"] == "positive" and out[1]["needs_reply_score"] < 0.5
    assert out[2]["topic"] == "Extra Charges"
    assert {"text": "@delta", "label": "AIRLINE", "start": 0, "end": 6} in out[5]["entities"]
    assert out[3]["clean_text"] == "" and enricher.enrich([]) == []


def test_the_cascade_sends_only_unsure_tweets_to_the_teacher(settings) -> None:
    student_only = Enricher.load(settings.models_dir, cascade_threshold=0.0)
    teacher_only = Enricher.load(settings.models_dir, cascade_threshold=1.0)
    assert student_only.teacher is None  # not even loaded
    a, _ = student_only.probabilities(TEXTS)
    b, all_rows = teacher_only.probabilities(TEXTS)
    assert all_rows.all()
    mixed = Enricher.load(settings.models_dir, cascade_threshold=0.9)
    c, escalated = mixed.probabilities(TEXTS)
    np.testing.assert_array_equal(escalated, confidence(a) < 0.9)
    for name in a:
        np.testing.assert_allclose(c[name][~escalated], a[name][~escalated], atol=1e-6)
        np.testing.assert_allclose(c[name][escalated], b[name][escalated], atol=1e-6)


def test_batching_does_not_change_results(settings) -> None:
    tokenizer = WordPieces(settings.models_dir / "tokenizer.json")
    pieces = tokenizer.encode(["lost my luggage", "great crew", "delayed 3 hours and nobody answers the phone",
                               "refund please", "ok"] * 3)
    for name in ("student", "teacher"):
        model = OnnxModel.load(settings.models_dir / name, tokenizer)
        small, large = model.predict(pieces, batch_size=2), model.predict(pieces, batch_size=256)
        for task in small:
            np.testing.assert_allclose(small[task], large[task], atol=1e-5)


def test_the_int8_teacher_is_reproducible_per_tweet_and_close_to_float(settings) -> None:
    """Serving runs the teacher with int8 MatMuls; a tweet's result must not depend on the tweets beside it."""
    tokenizer = WordPieces(settings.models_dir / "tokenizer.json")
    texts = ["lost my luggage", "great crew", "delayed 3 hours and nobody answers the phone", "refund please", "ok"]
    pieces = tokenizer.encode(texts)
    int8 = OnnxModel.load(settings.models_dir / "teacher", tokenizer, int8=True)
    alone = [int8.predict([p]) for p in pieces]
    together = int8.predict(pieces[::-1] + pieces, batch_size=64)  # companions and order must not matter
    float32 = OnnxModel.load(settings.models_dir / "teacher", tokenizer).predict(pieces)
    for task in together:
        for i in range(len(texts)):
            np.testing.assert_array_equal(together[task][len(texts) + i], alone[i][task][0])
            np.testing.assert_array_equal(together[task][len(texts) - 1 - i], alone[i][task][0])
        assert np.abs(together[task][len(texts):] - float32[task]).max() < 0.15
    assert int8.int8 and "-int8@" in Enricher.load(settings.models_dir, 0.45).model_version


def test_a_model_that_does_not_match_this_code_is_refused(settings, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(settings.models_dir / "student", models / "student")
    shutil.copy(settings.models_dir / "tokenizer.json", models / "tokenizer.json")
    tokenizer = WordPieces(models / "tokenizer.json")
    path = models / "student" / "manifest.json"
    good = json.loads(path.read_text())
    for change, message in ((("preprocessing_version", "0"), "preprocessing"), (("tokenizer_sha256", "0" * 64), "tokenizer"),
                            (("artifact_sha256", "0" * 64), "does not match its manifest")):
        path.write_text(json.dumps({**good, change[0]: change[1]}))
        with pytest.raises(ModelError, match=message):
            OnnxModel.load(models / "student", tokenizer)


def test_serving_does_not_import_tensorflow(repo_root: Path) -> None:
    code = (
        "import sys; from replyflow.nlp.pipeline import Enricher; "
        f"Enricher.load({str(repo_root / 'models')!r}, 0.8).enrich(['lost bag']); "
        "bad = [m for m in ('tensorflow', 'keras', 'tf2onnx', 'gensim', 'torch', 'sentence_transformers') "
        "if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo_root, timeout=120)


def test_policy_defaults_are_the_thresholds_chosen_for_these_models(repo_root: Path) -> None:
    """`replyflow train --only policy` writes models/policy.json; the settings' defaults must follow it."""
    from replyflow.core.policy import PolicyConfig
    from replyflow.settings import Settings

    chosen = json.loads((repo_root / "models" / "policy.json").read_text())
    fields = Settings.model_fields
    for name in ("reply_min_needs_reply", "reply_min_topic_confidence"):
        assert fields[name].default == chosen[name] == getattr(PolicyConfig(), name), name
    assert f"cascade threshold {fields['nlp_cascade_threshold'].default:g}" in chosen["chosen_on"]


def test_the_int8_teacher_graph_is_cached_and_rebuilt_for_other_weights(settings, tmp_path: Path, monkeypatch) -> None:
    """Workers reuse the quantized graph instead of quantizing at every start; other weights get their own file."""
    from replyflow.nlp import graph, models

    calls = []
    quantize = graph.quantize_matmuls
    monkeypatch.setattr(graph, "quantize_matmuls", lambda model: calls.append(1) or quantize(model))
    path = models.artifact(settings.models_dir / "teacher")
    digest = models.file_sha256(path)
    first = models._int8_teacher_graph(path, digest, tmp_path)
    again = models._int8_teacher_graph(path, digest, tmp_path)
    assert first == again and len(calls) == 1
    assert [p.name.startswith("teacher-int8-") for p in tmp_path.iterdir()] == [True]
    models._int8_teacher_graph(path, "0" * 64, tmp_path)  # stands for retrained weights
    assert len(calls) == 2 and len(list(tmp_path.iterdir())) == 2


def test_an_unwritable_cache_only_costs_time(settings, tmp_path: Path) -> None:
    from replyflow.nlp import models

    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    path = models.artifact(settings.models_dir / "teacher")
    assert models._int8_teacher_graph(path, models.file_sha256(path), blocked / "cache")  # still builds it
