"""The gold annotations in ``data/annotations/`` (docs/LABELING.md): loading and validation.

Four files, keyed by ``tweet_id``:

* ``airline.csv``: tweets of the airline dataset with ``topic`` (the 8 classes or ``none``),
  ``needs_reply``, ``addressed`` and the annotator's own ``annotator_sentiment`` (the dataset's
  ``airline_sentiment`` stays the sentiment label), ``split`` (today's split) and ``sample``
  (``random``; training only: ``targeted:<class>`` for keyword-drawn rows, ``rest`` for the
  second round that annotated every remaining training tweet);
* ``live2021.csv``: tweets of the 2021 stream sample, the out-of-time test set, with ``sentiment`` too;
* ``live2021_validation.csv``: the other 2021 tweets, the same fields: where rules that see live
  threads (who a tweet is written to) are chosen, so the 2021 test set is never tuned on;
* ``second_pass.csv``: a blind second annotation of 300 of them, for agreement (Cohen's kappa).

Every file is checked before anything trains on it: allowed labels only, ids present in their
dataset, no duplicate ids, each row's split equal to today's split, targeted rows in training only.
A bad file stops training with an :class:`AnnotationError` naming the file and the row.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from replyflow.core.labels import SENTIMENT_CLASSES, TOPIC_CLASSES

ANNOTATIONS_DIR = Path("annotations")
NO_TOPIC = "none"
TOPIC_LABELS: tuple[str, ...] = (*TOPIC_CLASSES, NO_TOPIC)
BINARY = ("0", "1")
LIVE_FILE = "live_tweets_stream_sample_2021.txt"


class AnnotationError(ValueError):
    """An annotation file breaks a rule; the message names the file and the row."""


@dataclass(frozen=True)
class FileSpec:
    name: str
    columns: Mapping[str, Collection[str] | None]  # column -> allowed values (None: free)


AIRLINE = FileSpec("airline.csv", {
    "tweet_id": None, "split": ("train", "validation", "test"), "sample": None, "topic": TOPIC_LABELS,
    "needs_reply": BINARY, "addressed": BINARY, "annotator_sentiment": SENTIMENT_CLASSES, "batch": None,
})
LIVE = FileSpec("live2021.csv", {
    "tweet_id": None, "topic": TOPIC_LABELS, "needs_reply": BINARY, "addressed": BINARY,
    "sentiment": SENTIMENT_CLASSES, "batch": None,
})
LIVE_VALIDATION = FileSpec("live2021_validation.csv", LIVE.columns)
SECOND_PASS = FileSpec("second_pass.csv", {
    "tweet_id": None, "dataset": ("airline", "live2021"), "topic": TOPIC_LABELS, "needs_reply": BINARY,
    "addressed": BINARY, "sentiment": SENTIMENT_CLASSES, "batch": None,
})


def _read(path: Path, spec: FileSpec) -> pd.DataFrame:
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file missing (see docs/LABELING.md)")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        raise AnnotationError(f"{path}: missing column(s) {', '.join(missing)}")
    for i, row in enumerate(frame.itertuples(index=False), start=2):  # line 1 is the header
        values = row._asdict()
        for column, allowed in spec.columns.items():
            value = values[column]
            if allowed is not None and value not in allowed:
                raise AnnotationError(f"{path} line {i} (tweet {values['tweet_id']}): {column}={value!r} is not one of "
                                      f"{', '.join(allowed)}")
        if not values["tweet_id"].isdigit():
            raise AnnotationError(f"{path} line {i}: tweet_id {values['tweet_id']!r} is not a tweet id")
    duplicated = frame["tweet_id"][frame["tweet_id"].duplicated()]
    if len(duplicated):
        line = int(duplicated.index[0]) + 2
        raise AnnotationError(f"{path} line {line}: tweet {duplicated.iloc[0]} is annotated twice")
    return frame


def _require_known(path: Path, frame: pd.DataFrame, known: Collection[str], what: str) -> None:
    unknown = ~frame["tweet_id"].isin(set(known))
    if unknown.any():
        line = int(unknown.idxmax()) + 2
        raise AnnotationError(f"{path} line {line}: tweet {frame['tweet_id'][unknown].iloc[0]} is not in {what}")


def live_texts(data_dir: Path) -> pd.DataFrame:
    """``tweet_id``, ``text`` of the 2021 stream sample (one line of JSON objects)."""
    raw = (data_dir / LIVE_FILE).read_text(encoding="utf-8")
    items = json.loads("[" + raw + "]")
    frame = pd.DataFrame({"tweet_id": [str(i["tweet_id"]) for i in items], "text": [i["tweet"] for i in items]})
    return frame.drop_duplicates("tweet_id").reset_index(drop=True)


def live_tweet_ids(data_dir: Path) -> set[str]:
    return set(live_texts(data_dir)["tweet_id"])


def load_airline(data_dir: Path, split: pd.DataFrame) -> pd.DataFrame:
    """``airline.csv``, checked against today's split (``tweet_id``, ``split`` of data/splits/split.csv)."""
    path = data_dir / ANNOTATIONS_DIR / AIRLINE.name
    frame = _read(path, AIRLINE)
    today = dict(zip(split["tweet_id"].astype(str), split["split"]))
    _require_known(path, frame, today, "the de-duplicated airline dataset (data/splits/split.csv)")
    for i, (tweet_id, row_split, sample) in enumerate(zip(frame["tweet_id"], frame["split"], frame["sample"]), start=2):
        if today[tweet_id] != row_split:
            raise AnnotationError(f"{path} line {i}: tweet {tweet_id} says split {row_split!r}, but it is in "
                                  f"{today[tweet_id]!r}: a test or validation tweet must never become training data")
        if sample != "random" and not ((sample == "rest" or sample.startswith("targeted:")) and row_split == "train"):
            raise AnnotationError(f"{path} line {i}: sample {sample!r}: only 'random' rows, or 'rest' and "
                                  "'targeted:<class>' rows of the training split, are allowed")
    return frame


