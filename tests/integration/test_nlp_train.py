"""Tiny end-to-end training: every artefact is produced, has a manifest and loads for serving."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from replyflow.core.labels import SENTIMENT_CLASSES, TOPIC_CLASSES
from replyflow.nlp.encoder import ENCODER_SHA256


@pytest.mark.slow
def test_tiny_training_produces_loadable_artefacts(settings, repo_root: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    full = pd.read_csv(repo_root / "data" / "airline_tweets_sentiment.csv", dtype={"tweet_id": str})
    full.sample(n=600, random_state=0).to_csv(data / "airline_tweets_sentiment.csv", index=False)
    s = settings.model_copy(update={"data_dir": data, "models_dir": tmp_path / "models",
                                    "reports_dir": tmp_path / "reports"})

    from replyflow.nlp.train import train_all

    train_all(s, epochs=1)

    assert (data / "splits" / "split.csv").exists()
    split = pd.read_csv(data / "splits" / "split.csv", dtype={"tweet_id": str})
    assert set(split["split"]) == {"train", "validation", "test"} and split["tweet_id"].is_unique
    assert (s.models_dir / "lda" / "labels.csv").exists() and (s.models_dir / "lda" / "topics.json").exists()
    for name, classes in (("sentiment", SENTIMENT_CLASSES), ("topic", TOPIC_CLASSES)):
        d = s.models_dir / name
        manifest = json.loads((d / "manifest.json").read_text())
        assert manifest["classes"] == list(classes) and manifest["epochs_run"] == 1
        assert (d / "model.onnx").exists() and manifest["encoder"]["sha256"] == ENCODER_SHA256
        # one ONNX file per model, however many ensemble members it averages
        assert len(manifest["members"]) == manifest["config"]["ensemble"] >= 1

    from replyflow.nlp.pipeline import Enricher

    out = Enricher.load(s.models_dir).enrich(["@united lost my bag", ""])
    assert [r["sentiment"] in SENTIMENT_CLASSES for r in out] == [True, True]
    shutil.rmtree(tmp_path / "models")
