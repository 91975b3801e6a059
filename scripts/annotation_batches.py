"""Draw the tweets to annotate and write annotation batches (the sampling of docs/LABELING.md).

Run once; the draw is seeded, so running it again gives the same tweets:

    .venv/bin/python scripts/annotation_batches.py OUT_DIR          # round 1: batches 01..21
    .venv/bin/python scripts/annotation_batches.py OUT_DIR --rest   # round 2: the rest of the training split
    .venv/bin/python scripts/annotation_batches.py OUT_DIR --live-validation  # round 3: batches V1..V3

writes ``OUT_DIR/sample.csv`` (tweet_id, dataset, split, sample) and ``OUT_DIR/batches/NN.txt``:
one tweet per line, ``tweet_id<TAB>text`` (newlines in a tweet shown as `` / ``), in a shuffled order so a
batch mixes splits and an annotator cannot tell which rows are test rows.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261130
#: random rows per split of today's de-duplicated split (data/splits/split.csv)
RANDOM_ROWS = {"test": 1200, "validation": 1200, "train": 2600}
LIVE_ROWS = 600
#: keyword-targeted extra rows for rare classes: training split only, flagged sample=targeted
TARGETED = {
    "Extra Charges": r"\b(?:fees?|charg\w*|prices?|fares?|\$\d+|dollars?|overcharg\w*|expensive)\b",
    "Seating Preferences": r"\b(?:seat\w*|upgrad\w*|legroom|leg room|exit row|bulkhead|reclin\w*)\b",
    "Reservation Issue": r"\b(?:reservation\w*|confirmation|itinerary|miles|rewards?|frequent flyer|aadvantage"
                         r"|mileageplus|trueblue|precheck|overbook\w*|bumped)\b",
    "Online Booking": r"\b(?:website|app|online|boarding pass\w*|log ?in|error)\b",
}
TARGETED_PER_CLASS = 120
BATCH_ROWS = 300
REST_SEED = 20261202
#: round 3: the 2021 tweets the out-of-time test sample did not draw, as a live-style validation set
LIVE_VALIDATION_SEED = 20261203
LIVE_VALIDATION_BATCHES = 3


def airline_rows() -> pd.DataFrame:
    df = pd.read_csv(ROOT / "data" / "airline_tweets_sentiment.csv", dtype={"tweet_id": str})
    split = pd.read_csv(ROOT / "data" / "splits" / "split.csv", dtype={"tweet_id": str})
    return df.drop_duplicates("tweet_id").merge(split, on="tweet_id")[["tweet_id", "text", "split"]]


def live_rows() -> pd.DataFrame:
    raw = (ROOT / "data" / "live_tweets_stream_sample_2021.txt").read_text(encoding="utf-8")
    items = json.loads("[" + raw + "]")
    df = pd.DataFrame({"tweet_id": [str(i["tweet_id"]) for i in items], "text": [i["tweet"] for i in items]})
    return df.drop_duplicates("tweet_id")


def draw() -> pd.DataFrame:
    rng = np.random.RandomState(SEED)
    air = airline_rows()
    parts = []
    for split, n in RANDOM_ROWS.items():
        pool = air[air["split"] == split]
        parts.append(pool.iloc[rng.permutation(len(pool))[:n]].assign(dataset="airline", sample="random"))
    taken = set(pd.concat(parts)["tweet_id"])
    train = air[(air["split"] == "train") & ~air["tweet_id"].isin(taken)]
    for cls, pattern in TARGETED.items():
        pool = train[train["text"].str.contains(pattern, case=False, regex=True) & ~train["tweet_id"].isin(taken)]
        pick = pool.iloc[rng.permutation(len(pool))[:TARGETED_PER_CLASS]]
        taken |= set(pick["tweet_id"])
        parts.append(pick.assign(dataset="airline", sample=f"targeted:{cls}"))
    live = live_rows()
    parts.append(live.iloc[rng.permutation(len(live))[:LIVE_ROWS]].assign(dataset="live2021", split="live2021",
                                                                         sample="random"))
    return pd.concat(parts, ignore_index=True)


def one_line(text: str) -> str:
    return re.sub(r"\s*[\r\n]+\s*", " / ", text).strip()


def draw_rest(out: Path) -> None:
    """Round 2: every training tweet round 1 did not draw (``sample = rest``), batches 22.., seed 20261202."""
    taken = set(pd.read_csv(out / "sample.csv", dtype=str)["tweet_id"])
    air = airline_rows()
    rest = air[(air["split"] == "train") & ~air["tweet_id"].isin(taken)]
    rest = rest.iloc[np.random.RandomState(REST_SEED).permutation(len(rest))]
    rest[["tweet_id"]].assign(dataset="airline", split="train", sample="rest").to_csv(out / "sample_rest.csv", index=False)
    for b, start in enumerate(range(0, len(rest), BATCH_ROWS), start=22):
        chunk = rest.iloc[start : start + BATCH_ROWS]
        lines = [f"{t}\t{one_line(x)}" for t, x in zip(chunk["tweet_id"], chunk["text"])]
        (out / "batches" / f"{b:02d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(rest)} more training tweets in batches 22..{21 + -(-len(rest) // BATCH_ROWS)}")


def draw_live_validation(out: Path) -> None:
    """Round 3: every 2021 tweet round 1 did not draw: the validation set of the rules that see live threads.

    The 2021 test sample (``live2021.csv``) is never tuned on; choices about live-style tweets (who a
    reply thread is written to) are made on these instead.  Batches V1..V3, seed 20261203."""
    taken = set(pd.read_csv(ROOT / "data" / "annotations" / "live2021.csv", dtype=str)["tweet_id"])
    live = live_rows()
    pool = live[~live["tweet_id"].isin(taken)]
    pool = pool.iloc[np.random.RandomState(LIVE_VALIDATION_SEED).permutation(len(pool))]
    (out / "batches").mkdir(parents=True, exist_ok=True)
    size = -(-len(pool) // LIVE_VALIDATION_BATCHES)
    for b, start in enumerate(range(0, len(pool), size), start=1):
        chunk = pool.iloc[start : start + size]
        lines = [f"{t}\t{one_line(x)}" for t, x in zip(chunk["tweet_id"], chunk["text"])]
        (out / "batches" / f"V{b}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(pool)} 2021 tweets in batches V1..V{LIVE_VALIDATION_BATCHES}")


def main(out: Path) -> None:
    sample = draw()
    out.mkdir(parents=True, exist_ok=True)
    sample[["tweet_id", "dataset", "split", "sample"]].to_csv(out / "sample.csv", index=False)
    order = np.random.RandomState(SEED + 1).permutation(len(sample))
    shuffled = sample.iloc[order]
    (out / "batches").mkdir(exist_ok=True)
    for b, start in enumerate(range(0, len(shuffled), BATCH_ROWS), start=1):
        chunk = shuffled.iloc[start : start + BATCH_ROWS]
        lines = [f"{t}\t{one_line(x)}" for t, x in zip(chunk["tweet_id"], chunk["text"])]
        (out / "batches" / f"{b:02d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(sample.groupby(["dataset", "split", "sample"]).size().to_string())
    print(f"{len(sample)} tweets in {-(-len(sample) // BATCH_ROWS)} batches under {out / 'batches'}")


if __name__ == "__main__":
    if "--rest" in sys.argv:
        draw_rest(Path(sys.argv[1]))
    elif "--live-validation" in sys.argv:
        draw_live_validation(Path(sys.argv[1]))
    else:
        main(Path(sys.argv[1]))