def load_live(data_dir: Path) -> pd.DataFrame:
    """``live2021.csv``: the out-of-time test set (never trained or tuned on)."""
    path = data_dir / ANNOTATIONS_DIR / LIVE.name
    frame = _read(path, LIVE)
    _require_known(path, frame, live_tweet_ids(data_dir), f"data/{LIVE_FILE}")
    return frame


def load_live_validation(data_dir: Path, live: pd.DataFrame) -> pd.DataFrame:
    """``live2021_validation.csv``: the other 2021 tweets, where choices about live-style tweets are made.

    Disjoint from the out-of-time test set ``live`` by construction, and checked: a tweet in both
    would let a choice made here leak the test set's answer."""
    path = data_dir / ANNOTATIONS_DIR / LIVE_VALIDATION.name
    frame = _read(path, LIVE_VALIDATION)
    _require_known(path, frame, live_tweet_ids(data_dir), f"data/{LIVE_FILE}")
    overlap = frame["tweet_id"].isin(set(live["tweet_id"]))
    if overlap.any():
        line = int(overlap.idxmax()) + 2
        raise AnnotationError(f"{path} line {line}: tweet {frame['tweet_id'][overlap].iloc[0]} is in the 2021 test set "
                              f"({LIVE.name}); validation rows must be other tweets")
    return frame


def load_second_pass(data_dir: Path, airline: pd.DataFrame, live: pd.DataFrame) -> pd.DataFrame:
    """``second_pass.csv``: every row must be a tweet of the first pass of its dataset."""
    path = data_dir / ANNOTATIONS_DIR / SECOND_PASS.name
    frame = _read(path, SECOND_PASS)
    for dataset, first in (("airline", airline), ("live2021", live)):
        _require_known(path, frame[frame["dataset"] == dataset], set(first["tweet_id"]), f"the first pass of {dataset}")
    return frame


def load_all(data_dir: Path, split: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(airline, live2021, second pass), each validated."""
    airline = load_airline(data_dir, split)
    live = load_live(data_dir)
    return airline, live, load_second_pass(data_dir, airline, live)


def agreement(airline: pd.DataFrame, live: pd.DataFrame, second: pd.DataFrame) -> dict[str, float | int]:
    """Cohen's kappa per field between the first pass and the blind second pass (docs/LABELING.md)."""
    from sklearn.metrics import cohen_kappa_score

    first = pd.concat([airline.rename(columns={"annotator_sentiment": "sentiment"}), live])
    both = second.merge(first, on="tweet_id", suffixes=("_second", "_first"))
    out: dict[str, float | int] = {"rows_second_pass": len(both)}
    for field in ("topic", "needs_reply", "addressed", "sentiment"):
        out[f"kappa_{field}"] = round(float(cohen_kappa_score(both[f"{field}_first"], both[f"{field}_second"])), 3)
        out[f"agreement_{field}"] = round(float((both[f"{field}_first"] == both[f"{field}_second"]).mean()), 3)
    return out
