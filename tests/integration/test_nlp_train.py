"""Tiny end-to-end training (quick mode: one epoch on a small sample): every artefact is produced,
carries its manifest and loads for serving; agents' corrections join the training rows only."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from replyflow.core.labels import SENTIMENT_CLASSES
from replyflow.nlp.annotations import AnnotationError
from replyflow.nlp.tasks import TASKS


@pytest.mark.slow
def test_quick_training_produces_loadable_artefacts(settings, tmp_path: Path) -> None:
    s = settings.model_copy(update={"models_dir": tmp_path / "models", "reports_dir": tmp_path / "reports"})

    from replyflow.nlp.train import train_all

    train_all(s, only=["teacher", "student"], quick=True)

    for name in ("teacher", "student"):
        manifest = json.loads((s.models_dir / name / "manifest.json").read_text())
        assert manifest["classes"] == {t.name: list(t.classes) for t in TASKS}
        assert len(manifest["history"]) == 1 and manifest["n_train"] == 240
        assert all(0.05 <= t <= 20 for t in manifest["temperatures"].values())
        assert set(manifest["validation"]) >= {"sentiment_accuracy", "topic_gold8_macro_f1", "needs_reply_f1"}
    assert (s.models_dir / "tokenizer.json").exists() and (s.models_dir / "student" / "vocab.npy").exists()

    from replyflow.nlp.pipeline import Enricher

    for threshold in (0.0, 0.8):
        out = Enricher.load(s.models_dir, threshold).enrich(["@united lost my bag", ""])
        assert [r["sentiment"] in SENTIMENT_CLASSES for r in out] == [True, True]


def _corrections(path: Path, rows: list[dict[str, str]]) -> Path:
    pd.DataFrame(rows, columns=["tweet_id", "text", "sentiment", "topic", "needs_reply", "corrected_by",
                                "corrected_at"]).to_csv(path, index=False)
    return path


def test_corrections_join_training_only(settings, tmp_path: Path) -> None:
    from replyflow.nlp.data import load_split
    from replyflow.nlp.train import training_frame

    split = load_split(settings)
    train_id = split[split["split"] == "train"]["tweet_id"].iloc[0]
    test_id = split[split["split"] == "test"]["tweet_id"].iloc[0]
    file = _corrections(tmp_path / "c.csv", [
        {"tweet_id": train_id, "text": "corrected", "sentiment": "neutral", "topic": "Seating Preferences",
         "needs_reply": "true", "corrected_by": "ana", "corrected_at": "2026-11-30T10:00:00Z"},
        {"tweet_id": test_id, "text": "leak", "sentiment": "positive", "topic": "", "needs_reply": "false",
         "corrected_by": "ana", "corrected_at": "2026-11-30T10:00:00Z"},
        {"tweet_id": "999999999999", "text": "a new production tweet", "sentiment": "", "topic": "",
         "needs_reply": "false", "corrected_by": "bo", "corrected_at": "2026-11-30T11:00:00Z"},
    ])
    base = training_frame(settings)
    frame = training_frame(settings, file)
    assert len(frame) == len(base) + 1  # the test tweet's correction is dropped, the training one replaces its row
    corrected = frame[frame["tweet_id"] == train_id]
    assert corrected["topic"].tolist() == ["Seating Preferences"] and corrected["split"].tolist() == ["train"]
    assert frame[frame["tweet_id"] == test_id]["topic"].tolist() == base[base["tweet_id"] == test_id]["topic"].tolist()
    new = frame[frame["tweet_id"] == "999999999999"]
    assert new[["split", "topic", "needs_reply"]].values.tolist() == [["train", "none", "0"]]  # empty topic = none
    with pytest.raises(AnnotationError, match="c.csv line 2: topic='Lost bag'"):
        training_frame(settings, _corrections(tmp_path / "c.csv", [
            {"tweet_id": "1", "text": "x", "sentiment": "", "topic": "Lost bag", "needs_reply": "true", "corrected_by": "a",
             "corrected_at": ""}]))
