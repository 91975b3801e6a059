"""Human-readable ticket IDs: ``<TOPIC CODE>-<YYYYMMDD>-<sequence>``, e.g. ``BAG-20261124-0042``.

Agents read these aloud on the phone and customers paste them back, so they are short,
upper-case and carry the topic and the day (codes: :data:`replyflow.core.labels.TOPIC_CODES`).
The sequence comes from a per-(code, day) counter row in the database (see
:mod:`replyflow.reply.intake`), never from a clock or a random number, so IDs are unique and dense.
"""

from __future__ import annotations

from datetime import date


def format_ticket_id(code: str, day: date, sequence: int) -> str:
    """``BAG-20261124-0042``; the sequence widens past 9999 rather than wrapping."""
    return f"{code}-{day:%Y%m%d}-{sequence:04d}"
