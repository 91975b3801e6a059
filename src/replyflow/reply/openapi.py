"""The OpenAPI 3.1 document of /api/v1, generated from the pydantic models the API validates with.

Request bodies, query parameters and responses all come from :mod:`replyflow.reply.payloads`
and :class:`replyflow.core.contracts.EnrichedTweet`; only the paths are written here.  The
limits that depend on settings (batch size, text length) are filled in from the running
service's settings, so the document states exactly what that service accepts.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from replyflow.core.contracts import EnrichedTweet
from replyflow.reply.payloads import (
    ErrorBody,
    Health,
    ReplyResult,
    ReplyResults,
    Stats,
    StatusChange,
    TicketDetail,
    TicketPage,
    TicketQuery,
    TweetBatch,
)

_MODELS: list[type[BaseModel]] = [EnrichedTweet, TweetBatch, ReplyResult, ReplyResults, TicketPage, TicketDetail,
                                  StatusChange, ErrorBody, Health, Stats]
_NO_NUL = "^[^\\u0000]*$"  # PostgreSQL cannot store NUL: every string refuses it


def _ref(model: type[BaseModel] | str) -> dict[str, str]:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _forbid_nul(schema: Any) -> None:
    """Add "no NUL character" to every string schema without a pattern (in place)."""
    if isinstance(schema, dict):
        if schema.get("type") == "string" and "pattern" not in schema and "enum" not in schema \
                and "format" not in schema and "const" not in schema:
            schema["pattern"] = _NO_NUL
        for value in schema.values():
            _forbid_nul(value)
    elif isinstance(schema, list):
        for value in schema:
            _forbid_nul(value)


def _components(max_batch: int, max_text_chars: int) -> dict[str, Any]:
    _, top = models_json_schema([(m, "validation") for m in _MODELS], ref_template="#/components/schemas/{model}")
    schemas = copy.deepcopy(top["$defs"])
    schemas["EnrichedTweet"]["properties"]["text"]["maxLength"] = max_text_chars
    schemas["TweetBatch"]["properties"]["tweets"]["maxItems"] = max_batch
    _forbid_nul(schemas)
    return schemas


def _query_parameters() -> list[dict[str, Any]]:
    schema = TicketQuery.model_json_schema(by_alias=True)
    params = []
    for name, prop in schema["properties"].items():
        prop = {k: v for k, v in prop.items() if k not in ("title", "default")}
        description = prop.pop("description", None)
        if "anyOf" in prop:  # optional: the parameter is simply left out, never sent as null
            prop = next(p for p in prop["anyOf"] if p.get("type") != "null")
        _forbid_nul(prop)
        param: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": prop}
        if description:
            param["description"] = description
        params.append(param)
    return params


def openapi_document(max_batch: int = 500, max_text_chars: int = 1000) -> dict[str, Any]:
    """The document for a service that accepts batches of ``max_batch`` and texts of ``max_text_chars``."""
    errors = {
        "400": _json(_ref(ErrorBody), "Invalid input"),
        "401": _json(_ref(ErrorBody), "Missing or wrong bearer token"),
    }
    not_allowed = {"405": _json(_ref(ErrorBody), "Method not allowed (the Allow header lists the allowed ones)")}
    ticket_path = {"name": "ticket_id", "in": "path", "required": True,
                   "schema": {"type": "string", "pattern": "^[^/\\u0000]+$"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "replyflow reply service",
            "version": "1.1.0",
            "description": "Tickets and public replies for enriched airline tweets. See docs/API.md.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/replies": {
                "post": {
                    "summary": "Ingest one enriched tweet or a batch (idempotent by tweet_id)",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "oneOf": [_ref(EnrichedTweet), _ref(TweetBatch)]}}}},
                    "responses": {
                        "200": _json({"oneOf": [_ref(ReplyResult), _ref(ReplyResults)]},
                                     "One result per tweet, in request order"),
                        "413": _json(_ref(ErrorBody), "Body larger than the service accepts"),
                        **errors, **not_allowed,
                    },
                }
            },
            "/tickets": {
                "get": {
                    "summary": "List tickets, newest first",
                    "parameters": _query_parameters(),
                    "responses": {"200": _json(_ref(TicketPage), "A page of tickets"), **errors, **not_allowed},
                }
            },
            "/tickets/{ticket_id}": {
                "parameters": [ticket_path],
                "get": {"summary": "One ticket with its tweets and outbox entry",
                        "responses": {"200": _json(_ref(TicketDetail), "The ticket"),
                                      "404": _json(_ref(ErrorBody), "No such ticket"), **errors, **not_allowed}},
                "patch": {
                    "summary": "Change the status",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(StatusChange)}}},
                    "responses": {"200": _json(_ref(TicketDetail), "Updated ticket"),
                                  "404": _json(_ref(ErrorBody), "No such ticket"),
                                  "409": _json(_ref(ErrorBody), "Conversation already has another open ticket"),
                                  **errors, **not_allowed},
                },
            },
            "/health": {"get": {"summary": "Database reachable? Outbox counts. No auth.", "security": [],
                                "responses": {"200": _json(_ref(Health), "Healthy"),
                                              "503": _json(_ref(Health), "Database unreachable"), **not_allowed}}},
            "/stats": {"get": {"summary": "Counts per sentiment, topic, status, reason; outbox counts",
                               "responses": {"200": _json(_ref(Stats), "Counts"), **errors, **not_allowed}}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1"),
                                                    "401": errors["401"], **not_allowed}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _components(max_batch, max_text_chars),
        },
    }
