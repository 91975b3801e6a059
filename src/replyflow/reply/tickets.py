"""Human-readable ticket IDs: ``<TOPIC CODE>-<YYYYMMDD>-<sequence>``, e.g. ``BAG-20261124-0042``.

Agents read these aloud on the phone and customers paste them back, so they are short,
upper-case and carry the topic and the day.  The sequence comes from a per-(code, day)
counter row in the database (see :mod:`replyflow.reply.store`), never from a clock or a
random number, so IDs are unique and dense.
"""

from __future__ import annotations

from datetime import date

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
GENERAL_CODE = "GEN"
CODE_TOPICS: dict[str, str] = {code: topic for topic, code in TOPIC_CODES.items()}


def topic_code(topic: str | None) -> str:
    """The 3-letter code of a topic class; ``GEN`` for none or an unknown topic."""
    return TOPIC_CODES.get(topic or "", GENERAL_CODE)


def format_ticket_id(code: str, day: date, sequence: int) -> str:
    """``BAG-20261124-0042``; the sequence widens past 9999 rather than wrapping."""
    return f"{code}-{day:%Y%m%d}-{sequence:04d}"
