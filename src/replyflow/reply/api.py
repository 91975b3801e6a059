"""The /api/v1 blueprint: ingest enriched tweets, read and update tickets, health, stats.

Every endpoint except ``GET /health`` (load balancers, the demo's wait loop) needs the
bearer token.  Errors are JSON: ``{"error": {"code", "message", "details"?}}``.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from replyflow.reply.auth import check_bearer
from replyflow.reply.errors import json_error
from replyflow.reply.models import TICKET_STATUSES
from replyflow.reply.openapi import openapi_document
from replyflow.reply.policy import decide
from replyflow.reply.schemas import BodyError, parse_body
from replyflow.reply.service import ReplyService

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
PUBLIC_ENDPOINTS = {"api.health"}
#: highest page number the API and the dashboard accept: a huge OFFSET overflowed SQLite (a 500)
MAX_PAGE = 1_000_000


def service() -> ReplyService:
    return current_app.extensions["replyflow"]


@bp.before_request
def _authenticate() -> Any:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not check_bearer(request.headers.get("Authorization"), service().api_token):
        return json_error(401, "unauthorized", "missing or invalid bearer token")
    return None


def _json_body() -> Any:
    """The request's JSON, or None if it is not JSON.

    ``get_json(silent=True)`` swallows decode errors but not ``RecursionError`` (deeply
    nested brackets), which would otherwise surface as a 500.
    """
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


@bp.post("/replies")
def post_replies() -> Any:
    """Ingest one enriched tweet or a batch; idempotent by tweet_id."""
    svc = service()
    payload = _json_body()
    if payload is None:
        return json_error(400, "invalid_json", "body must be JSON (Content-Type: application/json)")
    try:
        tweets, is_batch = parse_body(
            payload, max_batch=svc.settings.api_max_batch, max_text_chars=svc.settings.api_max_text_chars
        )
    except BodyError as exc:
        return json_error(400, "invalid_body", exc.message, exc.details)
    records = [tweet.to_record() for tweet in tweets]
    items = [(record, decide(record, svc.settings)) for record in records]
    results = [r.as_dict() for r in svc.store.ingest_many(items)]
    queued = sum(r["reply_queued"] for r in results)
    if queued:
        svc.wake_sender()
    log.info("ingested %d tweet(s), %d new, %d replies queued", len(results),
             sum(not r["duplicate"] for r in results), queued)
    if is_batch:
        return jsonify({"results": results})
    return jsonify(results[0])


def _date_arg(name: str) -> date | None:
    value = request.args.get(name)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise BodyError(f"{name}: expected YYYY-MM-DD", [{"loc": name, "msg": "expected YYYY-MM-DD"}]) from exc


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise BodyError(f"{name}: expected an integer", [{"loc": name, "msg": "expected an integer"}]) from exc
    if not lo <= number <= hi:
        raise BodyError(f"{name}: must be between {lo} and {hi}", [{"loc": name, "msg": f"between {lo} and {hi}"}])
    return number


@bp.get("/tickets")
def list_tickets() -> Any:
    status = request.args.get("status") or None
    if status and status not in TICKET_STATUSES:
        return json_error(400, "invalid_query", f"status must be one of {', '.join(TICKET_STATUSES)}")
    try:
        page = _int_arg("page", 1, 1, MAX_PAGE)
        per_page = _int_arg("per_page", 50, 1, 200)
        items, total = service().store.list_tickets(
            status=status,
            topic=request.args.get("topic") or None,
            sentiment=request.args.get("sentiment") or None,
            date_from=_date_arg("from"),
            date_to=_date_arg("to"),
            q=(request.args.get("q") or "").strip() or None,
            page=page,
            per_page=per_page,
        )
    except BodyError as exc:
        return json_error(400, "invalid_query", exc.message, exc.details)
    return jsonify({"items": items, "total": total, "page": page, "per_page": per_page})


@bp.get("/tickets/<ticket_id>")
def get_ticket(ticket_id: str) -> Any:
    ticket = service().store.get_ticket(ticket_id)
    if ticket is None:
        return json_error(404, "not_found", f"no ticket {ticket_id}")
    return jsonify(ticket)


@bp.patch("/tickets/<ticket_id>")
def patch_ticket(ticket_id: str) -> Any:
    payload = _json_body()
    if not isinstance(payload, dict):
        return json_error(400, "invalid_json", 'body must be a JSON object like {"status": "resolved"}')
    status = payload.get("status")
    if status not in TICKET_STATUSES:
        return json_error(400, "invalid_body", f"status must be one of {', '.join(TICKET_STATUSES)}",
                          [{"loc": "status", "msg": f"one of {', '.join(TICKET_STATUSES)}"}])
    try:
        ticket = service().store.set_status(ticket_id, status)
    except ValueError as exc:
        return json_error(409, "conflict", str(exc))
    if ticket is None:
        return json_error(404, "not_found", f"no ticket {ticket_id}")
    log.info("ticket %s -> %s", ticket_id, status)
    return jsonify(ticket)


@bp.get("/health")
def health() -> Any:
    store = service().store
    ok = store.ping()
    body: dict[str, Any] = {"status": "ok" if ok else "degraded", "database": "ok" if ok else "unreachable"}
    if ok:
        body["outbox"] = store.outbox_counts()
    return jsonify(body), 200 if ok else 503


@bp.get("/stats")
def stats() -> Any:
    return jsonify(service().store.stats())


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())
