"""The /api/v1 blueprint: ingest enriched tweets, read and update tickets, health, stats, the OpenAPI document.

Every endpoint except ``GET /health`` (load balancers, the demo's wait loop) needs the
bearer token.  Errors are JSON:
``{"error": {"code", "message", "details"?}}``.  Request and response shapes are the pydantic
models of :mod:`replyflow.reply.payloads`; the OpenAPI document is generated from them.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request
from pydantic import ValidationError

from replyflow.reply.auth import check_bearer
from replyflow.reply.errors import json_error
from replyflow.reply.openapi import openapi_document
from replyflow.reply.payloads import BodyError, StatusChange, TicketQuery, error_details, parse_body
from replyflow.reply.service import current_service

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
PUBLIC_ENDPOINTS = {"api.health"}


@bp.before_request
def _authenticate() -> Any:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not check_bearer(request.headers.get("Authorization"), current_service().api_token):
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
    svc = current_service()
    payload = _json_body()
    if payload is None:
        return json_error(400, "invalid_json", "body must be JSON (Content-Type: application/json)")
    try:
        tweets, is_batch = parse_body(
            payload, max_batch=svc.settings.api_max_batch, max_text_chars=svc.settings.api_max_text_chars
        )
    except BodyError as exc:
        return json_error(400, "invalid_body", exc.message, exc.details)
    results = [r.as_dict() for r in svc.ingest([tweet.to_record() for tweet in tweets])]
    log.info("ingested %d tweet(s), %d new, %d replies queued", len(results),
             sum(not r["duplicate"] for r in results), sum(r["reply_queued"] for r in results))
    return jsonify({"results": results}) if is_batch else jsonify(results[0])


@bp.get("/tickets")
def list_tickets() -> Any:
    try:
        query = TicketQuery.from_args(request.args)
    except BodyError as exc:
        return json_error(400, "invalid_query", exc.message, exc.details)
    items, total = current_service().list_tickets(query.filters(), query.page, query.per_page)
    return jsonify({"items": items, "total": total, "page": query.page, "per_page": query.per_page})


@bp.get("/tickets/<ticket_id>")
def get_ticket(ticket_id: str) -> Any:
    ticket = current_service().get_ticket(ticket_id)
    if ticket is None:
        return json_error(404, "not_found", f"no ticket {ticket_id}")
    return jsonify(ticket)


@bp.patch("/tickets/<ticket_id>")
def patch_ticket(ticket_id: str) -> Any:
    payload = _json_body()
    if not isinstance(payload, dict):
        return json_error(400, "invalid_json", 'body must be a JSON object like {"status": "resolved"}')
    try:
        change = StatusChange.model_validate(payload)
    except ValidationError as exc:
        return json_error(400, "invalid_body", "status must be one of open, pending, resolved", error_details(exc))
    try:
        ticket = current_service().set_status(ticket_id, change.status)
    except ValueError as exc:
        return json_error(409, "conflict", str(exc))
    if ticket is None:
        return json_error(404, "not_found", f"no ticket {ticket_id}")
    log.info("ticket %s -> %s", ticket_id, change.status)
    return jsonify(ticket)


@bp.get("/health")
def health() -> Any:
    body = current_service().health()
    return jsonify(body), 200 if body["status"] == "ok" else 503


@bp.get("/stats")
def stats() -> Any:
    return jsonify(current_service().stats())


@bp.get("/openapi.json")
def openapi() -> Response:
    settings = current_service().settings
    return jsonify(openapi_document(settings.api_max_batch, settings.api_max_text_chars))
