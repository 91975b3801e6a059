"""Committed model artefacts and the Enricher serving interface."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from replyflow.core.labels import SENTIMENT_CLASSES, TOPIC_CLASSES
from replyflow.nlp.encoder import ENCODER_SHA256
from replyflow.nlp.pipeline import Enricher, get_enricher
from replyflow.nlp.text import PREPROCESSING_VERSION

KEYS = {"clean_text", "sentiment", "sentiment_score", "topic", "topic_score", "entities"}


@pytest.mark.parametrize(("name", "classes"), [("sentiment", SENTIMENT_CLASSES), ("topic", TOPIC_CLASSES)])
def test_manifest(settings, name: str, classes: tuple[str, ...]) -> None:
    d = settings.models_dir / name
    m = json.loads((d / "manifest.json").read_text())
    assert m["classes"] == list(classes)  # label order = settings order
    assert m["preprocessing_version"] == PREPROCESSING_VERSION
    assert m["input"] == "encoder_text" and m["encoder"]["sha256"] == ENCODER_SHA256
    assert len(m["data_sha256"]) == 64 and m["max_len"] > 0
    assert (d / "model.onnx").stat().st_size < 5_000_000  # the heads are small; the encoder comes from PyPI


def test_enricher_on_a_few_tweets(settings) -> None:
    enricher = get_enricher(settings.models_dir)
    assert get_enricher(settings.models_dir) is enricher  # cached per process
    assert enricher.model_version.startswith("sent-") and f"+prep-{PREPROCESSING_VERSION}" in enricher.model_version
    assert f"+enc-{ENCODER_SHA256[:8]}+" in enricher.model_version
    texts = [
        "@united you lost my bags at ORD again, flight 922. Terrible!",
        "Thank you @JetBlue, the crew was amazing, best flight ever!",
        "@SouthwestAir why is there a $75 change fee??",
        "",
        "   ",
        "@delta http://t.co/abc",
    ]
    out = enricher.enrich(texts)
    assert len(out) == len(texts)
    for r in out:
        assert set(r) == KEYS
        assert r["sentiment"] in SENTIMENT_CLASSES and r["topic"] in TOPIC_CLASSES
        assert 0.0 <= r["sentiment_score"] <= 1.0 and 0.0 <= r["topic_score"] <= 1.0
    assert out[0]["sentiment"] == "negative" and out[0]["topic"] == "Baggage Issue"
    assert out[1]["sentiment"] == "positive"
    assert out[2]["topic"] == "Extra Charges"
    for blank in out[3:]:
        assert blank["clean_text"] == "" and blank["sentiment"] == "neutral"
        assert blank["sentiment_score"] < 0.5 and blank["topic_score"] < 0.5
    assert {"text": "@delta", "label": "AIRLINE", "start": 0, "end": 6} in out[5]["entities"]
    assert enricher.enrich([]) == []


def test_batch_size_does_not_change_results(settings) -> None:
    texts = ["lost my luggage", "great crew", "delayed 3 hours", "refund please", "ok"] * 3
    a = Enricher.load(settings.models_dir, batch_size=2).enrich(texts)
    b = get_enricher(settings.models_dir).enrich(texts)
    for x, y in zip(a, b):
        assert x["sentiment"] == y["sentiment"] and x["topic"] == y["topic"]
        assert abs(x["sentiment_score"] - y["sentiment_score"]) < 1e-5


def test_serving_does_not_import_tensorflow(repo_root: Path) -> None:
    code = (
        "import sys; from replyflow.nlp.pipeline import Enricher; "
        f"Enricher.load({str(repo_root / 'models')!r}).enrich(['lost bag']); "
        "bad = [m for m in ('tensorflow', 'keras', 'tf2onnx', 'gensim', 'torch', 'sentence_transformers') "
        "if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo_root, timeout=120)
