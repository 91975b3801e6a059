"""Admin pages: users (add, disable, enable, reset password) and reply templates (add, edit, delete).

Every route checks the role first: an agent gets 403 on every page and every action here.  The
same account operations are on the command line (``replyflow users ...``) for the first admin.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template
from werkzeug.wrappers import Response

from replyflow.reply.accounts import MIN_PASSWORD_LENGTH, AccountError
from replyflow.reply.canned import MAX_BODY_CHARS, TemplateError
from replyflow.reply.worktables import ROLES
from replyflow.web.common import actor, done, failed, form, now, require_admin, svc

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def _admins_only() -> None:
    require_admin()


@bp.get("/users")
def users() -> str:
    return render_template("workspace/admin_users.html", users=svc().store.accounts.list(), roles=ROLES,
                           min_password=MIN_PASSWORD_LENGTH, now_utc=now(), active="admin")


@bp.post("/users")
def add_user() -> Response:
    try:
        account = svc().store.accounts.add(form("username"), form("password"), form("role", "agent"))
    except AccountError as exc:
        return failed(str(exc), "admin.users")
    return done(f"User {account.username} ({account.role}) added.", "admin.users")


@bp.post("/users/<username>/disable")
def disable_user(username: str) -> Response:
    if username == actor():
        return failed("You cannot disable yourself.", "admin.users")
    return _account_change(lambda: svc().store.accounts.set_active(username, False), f"{username} is disabled and signed out.")


@bp.post("/users/<username>/enable")
def enable_user(username: str) -> Response:
    return _account_change(lambda: svc().store.accounts.set_active(username, True), f"{username} is enabled.")


@bp.post("/users/<username>/password")
def reset_password(username: str) -> Response:
    password = form("password")
    return _account_change(lambda: svc().store.accounts.reset_password(username, password),
                           f"New password set for {username}; their sessions are ended.")


def _account_change(change: Any, message: str) -> Response:
    try:
        change()
    except AccountError as exc:
        return failed(str(exc), "admin.users")
    return done(message, "admin.users")


@bp.get("/templates")
def templates() -> str:
    return render_template("workspace/admin_templates.html", templates=svc().store.templates.list(),
                           max_body=MAX_BODY_CHARS, active="admin")


@bp.post("/templates")
def save_template() -> Response:
    """Create a template (no ``template_id``) or rewrite one."""
    raw_id = form("template_id")
    try:
        template = svc().store.templates.save(int(raw_id) if raw_id.isdigit() else None, form("name"), form("body"), actor())
    except TemplateError as exc:
        return failed(str(exc), "admin.templates")
    return done(f"Template {template.name!r} saved.", "admin.templates")


@bp.post("/templates/<int:template_id>/delete")
def delete_template(template_id: int) -> Response:
    try:
        svc().store.templates.delete(template_id)
    except TemplateError as exc:
        return failed(str(exc), "admin.templates")
    return done("Template deleted.", "admin.templates")
