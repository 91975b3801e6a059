"""The reply service's web application: the app factory and its production server.

``create_app(settings)`` composes the JSON API blueprint (:mod:`replyflow.reply.api`, bearer token)
and the agent workspace (:mod:`replyflow.web`, signed-in users), over one
:class:`~replyflow.reply.service.ReplyService` built from the settings it is given, so tests
can create as many isolated apps as they like.  ``serve(settings)`` runs it under waitress,
optionally with the outbox sender in a background thread of the same process (the default
for ``replyflow serve``).  It lives above both blueprints' packages, so neither imports the other.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from replyflow.reply.api import bp as api_bp
from replyflow.reply.auth import resolve_api_token
from replyflow.reply.errors import json_error
from replyflow.reply.service import ReplyService
from replyflow.reply.store import Store
from replyflow.settings import Settings
from replyflow.web import init_web

log = logging.getLogger(__name__)


def create_app(settings: Settings, store: Store | None = None) -> Flask:
    """Build the reply service: API blueprint at /api/v1, the agent workspace at /."""
    app = Flask(__name__)
    # A ticket ID with an encoded slash (/tickets/%2F0) must be "not found", not a 308 redirect to
    # a path with the slashes merged: IDs never contain "/", and API clients should not follow redirects.
    app.url_map.merge_slashes = False
    app.config["JSON_SORT_KEYS"] = False
    app.config["MAX_CONTENT_LENGTH"] = max(1, settings.api_max_batch) * (settings.api_max_text_chars * 4 + 4096)
    store = store or Store.from_settings(settings)
    store.create_all()
    app.extensions["replyflow"] = ReplyService(settings=settings, store=store, api_token=resolve_api_token(settings))
    app.register_blueprint(api_bp)

    @app.before_request
    def _reject_nul() -> Any:
        # PostgreSQL cannot compare text with NUL: a ?q=%00 or /tickets/%00 would be a 500.
        if "\x00" in request.path or any("\x00" in v for v in request.args.values()):
            if request.path.startswith("/api/"):
                return json_error(400, "invalid_query", "NUL characters are not allowed in the URL")
            return "NUL characters are not allowed in the URL", 400
        return None

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if request.path.startswith("/api/"):
            response, status = json_error(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"),
                                          exc.description or "")
            for name, value in exc.get_headers():  # e.g. Allow on a 405
                if name.lower() != "content-type":
                    response.headers[name] = value
            return response, status
        return exc

    @app.errorhandler(Exception)
    def _unhandled(exc: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if request.path.startswith("/api/"):
            return json_error(500, "internal_error", "internal server error")
        return "Internal server error", 500

    init_web(app, settings)  # after _reject_nul: its checks (login, CSRF) run on URLs already known to be sane
    return app


def serve(settings: Settings, with_sender: bool = True) -> None:
    """Serve API + dashboard with waitress on ``api_host:api_port`` until interrupted."""
    from waitress import serve as waitress_serve

    from replyflow.reply.sender import Sender

    app = create_app(settings)
    svc: ReplyService = app.extensions["replyflow"]
    stop = threading.Event()
    thread: threading.Thread | None = None
    if with_sender:
        sender = Sender(settings, outbox=svc.store.outbox)
        thread = threading.Thread(
            target=sender.run_forever, kwargs={"stop": stop, "wakeup": svc.sender_wakeup}, name="outbox-sender", daemon=True
        )
        thread.start()
    log.info("reply service on http://%s:%d (sender %s, dry_run=%s)", settings.api_host, settings.api_port,
             "on" if with_sender else "off", settings.dry_run)
    try:
        waitress_serve(app, host=settings.api_host, port=settings.api_port, threads=8, ident="replyflow")
    finally:
        stop.set()
        svc.sender_wakeup.set()
        if thread is not None:
            thread.join(timeout=10)
        svc.store.dispose()
