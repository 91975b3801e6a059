"""Support-topic labels: gensim LDA, the human ``negativereason`` column and keyword rules.

Why this mix: the data set has no 8-class topic labels.  The course project's LDA labels
(``airline_tweets_topics_lda.csv``) are weak (71% one class).  The human ``negativereason``
column is the best evidence we have, but it only covers 5 of the 8 classes.  So:

* GOLD (evaluation only, never tuned on): ``negativereason`` mapped by :data:`GOLD_MAP`
  where the mapping is unambiguous; "Can't Tell" has no gold.
* Training labels (train/validation negatives), first match wins:
  1. a keyword rule for a class the human reasons do not cover (Extra Charges, Seating
     Preferences, Reservation Issue) when the human reason is a broad one;
  2. the gold mapping of the human reason;
  3. ("Can't Tell") any keyword rule, else the LDA topic named into a class.
* LDA: 8 topics over the cleaned NEGATIVE training tweets; each topic is named after the
  gold class with the highest lift among the training tweets it dominates.
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

#: human negativereason -> topic class (documented in docs/MODEL_CARD.md)
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
#: reasons broad enough that a specific keyword rule may override them in TRAINING labels
BROAD_REASONS = {"Customer Service Issue", "Bad Flight", "Can't Tell", "Flight Booking Problems", "longlines"}
UNCOVERED = ("Extra Charges", "Seating Preferences", "Reservation Issue")

#: keyword seeds over cleaned lemmas, in priority order
SEED_KEYWORDS: dict[str, frozenset[str]] = {
    "Extra Charges": frozenset({"fee", "charge", "overcharge", "expensive", "price", "money", "dollar", "cost"}),
    "Seating Preferences": frozenset({"seat", "seating", "legroom", "aisle", "row", "upgrade", "recline"}),
    "Reservation Issue": frozenset({"reservation", "confirmation", "itinerary", "locator", "pnr"}),
    "Baggage Issue": frozenset({"bag", "baggage", "luggage", "suitcase", "carousel"}),
    "Reschedule and Refund": frozenset({"cancel", "cancelled", "cancellation", "refund", "rebook", "reschedule", "voucher"}),
    "Online Booking": frozenset({"website", "site", "online", "app", "web", "internet", "login", "page", "browser"}),
    "Delay and Customer Service": frozenset({"delay", "late", "wait", "hold", "hour", "minute", "phone", "call"}),
    "Customer Experience": frozenset({"rude", "attendant", "crew", "staff", "experience", "food", "entertainment", "wifi", "dirty"}),
}
LDA_EXTRA_STOP = frozenset(
    {"flight", "fly", "united", "usairway", "usairways", "americanair", "southwestair", "jetblue", "delta",
     "virginamerica", "southwest", "american", "airline", "airway", "not", "no", "thank", "thanks"}
)


def rule_label(tokens: list[str], classes: tuple[str, ...] | None = None) -> str | None:
    """First class (in :data:`SEED_KEYWORDS` order) whose seed words occur in ``tokens``."""
    toks = set(tokens)
    for cls, seeds in SEED_KEYWORDS.items():
        if (classes is None or cls in classes) and toks & seeds:
            return cls
    return None


def gold_label(reason: Any) -> str | None:
    """Gold topic class of a human negativereason, or None (not negative / Can't Tell)."""
    return GOLD_MAP.get(reason) if isinstance(reason, str) else None


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


def training_label(tokens: list[str], reason: Any, lda_class: str | None) -> tuple[str | None, str]:
    """Weak training label and where it came from (see module docstring)."""
    reason = reason if isinstance(reason, str) else None
    if reason in BROAD_REASONS:
        rule = rule_label(tokens, UNCOVERED)
        if rule:
            return rule, "rule_uncovered"
    gold = gold_label(reason)
    if gold:
        return gold, "human_reason"
    rule = rule_label(tokens)
    if rule:
        return rule, "rule"
    if lda_class:
        return lda_class, "lda"
    return None, "none"


def build_labels(df: pd.DataFrame, seed: int, out_dir: Path) -> dict[str, Any]:
    """Fit LDA on negative train tweets, write models/lda/ and the topic label table.

    ``df`` is the cleaned split (columns tweet_id, split, airline_sentiment, negativereason, clean).
    Returns the LDA report (coherence, naming, label-source counts).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    neg = df[df["airline_sentiment"] == "negative"].reset_index(drop=True)
    docs = [lda_tokens(c) for c in neg["clean"]]
    is_train = (neg["split"] == "train").to_numpy()
    train_docs = [d for d, m in zip(docs, is_train) if m]
    log.info("training LDA (%d topics) on %d negative train tweets", NUM_TOPICS, len(train_docs))
    model, dictionary = train_lda(train_docs, seed)
    topics, probs = dominant_topics(model, dictionary, docs)
    gold = neg["negativereason"].map(gold_label)
    names = name_topics(topics[is_train], gold[is_train].reset_index(drop=True))
    lda_class = [names.get(int(k)) if k >= 0 else None for k in topics]
    labels, sources = zip(*(
        training_label(c.split(), r, lc) for c, r, lc in zip(neg["clean"], neg["negativereason"], lda_class)
    ))
    table = pd.DataFrame({
        "tweet_id": neg["tweet_id"], "split": neg["split"], "negativereason": neg["negativereason"],
        "gold": gold, "lda_topic": topics, "lda_prob": probs.round(4), "lda_class": lda_class,
        "train_label": labels, "label_source": sources,
    })
    # Test rows never get a training label: the test split is only scored against gold.
    table.loc[table["split"] == "test", ["train_label", "label_source"]] = [None, "test"]
    table.to_csv(out_dir / "labels.csv", index=False)
    model.save(str(out_dir / "lda.model"))
    coh = coherence(model, dictionary, train_docs)
    report = {
        "num_topics": NUM_TOPICS,
        "coherence": coh,
        "topics": [
            {"topic": k, "name": names[k], "top_words": [w for w, _ in model.show_topic(k, topn=12)]}
            for k in range(NUM_TOPICS)
        ],
        "gold_map": GOLD_MAP,
        "label_sources_train": table[table["split"] == "train"]["label_source"].value_counts().to_dict(),
        "train_label_counts": table[table["split"] == "train"]["train_label"].value_counts().to_dict(),
    }
    (out_dir / "topics.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("LDA coherence %s; topic names %s", coh, names)
    assert set(names.values()) <= set(TOPIC_CLASSES)
    return report
