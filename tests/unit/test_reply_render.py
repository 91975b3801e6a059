"""Reply templates: always <= 280 chars, mention the author, carry the ticket ID and signature."""

from __future__ import annotations

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from replyflow.core.labels import TOPIC_CLASSES
from replyflow.reply.render import COMPLAINT_BODIES, MAX_TWEET_CHARS, render_reply


def test_every_topic_has_a_template() -> None:
    assert set(COMPLAINT_BODIES) == set(TOPIC_CLASSES)


def test_reply_content() -> None:
    text = render_reply({"author_handle": "jo", "topic": "Baggage Issue"}, "complaint", "BAG-20261124-0042", "^RF")
    assert text.startswith("@jo ")
    assert "BAG-20261124-0042" in text and text.endswith("^RF")
    assert "bag" in text.lower()
    assert len(text) <= MAX_TWEET_CHARS


def test_reasons_pick_different_bodies() -> None:
    t = {"author_handle": "jo", "topic": "Seating Preferences"}
    texts = {r: render_reply(t, r, "SEA-20261124-0001", "^RF") for r in ("complaint", "question", "thanks")}
    assert len(set(texts.values())) == 3
    assert "seat" in texts["complaint"].lower()
    assert "thank" in texts["thanks"].lower()


@hsettings(max_examples=200, deadline=None)
@given(
    handle=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=50),
    signature=st.text(min_size=0, max_size=60),
    topic=st.sampled_from([*TOPIC_CLASSES, None]),
    reason=st.sampled_from(["complaint", "question", "thanks"]),
    seq=st.integers(min_value=1, max_value=10**7),
)
def test_never_longer_than_a_tweet_and_keeps_the_id(handle, signature, topic, reason, seq) -> None:
    ticket_id = f"BAG-20261124-{seq:04d}"
    text = render_reply({"author_handle": handle, "topic": topic}, reason, ticket_id, signature)
    assert len(text) <= MAX_TWEET_CHARS
    assert text.startswith(f"@{handle}")
    assert ticket_id in text
