"""The agent workspace: server-rendered pages (Jinja2, autoescaped) with a little htmx, behind a login.

One blueprint per area: :mod:`~replyflow.web.auth` (sign-in, sessions, CSRF, rate limit),
:mod:`~replyflow.web.dashboard` (ticket list, overview charts), :mod:`~replyflow.web.queues` (work
queues, held and failed replies), :mod:`~replyflow.web.tickets` (the ticket page and its actions),
:mod:`~replyflow.web.sla` (SLA and agreement figures), :mod:`~replyflow.web.admin` (users, templates).
Views read and write through :func:`replyflow.reply.service.current_service` and its repositories.
"""

from __future__ import annotations

from flask import Flask

from replyflow.settings import Settings
from replyflow.web import admin, auth, dashboard, queues, sla, tickets
from replyflow.web.common import ago


def init_web(app: Flask, settings: Settings) -> None:
    """Register the workspace on ``app`` (the JSON API is registered separately and keeps its token)."""
    auth.install(app, settings)
    for blueprint in (dashboard.bp, queues.bp, tickets.bp, sla.bp, admin.bp):
        app.register_blueprint(blueprint)
    app.jinja_env.globals["ago"] = ago
