"""The class lists of the models and the ticket codes derived from them, in one place.

Every stage speaks these names: the NLP models predict them, the stream writes them to
parquet, the reply service validates and stores them, the dashboard filters on them.
"""

from __future__ import annotations

from typing import Literal, get_args

#: The sentiment classes as a type (pydantic validates it, the OpenAPI document lists it).
Sentiment = Literal["negative", "neutral", "positive"]
#: The eight support topics, as a type.
Topic = Literal[
    "Baggage Issue",
    "Customer Experience",
    "Delay and Customer Service",
    "Extra Charges",
    "Online Booking",
    "Reschedule and Refund",
    "Reservation Issue",
    "Seating Preferences",
]
SENTIMENT_CLASSES: tuple[str, ...] = get_args(Sentiment)
TOPIC_CLASSES: tuple[str, ...] = get_args(Topic)

#: Three-letter code of each topic, used in ticket IDs (``BAG-20261124-0042``) and filters.
TOPIC_CODES: dict[str, str] = {
    "Baggage Issue": "BAG",
    "Customer Experience": "CXP",
    "Delay and Customer Service": "DLY",
    "Extra Charges": "CHG",
    "Online Booking": "ONL",
    "Reschedule and Refund": "RFD",
    "Reservation Issue": "RES",
    "Seating Preferences": "SEA",
}
#: Code of a ticket without a (confident) topic.
GENERAL_CODE = "GEN"
GENERAL_LABEL = "General (no topic)"
CODE_TOPICS: dict[str, str] = {code: topic for topic, code in TOPIC_CODES.items()}


def topic_code(topic: str | None) -> str:
    """The 3-letter code of a topic class; ``GEN`` for none or an unknown topic."""
    return TOPIC_CODES.get(topic or "", GENERAL_CODE)


def topic_label(code: str) -> str:
    """The topic name of a code, ``General (no topic)`` for ``GEN`` or an unknown code."""
    return CODE_TOPICS.get(code, GENERAL_LABEL)
