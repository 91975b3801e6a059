"""Reply texts: one short template per (reason, topic), always <= 280 characters.

Plain ``str.format`` templates in code rather than a template engine: they are a
handful of sentences, reviewed like code, and cannot execute anything.  The parts we do
not control (handle, ticket ID, signature) are never cut; only the body sentence is
shortened, on a word boundary, so the ticket ID always survives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_TWEET_CHARS = 280

#: Body sentence per topic for complaints (negative tweets).
COMPLAINT_BODIES: dict[str, str] = {
    "Baggage Issue": "Sorry about your bag. Please DM us your bag tag number and we'll trace it right away.",
    "Customer Experience": "We're sorry your experience fell short. Please DM us the details so we can put it right.",
    "Delay and Customer Service": "Sorry for the delay and the wait. DM us your confirmation code and we'll help with options.",
    "Extra Charges": "Sorry about the unexpected charge. DM us your confirmation code and we'll review it.",
    "Online Booking": "Sorry the booking gave you trouble. DM us what you saw and we'll sort it out.",
    "Reschedule and Refund": "Sorry for the hassle. DM us your confirmation code and we'll look at rebooking or a refund.",
    "Reservation Issue": "Sorry about the trouble with your reservation. DM us your confirmation code and we'll fix it.",
    "Seating Preferences": "Sorry about your seat. DM us your confirmation code and we'll see what we can do.",
}
#: Body sentence per topic for questions and requests (tweets that need a reply but are not negative).
QUESTION_BODIES: dict[str, str] = {
    "Baggage Issue": "Happy to help with your bag. DM us your bag tag or confirmation number and we'll check.",
    "Customer Experience": "Thanks for telling us about your trip. DM us the details and we'll follow up.",
    "Delay and Customer Service": "Happy to help with your flight. DM us your confirmation code and we'll check on it.",
    "Extra Charges": "Happy to help with the fees on your booking. DM us your confirmation code and we'll take a look.",
    "Online Booking": "Happy to help with booking online. DM us what you see on screen and we'll walk you through it.",
    "Reschedule and Refund": "Happy to help with changing or refunding your trip. DM us your confirmation code.",
    "Reservation Issue": "Happy to help with your reservation. DM us your confirmation code and we'll check it.",
    "Seating Preferences": "Happy to help with your seat. DM us your confirmation code and we'll see what's open.",
}
GENERAL_COMPLAINT = "Sorry to hear that. Please DM us the details and we'll help."
QUESTION_BODY = "Thanks for reaching out! DM us the details and we'll get you an answer quickly."
THANKS_BODY = "Thank you for the kind words! We hope to see you on board again soon."

TEMPLATE = "@{handle} {body} Ref {ticket_id} {signature}"


def _shorten(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters on a word boundary, ending with an ellipsis."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ""
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:") + "\u2026"


def body_for(reason: str, topic: str | None) -> str:
    """The body sentence: per topic when ``topic`` is given (the policy's confident topic), else general."""
    if reason == "thanks":
        return THANKS_BODY
    if reason == "question":
        return QUESTION_BODIES.get(topic or "", QUESTION_BODY)
    return COMPLAINT_BODIES.get(topic or "", GENERAL_COMPLAINT)


def render_reply(tweet: Mapping[str, Any], reason: str, ticket_id: str, signature: str) -> str:
    """The public reply to ``tweet``: mentions the author, names the ticket, is signed."""
    handle = str(tweet.get("author_handle") or "").lstrip("@")[:50]
    signature = signature[:20]
    frame = TEMPLATE.format(handle=handle, body="", ticket_id=ticket_id, signature=signature)
    budget = MAX_TWEET_CHARS - len(frame)
    body = _shorten(body_for(reason, tweet.get("topic")), budget)
    text = TEMPLATE.format(handle=handle, body=body, ticket_id=ticket_id, signature=signature)
    text = " ".join(text.split())  # an empty body or signature leaves no double space
    return text[:MAX_TWEET_CHARS]
