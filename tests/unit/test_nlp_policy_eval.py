"""The policy judged by what customers receive: the rates, and the threshold search on validation."""

from __future__ import annotations

import pytest

from replyflow.core.policy import PolicyConfig
from replyflow.nlp.policy_eval import choose_thresholds, coverage_curve, evaluate_policy

CONFIG = PolicyConfig(our_handles=("united",), reply_min_needs_reply=0.8, reply_ticket_min_needs_reply=0.3,
                      reply_min_topic_confidence=0.7)


def row(topic: str = "Baggage Issue", need: str = "1", addressed: str = "1", text: str = "@united my bag") -> dict:
    return {"text": text, "author_handle": "someone", "topic": topic, "needs_reply": need, "addressed": addressed}


def pred(topic: str | None = "Baggage Issue", topic_score: float = 0.9, need: float = 0.95) -> dict:
    return {"sentiment": "negative", "sentiment_score": 0.9, "topic": topic, "topic_score": topic_score,
            "needs_reply_score": need}


def test_rates_count_what_customers_receive() -> None:
    gold = [row(), row(topic="Delay and Customer Service"), row(need="0"), row(text="ugh @united lost it again"),
            row(), row()]
    preds = [pred(), pred(), pred(), pred(), pred(need=0.5), pred(topic_score=0.5)]
    out = evaluate_policy(gold, preds, CONFIG)
    # replies: rows 0, 1 (wrong topic named), 2 (needs none), 5 (general body); row 3 not addressed, row 4 unsure
    assert out.auto_replies == 4 and out.naming_topic == 3
    assert out.wrong_topic_rate == pytest.approx(1 / 4) and out.no_reply_rate == pytest.approx(1 / 4)
    assert out.reply_needed == 5 and out.coverage == pytest.approx(3 / 5)


def test_threshold_search_respects_the_limits_and_maximises_coverage() -> None:
    gold = [row()] * 8 + [row(need="0")] * 2 + [row(topic="Extra Charges")] * 2
    preds = [pred(need=0.95)] * 8 + [pred(need=0.6)] * 2 + [pred(topic_score=0.75)] * 2
    chosen, out = choose_thresholds(gold, preds, CONFIG, max_wrong_topic=0.0, max_no_reply=0.0)
    assert out.no_reply_rate == 0.0 and out.wrong_topic_rate == 0.0
    assert chosen.reply_min_needs_reply > 0.6 and chosen.reply_min_topic_confidence > 0.75
    assert out.coverage == pytest.approx(1.0)  # every reply-needing tweet still answered, with the general body where unsure
    with pytest.raises(ValueError, match="no thresholds"):
        choose_thresholds([row(need="0")], [pred(need=0.99)], CONFIG, 0.0, 0.0)


def test_curve_trades_coverage_for_precision() -> None:
    gold = [row()] * 5 + [row(need="0")] * 5
    preds = [pred(need=0.9 + i / 100) for i in range(5)] + [pred(need=0.5 + i / 10) for i in range(5)]
    curve = coverage_curve(gold, preds, CONFIG)
    assert curve[0]["no_reply_rate"] > curve[-1]["no_reply_rate"]
    assert all(a["coverage"] >= b["coverage"] for a, b in zip(curve, curve[1:]))
