"""Loading, de-duplication and THE train/validation/test split of the airline tweets.

Every model and every baseline uses the one split written here (``data/splits/split.csv``),
so numbers are comparable and no test tweet ever leaks into training.  Duplicates
(155 repeated tweet_ids, 213 repeated texts, mostly retweets) are removed *before*
splitting; otherwise the same text could sit in train and test.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from replyflow.core.files import file_sha256
from replyflow.settings import Settings

log = logging.getLogger(__name__)

SENTIMENT_FILE = "airline_tweets_sentiment.csv"
SPLIT_FILE = Path("splits") / "split.csv"
SPLIT_MANIFEST = Path("splits") / "split_manifest.json"
FRACTIONS = {"train": 0.70, "validation": 0.15, "test": 0.15}


def normalize_for_dedup(text: str) -> str:
    """Lowercase, drop URLs and collapse whitespace: two tweets equal here are duplicates."""
    t = re.sub(r"https?://\S+", " ", str(text).lower())
    return re.sub(r"\s+", " ", t).strip()


def load_tweets(settings: Settings) -> pd.DataFrame:
    """The sentiment CSV, de-duplicated by tweet_id and then by normalized text (first row kept)."""
    path = settings.data_dir / SENTIMENT_FILE
    df = pd.read_csv(path, dtype={"tweet_id": str})
    n0 = len(df)
    df = df.drop_duplicates("tweet_id", keep="first")
    n1 = len(df)
    df = df.assign(_norm=df["text"].map(normalize_for_dedup))
    df = df.drop_duplicates("_norm", keep="first").drop(columns="_norm").reset_index(drop=True)
    log.info("loaded %d rows; %d after tweet_id dedup; %d after text dedup", n0, n1, len(df))
    return df


def make_split(settings: Settings) -> pd.DataFrame:
    """Create the stratified 70/15/15 split (by sentiment x negativereason) and write it."""
    df = load_tweets(settings)
    strata = df["airline_sentiment"] + "|" + df["negativereason"].fillna("-")
    if strata.value_counts().min() < 8:  # tiny samples (tests): strata too small to split
        strata = df["airline_sentiment"]
    train, rest = train_test_split(df, test_size=0.30, random_state=settings.seed, stratify=strata)
    val, test = train_test_split(
        rest, test_size=0.50, random_state=settings.seed, stratify=strata.loc[rest.index]
    )
    parts = [train.assign(split="train"), val.assign(split="validation"), test.assign(split="test")]
    split = pd.concat(parts)[["tweet_id", "split"]].sort_values("tweet_id").reset_index(drop=True)
    out = settings.data_dir / SPLIT_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    split.to_csv(out, index=False)
    manifest = {
        "data_file": SENTIMENT_FILE,
        "data_sha256": file_sha256(settings.data_dir / SENTIMENT_FILE),
        "seed": settings.seed,
        "fractions": FRACTIONS,
        "stratify": "airline_sentiment x negativereason",
        "dedup": "tweet_id, then lowercased text without URLs (first kept)",
        "counts": split["split"].value_counts().to_dict(),
        "split_sha256": file_sha256(out),
    }
    (settings.data_dir / SPLIT_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("split written to %s: %s", out, manifest["counts"])
    return split


def load_split(settings: Settings) -> pd.DataFrame:
    """De-duplicated tweets joined with their split; creates the split if it does not exist."""
    path = settings.data_dir / SPLIT_FILE
    split = pd.read_csv(path, dtype={"tweet_id": str}) if path.exists() else make_split(settings)
    df = load_tweets(settings).merge(split, on="tweet_id", how="inner")
    return df


def data_hash(settings: Settings) -> str:
    """sha256 of the raw CSV (recorded in every manifest)."""
    return file_sha256(settings.data_dir / SENTIMENT_FILE)


def load_clean_split(settings: Settings) -> pd.DataFrame:
    """:func:`load_split` plus a ``clean`` column (cleaned text), cached per data hash and
    preprocessing version under ``state_dir/cache`` because cleaning 14k tweets with spaCy
    takes ~20 s and every training/evaluation step needs it."""
    from replyflow.nlp.text import PREPROCESSING_VERSION, clean_texts

    df = load_split(settings)
    key = f"{data_hash(settings)[:12]}-prep{PREPROCESSING_VERSION}"
    cache = settings.state_dir / "cache" / f"clean-{key}.csv"
    if cache.exists():
        cached = pd.read_csv(cache, dtype={"tweet_id": str}, keep_default_na=False)
        mapping = dict(zip(cached["tweet_id"], cached["clean"]))
        if all(t in mapping for t in df["tweet_id"]):
            return df.assign(clean=df["tweet_id"].map(mapping))
    log.info("cleaning %d tweets with spaCy (cached afterwards in %s)", len(df), cache)
    clean = clean_texts(df["text"].fillna("").tolist())
    df = df.assign(clean=clean)
    cache.parent.mkdir(parents=True, exist_ok=True)
    df[["tweet_id", "clean"]].to_csv(cache, index=False)
    return df


def load_labelled(settings: Settings) -> pd.DataFrame:
    """:func:`load_split` plus the gold annotations (docs/LABELING.md), validated first.

    Adds ``topic`` (8 classes or ``none``; NaN where not annotated), ``needs_reply`` and
    ``addressed`` (``"1"``/``"0"``; NaN where not annotated) and ``sample`` (random/targeted).
    An invalid annotation file stops here with an :class:`~replyflow.nlp.annotations.AnnotationError`
    naming the file and the row."""
    from replyflow.nlp.annotations import load_airline

    df = load_split(settings)
    gold = load_airline(settings.data_dir, df[["tweet_id", "split"]])
    cols = ["tweet_id", "topic", "needs_reply", "addressed", "sample", "annotator_sentiment"]
    return df.merge(gold[cols], on="tweet_id", how="left")
