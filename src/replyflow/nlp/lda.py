"""LDA over the negative tweets: the exploration step that named the 8 support topics.

The taxonomy of the product (Baggage Issue ... Seating Preferences) came from an 8-topic gensim
LDA over the negative tweets, topics named by their top words.  The models now learn from the gold
annotations (docs/LABELING.md); LDA stays as the exploration step, re-run by ``replyflow train``:
each LDA topic is named after the gold class with the highest lift among the annotated training
tweets it dominates, and ``replyflow evaluate`` reports how well the named topics agree with the
gold on test (they agree poorly: LDA finds word clusters, not support issues).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from replyflow.core.labels import TOPIC_CLASSES

log = logging.getLogger(__name__)

NUM_TOPICS = 8

#: human negativereason -> the topic it implies (the consistency check of the annotations)
GOLD_MAP: dict[str, str] = {
    "Lost Luggage": "Baggage Issue",
    "Damaged Luggage": "Baggage Issue",
    "Late Flight": "Delay and Customer Service",
    "Customer Service Issue": "Delay and Customer Service",
    "longlines": "Delay and Customer Service",
    "Cancelled Flight": "Reschedule and Refund",
    "Flight Booking Problems": "Online Booking",
    "Bad Flight": "Customer Experience",
    "Flight Attendant Complaints": "Customer Experience",
}
LDA_EXTRA_STOP = frozenset(
    {"flight", "fly", "united", "usairway", "usairways", "americanair", "southwestair", "jetblue", "delta",
     "virginamerica", "southwest", "american", "airline", "airway", "not", "no", "thank", "thanks"}
)


def lda_tokens(clean: str) -> list[str]:
    return [t for t in clean.split() if t not in LDA_EXTRA_STOP]


def train_lda(docs: list[list[str]], seed: int, passes: int = 10) -> tuple[Any, Any]:
    """Fit the 8-topic LDA (deterministic given ``seed``)."""
    from gensim.corpora import Dictionary
    from gensim.models import LdaModel

    dictionary = Dictionary(docs)
    dictionary.filter_extremes(no_below=5, no_above=0.3)
    corpus = [dictionary.doc2bow(d) for d in docs]
    model = LdaModel(
        corpus, id2word=dictionary, num_topics=NUM_TOPICS, passes=passes, random_state=seed,
        alpha="auto", eta="auto", chunksize=2000, iterations=100,
    )
    return model, dictionary


def dominant_topics(model: Any, dictionary: Any, docs: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Argmax topic and its probability for each doc (-1 / 0.0 for empty docs)."""
    tops, probs = [], []
    for d in docs:
        bow = dictionary.doc2bow(d)
        if not bow:
            tops.append(-1)
            probs.append(0.0)
            continue
        dist = model.get_document_topics(bow, minimum_probability=0.0)
        k, p = max(dist, key=lambda x: x[1])
        tops.append(int(k))
        probs.append(float(p))
    return np.array(tops), np.array(probs)


def name_topics(topics: np.ndarray, gold: pd.Series) -> dict[int, str]:
    """Name each LDA topic after the gold class with the highest lift P(c|k)/P(c)."""
    mask = gold.notna().to_numpy() & (topics >= 0)
    g, t = gold.to_numpy()[mask], topics[mask]
    prior = pd.Series(g).value_counts(normalize=True)
    names: dict[int, str] = {}
    for k in range(NUM_TOPICS):
        sub = pd.Series(g[t == k])
        if sub.empty:
            names[k] = "Customer Experience"
            continue
        lift = sub.value_counts(normalize=True) / prior.loc[sub.value_counts().index]
        names[k] = str(lift.sort_values(ascending=False, kind="stable").index[0])
    return names


def coherence(model: Any, dictionary: Any, docs: list[list[str]]) -> dict[str, float]:
    """c_v (needs the texts) and u_mass coherence of the LDA topics."""
    from gensim.models import CoherenceModel

    corpus = [dictionary.doc2bow(d) for d in docs]
    cv = CoherenceModel(model=model, texts=docs, dictionary=dictionary, coherence="c_v", processes=1)
    um = CoherenceModel(model=model, corpus=corpus, dictionary=dictionary, coherence="u_mass")
    return {"c_v": float(cv.get_coherence()), "u_mass": float(um.get_coherence())}


def build_labels(df: pd.DataFrame, seed: int, out_dir: Path) -> dict[str, Any]:
    """Fit LDA on the negative training tweets, name its topics after the gold annotations, write models/lda/.

    ``df``: the cleaned, annotated split (columns tweet_id, split, airline_sentiment, clean, topic).
    Returns the LDA report (coherence, topic names with their top words)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    neg = df[df["airline_sentiment"] == "negative"].reset_index(drop=True)
    docs = [lda_tokens(c) for c in neg["clean"]]
    is_train = (neg["split"] == "train").to_numpy()
    train_docs = [d for d, m in zip(docs, is_train) if m]
    log.info("training LDA (%d topics) on %d negative train tweets", NUM_TOPICS, len(train_docs))
    model, dictionary = train_lda(train_docs, seed)
    topics, probs = dominant_topics(model, dictionary, docs)
    gold = neg["topic"].where(neg["topic"].isin(TOPIC_CLASSES))
    names = name_topics(topics[is_train], gold[is_train].reset_index(drop=True))
    table = pd.DataFrame({
        "tweet_id": neg["tweet_id"], "split": neg["split"], "lda_topic": topics, "lda_prob": probs.round(4),
        "lda_class": [names.get(int(k)) if k >= 0 else None for k in topics],
    })
    table.to_csv(out_dir / "labels.csv", index=False)
    model.save(str(out_dir / "lda.model"))
    report = {
        "num_topics": NUM_TOPICS,
        "coherence": coherence(model, dictionary, train_docs),
        "named_by": "gold annotations of the training split (highest lift)",
        "topics": [
            {"topic": k, "name": names[k], "top_words": [w for w, _ in model.show_topic(k, topn=12)]}
            for k in range(NUM_TOPICS)
        ],
    }
    (out_dir / "topics.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("LDA coherence %s; topic names %s", report["coherence"], names)
    return report
