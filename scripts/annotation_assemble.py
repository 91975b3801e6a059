"""Assemble the annotators' batch outputs into data/annotations/ (run once, after the annotation).

    .venv/bin/python scripts/annotation_assemble.py WORK_DIR
    .venv/bin/python scripts/annotation_assemble.py WORK_DIR --live-validation   # out/V1..V3 -> live2021_validation.csv

WORK_DIR is the folder scripts/annotation_batches.py wrote (``sample.csv``, ``batches/``) with the
annotators' outputs in ``out/NN.csv`` (first pass, batch NN) and ``out/B1.csv``, ``out/B2.csv``
(the blind second pass over ``blind_sample.csv``).  Writes ``airline.csv``, ``live2021.csv`` and
``second_pass.csv``; every row names its batch (one annotator session per batch).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CODES = {"BAG": "Baggage Issue", "CXP": "Customer Experience", "DLY": "Delay and Customer Service",
         "CHG": "Extra Charges", "ONL": "Online Booking", "RFD": "Reschedule and Refund", "RES": "Reservation Issue",
         "SEA": "Seating Preferences", "none": "none"}


def _outputs(work: Path, names: list[str]) -> pd.DataFrame:
    frames = []
    for name in names:
        frame = pd.read_csv(work / "out" / f"{name}.csv", dtype=str)
        frames.append(frame.assign(batch=name))
    out = pd.concat(frames, ignore_index=True)
    out["topic"] = out["topic"].map(CODES)
    assert out["topic"].notna().all()
    return out


def main(work: Path) -> None:
    dest = ROOT / "data" / "annotations"
    dest.mkdir(parents=True, exist_ok=True)
    sample = pd.read_csv(work / "sample.csv", dtype=str)
    rest = work / "sample_rest.csv"  # the second round: the rest of the training split (batches 22..45)
    if rest.exists():
        sample = pd.concat([sample, pd.read_csv(rest, dtype=str)], ignore_index=True)
    first = sorted(p.stem for p in (work / "out").glob("[0-9][0-9].csv"))
    labels = _outputs(work, first).merge(sample, on="tweet_id", how="inner", validate="one_to_one")
    assert len(labels) == len(sample), "every drawn tweet has exactly one first-pass row"
    airline = labels[labels["dataset"] == "airline"].rename(columns={"sentiment": "annotator_sentiment"})
    airline = airline[["tweet_id", "split", "sample", "topic", "needs_reply", "addressed", "annotator_sentiment", "batch"]]
    airline.sort_values("tweet_id").to_csv(dest / "airline.csv", index=False)
    live = labels[labels["dataset"] == "live2021"]
    live = live[["tweet_id", "topic", "needs_reply", "addressed", "sentiment", "batch"]]
    live.sort_values("tweet_id").to_csv(dest / "live2021.csv", index=False)
    blind = _outputs(work, ["B1", "B2"]).merge(pd.read_csv(work / "blind_sample.csv", dtype=str)[["tweet_id", "dataset"]],
                                               on="tweet_id", validate="one_to_one")
    blind = blind[["tweet_id", "dataset", "topic", "needs_reply", "addressed", "sentiment", "batch"]]
    blind.sort_values("tweet_id").to_csv(dest / "second_pass.csv", index=False)
    print(f"airline {len(airline)}, live2021 {len(live)}, second pass {len(blind)} rows -> {dest}")


def live_validation(work: Path) -> None:
    """Round 3 (batches V1..V3): the 2021 tweets the test sample did not draw -> ``live2021_validation.csv``."""
    dest = ROOT / "data" / "annotations" / "live2021_validation.csv"
    names = sorted(p.stem for p in (work / "out").glob("V[0-9].csv"))
    drawn = [line.split("\t", 1)[0] for n in names for line in (work / "batches" / f"{n}.txt").read_text().splitlines()]
    labels = _outputs(work, names)
    assert sorted(labels["tweet_id"]) == sorted(drawn), "every drawn tweet has exactly one row"
    labels = labels[["tweet_id", "topic", "needs_reply", "addressed", "sentiment", "batch"]]
    labels.sort_values("tweet_id").to_csv(dest, index=False)
    print(f"live2021 validation {len(labels)} rows -> {dest}")


if __name__ == "__main__":
    if "--live-validation" in sys.argv:
        live_validation(Path(sys.argv[1]))
    else:
        main(Path(sys.argv[1]))
