"""Text cleaning shared by training and serving: tricky tweets."""

from __future__ import annotations

import pytest

from replyflow.nlp.text import (
    PREPROCESSING_VERSION,
    STOP_WORDS,
    clean_text,
    clean_texts,
    encoder_text,
    encoder_texts,
    pre_clean,
    sentiment_text,
    tokens,
)


def test_version_is_a_string() -> None:
    assert isinstance(PREPROCESSING_VERSION, str) and PREPROCESSING_VERSION


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("I can't believe it", "not believe"),
        ("They didn't help", "not help"),
        ("won't fly again", "not fly again"),
        ("I didn’t get a refund", "not refund"),  # typographic apostrophe
    ],
)
def test_contractions_expand_to_negation(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_negations_kept_other_stopwords_dropped() -> None:
    assert {"not", "no", "never", "nor"}.isdisjoint(STOP_WORDS)
    assert "the" in STOP_WORDS and "and" in STOP_WORDS
    assert clean_text("no help and never again") == "no help never again"


def test_lemmas_agent_agents() -> None:
    assert clean_text("The agent was rude. Agents are rude.") == "agent rude agent rude"
    assert tokens("my bags were lost") == ["bag", "lose"]


def test_urls_mentions_entities_hashtags() -> None:
    assert clean_text("great!http://t.co/xYz1") == "great"
    assert clean_text("@united see www.united.com/help &amp; t.co/abc thanks") == "thank"
    assert clean_text("#fail #LostLuggage") == "fail lostluggage"
    assert "amp" not in clean_text("fees &amp; more fees")


def test_emoji_mapped_or_dropped() -> None:
    assert clean_text("thanks ❤️") == "thank love"
    assert clean_text("delayed again 😡😡") == "delay again angry angry"
    assert clean_text("🦄") == ""


@pytest.mark.parametrize("raw", ["", "   ", None, "@united", "http://t.co/x", "@delta the and", "!!!"])
def test_blank_after_cleaning_is_empty_string(raw) -> None:
    assert clean_text(raw) == ""
    assert tokens(raw) == []


def test_batch_equals_single_and_is_deterministic() -> None:
    texts = ["@united lost my bags!!", "", "Flight Cancelled Flightled 😭", "can't rebook online"]
    batch = clean_texts(texts)
    assert batch == [clean_text(t) for t in texts]
    assert batch == clean_texts(texts)


def test_sentiment_text_keeps_function_words_and_punctuation() -> None:
    assert sentiment_text("@united WHY?!?! can't you help me!!! http://t.co/x") == "why ? can not you help me !"
    assert sentiment_text("") == "" and pre_clean(None) == ""


def test_encoder_text_removes_urls_and_mentions_but_keeps_the_sentence() -> None:
    raw = "@united Why can&#39;t you find my bag?! 😡 #fail great!http://t.co/x  www.x.com"
    assert encoder_text(raw) == "Why can't you find my bag?! 😡 #fail great!"
    assert encoder_text("@delta http://t.co/abc") == "" and encoder_text(None) == ""
    assert encoder_texts(["@a hi", ""]) == ["hi", ""]
