"""The reply service's web application: the app factory and its production server.

``create_app(settings)`` composes the JSON API blueprint (:mod:`replyflow.reply.api`, bearer token)
and the agent workspace (:mod:`replyflow.web`, signed-in users), over one
:class:`~replyflow.reply.service.ReplyService` built from the settings it is given, so tests
can create as many isolated apps as they like.  ``serve(settings)`` runs it under waitress,
optionally with the outbox sender in a background thread of the same process (the default
for ``replyflow serve``).  It lives above both blueprints' packages, so neither imports the other.

``GET /metrics`` is the Prometheus exposition of the service and its sender
(:mod:`replyflow.reply.metrics`); like ``/api/v1/health`` it needs no token: bind the service
to an internal interface (``api_host``) or put it behind a proxy that hides ``/metrics``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import make_wsgi_app
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from replyflow.reply.api import bp as api_bp
from replyflow.reply.auth import resolve_api_token
from replyflow.reply.errors import json_error
from replyflow.reply.metrics import ReplyMetrics
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
    metrics = app.extensions["replyflow_metrics"] = ReplyMetrics(store.outbox.counts)
    app.register_blueprint(api_bp)

    @app.before_request
    def _start_timer() -> None:
        g.replyflow_started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        # The route pattern, not the path: one series per endpoint, not one per ticket id.
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        started = g.get("replyflow_started", time.perf_counter())
        metrics.observe_request(endpoint, request.method, response.status_code, time.perf_counter() - started)
        return response

    # /metrics in front of Flask (prometheus_client's WSGI app): Prometheus has no workspace session,
    # so the page must not pass through the workspace's login, CSRF or security layers.
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/metrics": make_wsgi_app(metrics.registry)})  # type: ignore[method-assign]

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
    """Serve API + dashboard with waitress on ``api_host:api_port`` until SIGTERM or Ctrl-C.

    A stop is graceful: the server stops accepting, finishes the requests in flight (waitress
    waits up to 5 s), the sender finishes the reply it is posting (and claims no more), and the
    process exits 0.  An entry a killed sender leaves in ``sending`` is surfaced by the lease."""
    from waitress.server import create_server

    from replyflow.reply.sender import Sender

    app = create_app(settings)
    svc: ReplyService = app.extensions["replyflow"]
    sender: Sender | None = None
    thread: threading.Thread | None = None
    if with_sender:
        sender = Sender(settings, outbox=svc.store.outbox, metrics=app.extensions["replyflow_metrics"])
        thread = threading.Thread(target=sender.run_forever, kwargs={"wakeup": svc.sender_wakeup},
                                  name="outbox-sender", daemon=True)
        thread.start()
    server = create_server(app, host=settings.api_host, port=settings.api_port, threads=8, ident="replyflow")
    log.info("reply service on http://%s:%d (sender %s, dry_run=%s)", settings.api_host, settings.api_port,
             "on" if with_sender else "off", settings.dry_run)
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if threading.current_thread() is threading.main_thread() else None
    try:
        server.run()  # returns after SIGTERM / Ctrl-C, once the request threads finished
    finally:
        log.info("reply service stopping")
        server.close()
        if sender is not None and thread is not None:
            sender.stopping.set()
            svc.sender_wakeup.set()
            thread.join(timeout=max(30.0, settings.sender_lease_seconds))
            if thread.is_alive():
                log.warning("the sender is still posting a reply; it will be marked uncertain after its lease")
        svc.store.dispose()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    log.info("reply service stopped")


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    # waitress's loop turns SystemExit into a clean shutdown of its request threads.
    log.warning("SIGTERM received: finishing requests in flight, then stopping")
    raise SystemExit(0)
