"""Reply texts: one short template per (reason, topic), always <= 280 characters.

Plain ``str.format`` templates rather than a template engine: they are a handful of
sentences and cannot execute anything.  The body sentences below are the defaults; the
database's ``reply_templates`` are seeded from them once (one per :func:`template_slots` slot)
and admins edit them there, so the intake passes the stored bodies in.  The parts we do not
control (handle, ticket ID, signature) are never cut; only the body sentence is shortened, on a
word boundary, so the ticket ID always survives.  A reply an agent writes or edits is checked by
:func:`check_reply_text`: at most 280 characters and still naming its ticket.
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


def template_slots() -> dict[str, tuple[str, str]]:
    """Every kind of automatic reply: ``slot -> (template name, default body)``, the seed of ``reply_templates``."""
    slots = {f"complaint:{topic}": (f"Complaint: {topic}", body) for topic, body in COMPLAINT_BODIES.items()}
    slots["complaint"] = ("Complaint: general", GENERAL_COMPLAINT)
    slots.update({f"question:{topic}": (f"Question: {topic}", body) for topic, body in QUESTION_BODIES.items()})
    slots["question"] = ("Question: general", QUESTION_BODY)
    slots["thanks"] = ("Thanks", THANKS_BODY)
    return slots


def slot_for(reason: str, topic: str | None) -> str:
    """The template slot of an automatic reply for this reason and topic (the policy's confident topic, or
    None: the general body)."""
    if reason == "thanks":
        return reason
    kind = "question" if reason == "question" else "complaint"
    return f"{kind}:{topic}" if topic in COMPLAINT_BODIES else kind


def body_for(reason: str, topic: str | None, bodies: Mapping[str, str] | None = None) -> str:
    """The body sentence: the stored template of the slot if there is one, else the default."""
    slot = slot_for(reason, topic)
    return (bodies or {}).get(slot) or template_slots()[slot][1]


def compose_reply(handle: str, body: str, ticket_id: str, signature: str) -> str:
    """``@handle body Ref TICKET signature``, the body shortened to fit 280 characters."""
    handle = handle.lstrip("@")[:50]
    signature = signature[:20]
    frame = TEMPLATE.format(handle=handle, body="", ticket_id=ticket_id, signature=signature)
    budget = MAX_TWEET_CHARS - len(frame)
    text = TEMPLATE.format(handle=handle, body=_shorten(body, budget), ticket_id=ticket_id, signature=signature)
    text = " ".join(text.split())  # an empty body or signature leaves no double space
    return text[:MAX_TWEET_CHARS]


def render_reply(tweet: Mapping[str, Any], reason: str, ticket_id: str, signature: str,
                 bodies: Mapping[str, str] | None = None) -> str:
    """The public reply to ``tweet``: mentions the author, names the ticket, is signed."""
    return compose_reply(str(tweet.get("author_handle") or ""), body_for(reason, tweet.get("topic"), bodies),
                         ticket_id, signature)


class ReplyTextError(ValueError):
    """A reply text an agent wrote or edited that cannot be posted."""


def check_reply_text(text: str, ticket_id: str) -> str:
    """The text to post, or :class:`ReplyTextError`: not empty, at most 280 characters, names ``ticket_id``.

    Customers quote the ticket ID back to us; a reply without it loses the thread, so an edit
    cannot remove it."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise ReplyTextError("the reply is empty")
    if "\x00" in text:
        raise ReplyTextError("the reply contains a NUL character")
    if len(text) > MAX_TWEET_CHARS:
        raise ReplyTextError(f"the reply has {len(text)} characters; at most {MAX_TWEET_CHARS} fit in a post")
    if ticket_id not in text:
        raise ReplyTextError(f"the reply must contain the ticket ID {ticket_id}")
    return text
