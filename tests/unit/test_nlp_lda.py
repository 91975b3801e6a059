"""Topic labelling rules: gold mapping and the weak training label procedure."""

from __future__ import annotations

from replyflow.core.labels import TOPIC_CLASSES
from replyflow.nlp.lda import GOLD_MAP, SEED_KEYWORDS, gold_label, rule_label, training_label


def test_gold_map_targets_are_topic_classes() -> None:
    assert set(GOLD_MAP.values()) <= set(TOPIC_CLASSES)
    assert set(SEED_KEYWORDS) == set(TOPIC_CLASSES)
    assert gold_label("Lost Luggage") == gold_label("Damaged Luggage") == "Baggage Issue"
    assert gold_label("Can't Tell") is None and gold_label(float("nan")) is None


def test_training_label_order() -> None:
    # a keyword rule for an uncovered class overrides a broad human reason
    assert training_label(["change", "fee"], "Customer Service Issue", None) == ("Extra Charges", "rule_uncovered")
    # ...but not a specific one
    assert training_label(["bag", "fee"], "Lost Luggage", None) == ("Baggage Issue", "human_reason")
    assert training_label(["seat"], "Can't Tell", "Online Booking") == ("Seating Preferences", "rule_uncovered")
    assert training_label(["website"], "Can't Tell", None) == ("Online Booking", "rule")
    assert training_label(["hmm"], "Can't Tell", "Customer Experience") == ("Customer Experience", "lda")
    assert training_label([], None, None) == (None, "none")
    assert rule_label(["refund"]) == "Reschedule and Refund"
