"""What the models predict: three tasks with fixed class orders, shared by training, serving and evaluation.

* ``sentiment``: negative / neutral / positive (the dataset's human labels);
* ``topic``: the 8 support topics or ``none`` (the gold annotations, docs/LABELING.md);
* ``needs_reply``: would an agent answer? (``no`` / ``yes``, the gold annotations).

Whether a tweet is written *to* us (``addressed``) is not learned from text: it depends on who "us"
is, so :mod:`replyflow.nlp.addressed` decides it from the tweet's structure and our handles.
"""

from __future__ import annotations

from dataclasses import dataclass

from replyflow.core.labels import SENTIMENT_CLASSES, TOPIC_CLASSES

NO_TOPIC = "none"


@dataclass(frozen=True)
class Task:
    name: str
    classes: tuple[str, ...]


SENTIMENT = Task("sentiment", SENTIMENT_CLASSES)
TOPIC = Task("topic", (*TOPIC_CLASSES, NO_TOPIC))
NEEDS_REPLY = Task("needs_reply", ("no", "yes"))
TASKS: tuple[Task, ...] = (SENTIMENT, TOPIC, NEEDS_REPLY)
