"""Work queues: tickets (unassigned, mine, low confidence, SLA breached), held replies, failed replies.

Held replies are approved (as written or edited) or rejected here; failed ones retried.  Approving
only queues the reply: the sender posts it with its usual at-most-once rules, woken at once.  The
navigation's counts and the header's freshness come from :func:`nav`, which htmx polls.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, url_for
from werkzeug.wrappers import Response

from replyflow.reply.approvals import ActionError
from replyflow.reply.render import MAX_TWEET_CHARS, ReplyTextError
from replyflow.reply.worklists import QUEUES
from replyflow.web.common import PER_PAGE, actor, done, failed, form, now, page_arg, pages, svc, targets, user

bp = Blueprint("queues", __name__)


@bp.get("/queues/<name>")
def queue(name: str) -> str:
    if name not in QUEUES:
        abort(404)
    page = page_arg()
    items, total = svc().store.worklists.queue(name, user().id, targets(), now(), page, PER_PAGE)
    return render_template("workspace/queue.html", name=name, title=QUEUES[name], items=items, total=total, page=page,
                           pages=pages(total), page_url=lambda n: url_for("queues.queue", name=name, page=n),
                           active=name)


@bp.get("/approvals")
def approvals() -> str:
    """Automatic replies held for approval: approve, edit (and approve) or reject each."""
    page = page_arg()
    items, total = svc().store.approvals.held(page, PER_PAGE)
    return render_template("workspace/approvals.html", items=items, total=total, page=page, pages=pages(total),
                           page_url=lambda n: url_for("queues.approvals", page=n), max_chars=MAX_TWEET_CHARS,
                           active="approvals")


@bp.post("/replies/<int:entry_id>/approve")
def approve(entry_id: int) -> Response:
    """Approve a held reply; with a ``text`` field that differs, the edited text is what goes out."""
    text = form("text") or None
    try:
        entry = svc().store.approvals.approve(entry_id, actor(), text)
    except (ActionError, ReplyTextError) as exc:
        return failed(str(exc), "queues.approvals")
    svc().sender_wakeup.set()
    return done(f"Reply to {entry['ticket_id']} approved: it is queued for sending.", "queues.approvals")


@bp.post("/replies/<int:entry_id>/reject")
def reject(entry_id: int) -> Response:
    try:
        entry = svc().store.approvals.reject(entry_id, actor(), form("reason"))
    except ActionError as exc:
        return failed(str(exc), "queues.approvals")
    return done(f"Reply to {entry['ticket_id']} rejected: it will not be posted.", "queues.approvals")


@bp.get("/failures")
def failures() -> str:
    """Replies stuck in sending, failed, or interrupted mid-post."""
    page = page_arg()
    items, total = svc().store.approvals.problems(page, PER_PAGE)
    return render_template("workspace/failures.html", items=items, total=total, page=page, pages=pages(total),
                           page_url=lambda n: url_for("queues.failures", page=n), active="failures")


@bp.post("/replies/<int:entry_id>/retry")
def retry(entry_id: int) -> Response:
    try:
        entry = svc().store.approvals.retry(entry_id, actor(), confirmed_not_on_x=form("confirm") == "not-on-x")
    except ActionError as exc:
        return failed(str(exc), "queues.failures")
    svc().sender_wakeup.set()
    return done(f"Reply to {entry['ticket_id']} queued again.", "queues.failures")


@bp.get("/fragments/nav")
def nav() -> Any:
    """The queue counts and the freshness line (htmx swaps them in every few seconds)."""
    service = svc()
    return render_template("workspace/_nav.html", counts=service.store.worklists.counts(user().id, targets(), now()),
                           freshness=service.store.worklists.freshness(), queues=QUEUES, reference=now())

