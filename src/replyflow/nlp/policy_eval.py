"""The reply policy judged by what customers receive, against the gold annotations.

For a set of annotated tweets and the models' predictions:

* ``auto_replies``: automatic public replies the policy sends;
* ``wrong_topic_rate``: share of them whose body names a topic other than the gold topic;
* ``no_reply_rate``: share of them sent to a tweet that needs none (gold ``needs_reply = 0``) or that
  is not written to the airline (gold ``addressed = 0``);
* ``coverage``: share of the tweets that need a reply and are written to the airline that got one.

:func:`choose_thresholds` picks the two thresholds on the VALIDATION split (most coverage within
the limits, then the most replies that name their topic); evaluation only reports what they give.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from replyflow.core.policy import PolicyConfig, decide

GRID = tuple(round(x, 2) for x in np.arange(0.30, 1.0, 0.01))


@dataclass(frozen=True)
class PolicyOutcome:
    auto_replies: int
    wrong_topic_rate: float
    no_reply_rate: float
    coverage: float
    naming_topic: int  # automatic replies whose body names a topic
    reply_needed: int  # gold: needs a reply and written to the airline

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Rows:
    eligible: np.ndarray  # the policy would reply at the lowest thresholds
    need: np.ndarray
    topic: np.ndarray  # predicted topic name ("" when none)
    topic_score: np.ndarray
    gold_topic: np.ndarray
    bad: np.ndarray  # gold: needs no reply, or not addressed
    wanted: np.ndarray  # gold: needs a reply and addressed


def _rows(gold: Sequence[Mapping[str, Any]], predictions: Sequence[Mapping[str, Any]], config: PolicyConfig) -> _Rows:
    """Per row, what does not depend on the two thresholds (decide() at the lowest ones)."""
    lowest = replace(config, reply_min_needs_reply=0.0, reply_ticket_min_needs_reply=0.0)
    eligible, need, topic, score = [], [], [], []
    for row, pred in zip(gold, predictions, strict=True):
        tweet = {**row, **pred}
        eligible.append(decide(tweet, lowest).auto_reply)
        need.append(float(pred.get("needs_reply_score") or 0.0))
        topic.append(pred.get("topic") or "")
        score.append(float(pred.get("topic_score") or 0.0))
    gold_need = np.array([str(r["needs_reply"]) == "1" for r in gold])
    gold_addr = np.array([str(r["addressed"]) == "1" for r in gold])
    return _Rows(np.array(eligible), np.array(need), np.array(topic, dtype=object), np.array(score),
                 np.array([r["topic"] for r in gold], dtype=object), ~(gold_need & gold_addr), gold_need & gold_addr)


def _outcome(rows: _Rows, min_need: float, min_topic: float, ticket_floor: float) -> PolicyOutcome:
    auto = rows.eligible & (rows.need >= max(min_need, ticket_floor))
    named = auto & (rows.topic != "") & (rows.topic_score >= min_topic)
    n = int(auto.sum())
    wrong = int((named & (rows.topic != rows.gold_topic)).sum())
    return PolicyOutcome(
        auto_replies=n,
        wrong_topic_rate=round(wrong / n, 4) if n else 0.0,
        no_reply_rate=round(int((auto & rows.bad).sum()) / n, 4) if n else 0.0,
        coverage=round(int((auto & rows.wanted).sum()) / max(1, int(rows.wanted.sum())), 4),
        naming_topic=int(named.sum()),
        reply_needed=int(rows.wanted.sum()),
    )


def evaluate_policy(gold: Sequence[Mapping[str, Any]], predictions: Sequence[Mapping[str, Any]],
                    config: PolicyConfig) -> PolicyOutcome:
    """What ``config`` sends to the ``gold`` tweets given the models' ``predictions`` (same order).
    ``gold`` rows need ``text``, ``author_handle``, ``topic``, ``needs_reply`` and ``addressed``."""
    return _outcome(_rows(gold, predictions, config), config.reply_min_needs_reply, config.reply_min_topic_confidence,
                    config.reply_ticket_min_needs_reply)


def choose_thresholds(gold: Sequence[Mapping[str, Any]], predictions: Sequence[Mapping[str, Any]], config: PolicyConfig,
                      max_wrong_topic: float, max_no_reply: float) -> tuple[PolicyConfig, PolicyOutcome]:
    """Most coverage with ``wrong_topic_rate <= max_wrong_topic`` and ``no_reply_rate <= max_no_reply``;
    among equals, the most replies naming their topic, then the higher thresholds (more margin)."""
    rows = _rows(gold, predictions, config)
    best: tuple[tuple[float, int, float, float], PolicyConfig, PolicyOutcome] | None = None
    for min_need in GRID:
        for min_topic in GRID:
            out = _outcome(rows, min_need, min_topic, config.reply_ticket_min_needs_reply)
            if out.auto_replies == 0 or out.wrong_topic_rate > max_wrong_topic or out.no_reply_rate > max_no_reply:
                continue
            key = (out.coverage, out.naming_topic, min_need, min_topic)
            if best is None or key > best[0]:
                chosen = replace(config, reply_min_needs_reply=min_need, reply_min_topic_confidence=min_topic)
                best = (key, chosen, out)
    if best is None:
        raise ValueError("no thresholds meet the limits on this data: the models are too weak for them")
    return best[1], best[2]


def coverage_curve(gold: Sequence[Mapping[str, Any]], predictions: Sequence[Mapping[str, Any]],
                   config: PolicyConfig) -> list[dict[str, float]]:
    """Coverage against precision (1 - no_reply_rate - wrong-topic share) as the needs-reply threshold moves."""
    rows = _rows(gold, predictions, config)
    curve = []
    for min_need in GRID:
        out = _outcome(rows, min_need, config.reply_min_topic_confidence, config.reply_ticket_min_needs_reply)
        if out.auto_replies:
            curve.append({"min_needs_reply": min_need, "coverage": out.coverage,
                          "no_reply_rate": out.no_reply_rate, "wrong_topic_rate": out.wrong_topic_rate})
    return curve
