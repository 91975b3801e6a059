"""Written to us, or about us?  The structural rules of core/addressing.py on representative tweets."""

from __future__ import annotations

import pytest

from replyflow.core.addressing import KNOWN_AIRLINE_HANDLES, is_addressed, is_headline

US = {"united", "jetblue"}

CASES = [
    ("@united my bag never arrived at ORD", True),
    (".@united you lost my bag again", True),
    ("@united they lost my bag and nobody answers", True),  # third person, but tagged first: written to us
    ("@JetBlue @united which of you flies to BOS?", True),
    ("hey @united, any wifi on UA123?", True),
    ("Thanks @JetBlue for the upgrade!", True),
    ("can't believe @united lost my bag again, never flying them", False),
    ("@friend @united lost mine too lol", False),  # a reply to someone else that mentions us
    ("@friend @united can you help her?", True),     # ... unless it asks us
    ("RT @united: Our new app is live", False),
    ("RT @someone: @united lost my bag", False),
    ("“@JetBlue: Our fleet's on fleek. http://t.co/x” @friend", False),  # passing our tweet on
    ("“@JetBlue: We're sorry, Sam.” That doesn't help at all", True),   # answering our tweet
    ("@JetBlue Airways Hits New 12-Month High - WKRB News http://t.co/x", False),
    ("@united The third wheelchair is broken! http://t.co/x", True),
    ("Flying coach on a commercial airline is my own personal version of hell", False),
    ("@delta my flight is delayed", False),  # not one of our handles
    ("\u2066@united\u2069 \u2066@friend\u2069 10 months waiting for my refund", True),  # bidi isolates around handles
    ("So appreciated! @united", True),  # the end of a sentence, then the handle: said to us
    ("Waiting for my next flight now. @united #travel #airline", False),  # a tag among hashtags
    ("Good news for travelers: @united is ditching its fee", False),  # a report on us
    ("Ugh. @united where is my bag?", True),
    ("", False),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_is_addressed(text: str, expected: bool) -> None:
    assert is_addressed(text, US) is expected


def test_is_retweet_flag_wins_and_handles_are_case_insensitive() -> None:
    assert is_addressed("@United help me", {"UNITED"}) is True
    assert is_addressed("@united help me", US, is_retweet=True) is False


def test_headline_needs_a_link_and_nothing_personal() -> None:
    assert is_headline("Airways Hits New 12-Month High - WKRB News http://t.co/x")
    assert not is_headline("my flight is late http://t.co/x")
    assert not is_headline("Airways Hits New 12-Month High")


def test_known_handles_are_lower_case_and_cover_the_dataset_airlines() -> None:
    assert all(h == h.lower() and not h.startswith("@") for h in KNOWN_AIRLINE_HANDLES)
    assert {"united", "americanair", "southwestair", "jetblue", "usairways", "virginamerica"} <= KNOWN_AIRLINE_HANDLES
