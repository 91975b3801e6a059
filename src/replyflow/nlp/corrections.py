"""Agents' corrections as extra gold training rows (``replyflow train --corrections FILE``).

The agent workspace exports what agents corrected (``replyflow corrections export FILE``: columns
``tweet_id, text, sentiment, topic, needs_reply, corrected_by, corrected_at``; an agent sets all three
labels; an empty ``topic`` means no support topic, ``needs_reply`` is ``true``/``false``).  Those rows join
the TRAINING rows only: a correction of a tweet of the validation or test split, or of the 2021
set, is dropped (and counted in the log), so agents' labels never leak into what the models are
judged on.  A bad file stops training with an :class:`~replyflow.nlp.annotations.AnnotationError`
naming the file and the row, like the annotation files.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from replyflow.core.labels import SENTIMENT_CLASSES
from replyflow.nlp.annotations import NO_TOPIC, TOPIC_LABELS, AnnotationError, live_tweet_ids

log = logging.getLogger(__name__)

COLUMNS = ("tweet_id", "text", "sentiment", "topic", "needs_reply", "corrected_by", "corrected_at")
_BOOLEAN = {"true": "1", "false": "0", "1": "1", "0": "0"}


def load_corrections(path: Path, held_out: set[str], data_dir: Path) -> pd.DataFrame:
    """Valid correction rows that may be trained on, in the columns of the annotated split."""
    if not path.is_file():
        raise AnnotationError(f"{path}: corrections file not found")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise AnnotationError(f"{path}: missing column(s) {', '.join(missing)}")
    for i, row in enumerate(frame.itertuples(index=False), start=2):
        if not row.tweet_id.isdigit() or not row.text.strip():
            raise AnnotationError(f"{path} line {i}: a correction needs a tweet id and its text")
        if row.sentiment and row.sentiment not in SENTIMENT_CLASSES:
            raise AnnotationError(f"{path} line {i}: sentiment={row.sentiment!r} is not one of {', '.join(SENTIMENT_CLASSES)}")
        if row.topic and row.topic not in TOPIC_LABELS:
            raise AnnotationError(f"{path} line {i}: topic={row.topic!r} is not one of {', '.join(TOPIC_LABELS)}")
        if row.needs_reply.lower() not in _BOOLEAN:
            raise AnnotationError(f"{path} line {i}: needs_reply={row.needs_reply!r} is not true or false")
    frame = frame.drop_duplicates("tweet_id", keep="last")
    excluded = frame["tweet_id"].isin(held_out | live_tweet_ids(data_dir))
    if excluded.any():
        log.warning("%d correction(s) of validation, test or 2021-set tweets dropped: never trained on", int(excluded.sum()))
    frame = frame[~excluded]
    return pd.DataFrame({
        "tweet_id": frame["tweet_id"], "text": frame["text"],
        "airline_sentiment": frame["sentiment"].replace("", None),
        "topic": frame["topic"].replace("", NO_TOPIC),
        "needs_reply": frame["needs_reply"].str.lower().map(_BOOLEAN),
    }).reset_index(drop=True)
