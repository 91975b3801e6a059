"""The ticket page: the whole conversation, and what agents do on it.

Assign (to me, to an agent, nobody), change the status, write internal notes, answer with a canned
response or free text (the same outbox and sender as automatic replies), approve or edit a held
reply, and correct the model's sentiment, topic and needs-reply for any tweet of the thread.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template
from werkzeug.wrappers import Response

from replyflow.core.labels import SENTIMENT_CLASSES, TOPIC_CLASSES
from replyflow.reply.render import MAX_TWEET_CHARS, ReplyTextError, compose_reply
from replyflow.reply.tables import TICKET_STATUSES
from replyflow.reply.workflow import WorkflowError
from replyflow.web.common import actor, done, failed, form, nonce, now, svc, targets

bp = Blueprint("tickets", __name__)


@bp.get("/tickets/<ticket_id>")
def ticket(ticket_id: str) -> Any:
    service = svc()
    data = service.store.worklists.ticket(ticket_id, targets(), now())
    if data is None:
        abort(404)
    signature = service.settings.support_signature
    canned = [{"id": t.id, "name": t.name,
               "text": compose_reply(data["author_handle"] or "", t.body, data["ticket_id"], signature)}
              for t in service.store.templates.list()]
    return render_template(
        "workspace/ticket.html", t=data, agents=service.store.accounts.agents(), statuses=TICKET_STATUSES,
        sentiments=SENTIMENT_CLASSES, topics=TOPIC_CLASSES, canned=canned, max_chars=MAX_TWEET_CHARS,
        reply_text=compose_reply(data["author_handle"] or "", "", data["ticket_id"], signature),
        note_key=nonce(), reply_key=nonce(), reference=now(), active=None,
    )


def _back(ticket_id: str) -> dict[str, Any]:
    return {"default": "tickets.ticket", "ticket_id": ticket_id}


@bp.post("/tickets/<ticket_id>/assign")
def assign(ticket_id: str) -> Response:
    who = form("assignee")
    who = actor() if who == "me" else who
    try:
        svc().store.work.assign(ticket_id, who or None, actor())
    except WorkflowError as exc:
        return failed(str(exc), **_back(ticket_id))
    return done(f"{ticket_id} assigned to {who}." if who else f"{ticket_id} is unassigned.", **_back(ticket_id))


@bp.post("/tickets/<ticket_id>/status")
def status(ticket_id: str) -> Response:
    new = form("status")
    try:
        svc().store.work.set_status(ticket_id, new, actor())
    except WorkflowError as exc:
        return failed(str(exc), **_back(ticket_id))
    return done(f"{ticket_id} is {new}.", **_back(ticket_id))


@bp.post("/tickets/<ticket_id>/notes")
def note(ticket_id: str) -> Response:
    try:
        svc().store.work.add_note(ticket_id, form("body"), actor(), form("request_key"))
    except WorkflowError as exc:
        return failed(str(exc), **_back(ticket_id))
    return done("Note added.", **_back(ticket_id))


@bp.post("/tickets/<ticket_id>/replies")
def reply(ticket_id: str) -> Response:
    """A manual reply: queued for the sender at once (a double submit is stored once)."""
    try:
        created = svc().store.work.reply(ticket_id, form("text"), actor(), form("request_key"), form("template") or None)
    except (WorkflowError, ReplyTextError) as exc:
        return failed(str(exc), **_back(ticket_id))
    if created.created:
        svc().sender_wakeup.set()
    return done("Reply queued for sending." if created.created else "This reply was already sent off.", **_back(ticket_id))


@bp.post("/tweets/<tweet_id>/correction")
def correct(tweet_id: str) -> Response:
    """The agent's labels for one tweet; kept next to the model's for training and the agreement figures."""
    ticket_id = form("ticket_id")
    where = _back(ticket_id) if ticket_id else {"default": "dashboard.index"}
    try:
        svc().store.work.correct(tweet_id, form("sentiment"), form("topic") or None, form("needs_reply") == "yes", actor())
    except WorkflowError as exc:
        return failed(str(exc), **where)
    return done(f"Labels of tweet {tweet_id} corrected.", **where)
