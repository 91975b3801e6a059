"""Small helpers every workspace view uses: the signed-in user, form values, paging, redirects, times."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from werkzeug.wrappers import Response

from replyflow.core.times import as_utc, utcnow
from replyflow.reply.accounts import Account
from replyflow.reply.queries import MAX_PAGE
from replyflow.reply.service import ReplyService, current_service
from replyflow.reply.sla import SlaTargets

PER_PAGE = 50


def svc() -> ReplyService:
    return current_service()


def user() -> Account:
    """The signed-in account (every workspace view runs after the login check)."""
    account: Account | None = g.get("user")
    if account is None:
        abort(401)
    return account


def actor() -> str:
    return user().username


def require_admin() -> None:
    """403 for anyone but an admin."""
    if not user().is_admin:
        abort(403)


def targets() -> SlaTargets:
    return SlaTargets.from_settings(svc().settings)


def now() -> datetime:
    return utcnow()


def page_arg() -> int:
    """``?page=``, bounded like the API's (a huge page number overflowed SQLite's OFFSET: a 500)."""
    try:
        return min(max(1, int(request.args.get("page", "1"))), MAX_PAGE)
    except ValueError:
        return 1


def pages(total: int, per_page: int = PER_PAGE) -> int:
    return max(1, -(-total // per_page))


def form(name: str, default: str = "") -> str:
    return (request.form.get(name) or default).strip()


def form_id(name: str) -> int:
    """An integer form field or path value; 400 when it is not one."""
    try:
        return int(request.form.get(name) or "")
    except ValueError:
        abort(400)


def nonce() -> str:
    """A fresh value for a form's hidden ``request_key``: the database keeps one row per value."""
    return secrets.token_urlsafe(16)


def back(default: str, **values: Any) -> Response:
    """Redirect to a same-site ``next`` (the page the form was on), else to ``default``."""
    target = request.form.get("next") or ""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return redirect(target)
    return redirect(url_for(default, **values))


def done(message: str, default: str, **values: Any) -> Response:
    flash(message, "ok")
    return back(default, **values)


def failed(message: str, default: str, **values: Any) -> Response:
    flash(message, "error")
    return back(default, **values)


def ago(moment: datetime | str | None, reference: datetime | None = None) -> str:
    """``3 min ago``: how the header and lists show times (the exact time is in a tooltip)."""
    if moment is None:
        return "never"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    seconds = ((reference or utcnow()) - (as_utc(moment) or utcnow())).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"
