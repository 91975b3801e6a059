"""LDA naming: each topic gets the gold class with the highest lift among the tweets it dominates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from replyflow.core.labels import TOPIC_CLASSES
from replyflow.nlp.lda import GOLD_MAP, NUM_TOPICS, lda_tokens, name_topics


def test_gold_map_targets_are_topic_classes() -> None:
    assert set(GOLD_MAP.values()) <= set(TOPIC_CLASSES)


def test_topics_are_named_by_lift_not_by_size() -> None:
    # topic 0: mostly the big class; topic 1: few tweets but over-represents the small class
    topics = np.array([0] * 8 + [1] * 4 + [2] * 2)
    gold = pd.Series(["Delay and Customer Service"] * 7 + ["Baggage Issue"] + ["Delay and Customer Service"]
                     + ["Baggage Issue"] * 3 + [None, None])
    names = name_topics(topics, gold)
    assert names[0] == "Delay and Customer Service" and names[1] == "Baggage Issue"
    assert len(names) == NUM_TOPICS and set(names.values()) <= set(TOPIC_CLASSES)


def test_lda_tokens_drop_airline_names() -> None:
    assert lda_tokens("united lose bag again") == ["lose", "bag", "again"]
