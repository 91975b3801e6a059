"""Signing in to the workspace, and the protections every workspace request gets.

:func:`install` sets up, for the whole app except the JSON API (which keeps its bearer token):

* the session cookie: signed with ``web_secret_key`` (else a key generated once into
  ``<state_dir>/run/web-secret``), HttpOnly, SameSite=Lax, Secure on HTTPS requests or always with
  ``web_cookie_secure``, valid ``web_session_hours``;
* CSRF protection (Flask-WTF) on every form; a POST without a valid token is a 400;
* a login check on every page: the session names a user and that user's ``session_version``; a
  disabled user, a password reset or "log out everywhere" ends every session at the next request;
* a rate limit on login attempts per client address (Flask-Limiter, in memory) on top of the
  per-account lockout kept in the database (:mod:`replyflow.reply.accounts`);
* security headers (a strict Content-Security-Policy: no inline script, nothing from elsewhere).

At login the session is cleared and a new one issued (no session fixation).
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, g, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response

from replyflow.reply.api import bp as api_bp
from replyflow.reply.auth import resolve_web_secret
from replyflow.reply.service import current_service
from replyflow.settings import Settings
from replyflow.web.common import form

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)
PUBLIC_ENDPOINTS = {"auth.login", "dashboard.static"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
LOGIN_MESSAGES = {
    "invalid": "Wrong user name or password.",
    "locked": "Too many wrong passwords: this account is locked for a while. An admin can reset its password.",
    "disabled": "This account is disabled.",
}


class WorkspaceSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the cookie marked Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def install(app: Flask, settings: Settings) -> None:
    """Sessions, CSRF, the login check, the login rate limit and the security headers (see the module doc)."""
    app.secret_key = resolve_web_secret(settings)
    lifetime = timedelta(hours=settings.web_session_hours)
    app.config.update(
        SESSION_COOKIE_NAME="replyflow_session", SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.web_cookie_secure, PERMANENT_SESSION_LIFETIME=lifetime,
        WTF_CSRF_TIME_LIMIT=int(lifetime.total_seconds()),
    )
    app.session_interface = WorkspaceSessions()
    csrf = CSRFProtect(app)
    csrf.exempt(api_bp)
    app.before_request(_require_login)
    app.after_request(_security_headers)
    app.register_blueprint(bp)
    # One limiter (and one in-memory count) per app; it wraps this app's login view only.
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://", headers_enabled=True)
    app.view_functions["auth.login"] = limiter.limit(settings.web_login_rate_limit, methods=["POST"])(login)


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _require_login() -> Any:
    """Every workspace request: no NUL in forms, a valid session, else the login page (or 401 for htmx)."""
    g.user = None
    if _is_api():
        return None
    if any("\x00" in value for values in request.form.listvalues() for value in values):
        return "NUL characters are not allowed in a form", 400
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return None
    account = None
    login_at = session.get("at")
    lifetime = current_service().settings.web_session_hours * 3600
    if isinstance(login_at, int) and time.time() - login_at < lifetime:
        account = current_service().store.accounts.session_user(session.get("uid"), session.get("ver"))
    if account is None:
        session.clear()
        if request.headers.get("HX-Request"):
            return Response("signed out", 401, {"HX-Redirect": url_for("auth.login")})
        if request.method == "GET":
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return "Sign in first", 401
    g.user = account
    return None


def _security_headers(response: Response) -> Response:
    if not _is_api():
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.endpoint != "dashboard.static":
            response.headers.setdefault("Cache-Control", "no-store")
    return response


def _next_url() -> str:
    target = request.values.get("next") or ""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target and not target.startswith("/login"):
        return target
    return url_for("queues.queue", name="unassigned")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The sign-in form; a successful login starts a brand-new session."""
    if request.method == "GET":
        return render_template("workspace/login.html", next=_next_url(), error=None)
    username = form("username")[:64]
    result = current_service().store.accounts.authenticate(username, request.form.get("password") or "")
    if result.account is None:
        log.info("failed login for %r: %s", username, result.outcome)
        return render_template("workspace/login.html", next=_next_url(), error=LOGIN_MESSAGES[result.outcome],
                               username=username), 401
    target = _next_url()
    session.clear()  # a new session (and CSRF token) at every login: nothing carries over from before
    session.permanent = True
    session.update(uid=result.account.id, ver=result.account.session_version, at=int(time.time()),
                   sid=secrets.token_urlsafe(16))
    log.info("%s signed in", result.account.username)
    return redirect(target)


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("auth.login"))


@bp.post("/logout-everywhere")
def logout_everywhere() -> Response:
    """End every session of the signed-in user (another browser, a lost laptop)."""
    account = g.get("user")
    if account is not None:
        current_service().store.accounts.end_sessions(account.id)
        log.info("%s ended all their sessions", account.username)
    session.clear()
    return redirect(url_for("auth.login"))
