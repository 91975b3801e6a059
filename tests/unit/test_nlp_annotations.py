"""The gold annotation files: every committed file is valid, and a bad one is refused with file and row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from replyflow.nlp.annotations import AnnotationError, agreement, load_airline, load_all, load_live_validation

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"


@pytest.fixture(scope="module")
def split() -> pd.DataFrame:
    return pd.read_csv(DATA / "splits" / "split.csv", dtype=str)


def test_committed_annotations_are_valid(split: pd.DataFrame) -> None:
    airline, live, second = load_all(DATA, split)
    assert len(airline) >= 3000 and len(live) >= 500 and len(second) >= 300
    gold = airline[airline["topic"] != "none"]
    assert gold["topic"].value_counts().min() >= 100  # at least 100 gold rows per class
    assert set(airline[airline["sample"] != "random"]["split"]) == {"train"}  # targeted and rest rows: training only
    kappa = agreement(airline, live, second)
    assert kappa["rows_second_pass"] == len(second)
    validation = load_live_validation(DATA, live)
    assert len(validation) + len(live) == 1316  # every 2021 tweet is in exactly one of the two


def test_a_2021_test_tweet_in_the_validation_file_is_refused(tmp_path: Path) -> None:
    live = pd.read_csv(DATA / "annotations" / "live2021.csv", dtype=str, keep_default_na=False)
    rows = pd.read_csv(DATA / "annotations" / "live2021_validation.csv", dtype=str, keep_default_na=False).head(3)
    rows = pd.concat([rows, live.head(1)], ignore_index=True)
    (tmp_path / "annotations").mkdir()
    rows.to_csv(tmp_path / "annotations" / "live2021_validation.csv", index=False)
    (tmp_path / "live_tweets_stream_sample_2021.txt").write_text(
        (DATA / "live_tweets_stream_sample_2021.txt").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(AnnotationError, match="live2021_validation.csv line 5: .* is in the 2021 test set"):
        load_live_validation(tmp_path, live)


def _copy(tmp_path: Path, rows: pd.DataFrame) -> Path:
    (tmp_path / "annotations").mkdir()
    rows.to_csv(tmp_path / "annotations" / "airline.csv", index=False)
    return tmp_path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"topic": "Lost Luggage"}, "topic='Lost Luggage' is not one of"),
        ({"needs_reply": "yes"}, "needs_reply='yes'"),
        ({"tweet_id": "123"}, "is not in the de-duplicated airline dataset"),
        ({"split": "train"}, "a test or validation tweet must never become training data"),
        ({"sample": "targeted:Extra Charges"}, "only 'random' rows"),
    ],
)
def test_a_bad_row_is_refused_naming_file_and_line(tmp_path: Path, split: pd.DataFrame, change: dict, message: str) -> None:
    rows = pd.read_csv(DATA / "annotations" / "airline.csv", dtype=str, keep_default_na=False)
    rows = rows[rows["split"] == "test"].head(5).reset_index(drop=True)
    for column, value in change.items():
        rows.loc[3, column] = value
    with pytest.raises(AnnotationError, match=message) as info:
        load_airline(_copy(tmp_path, rows), split)
    assert "airline.csv line 5" in str(info.value)


def test_duplicate_ids_are_refused(tmp_path: Path, split: pd.DataFrame) -> None:
    rows = pd.read_csv(DATA / "annotations" / "airline.csv", dtype=str, keep_default_na=False).head(4)
    rows = pd.concat([rows, rows.iloc[[1]]], ignore_index=True)
    with pytest.raises(AnnotationError, match="line 6: tweet .* is annotated twice"):
        load_airline(_copy(tmp_path, rows), split)
