"""The OpenAPI 3 description of /api/v1, hand-written (small API, no generator needed)."""

from __future__ import annotations

from typing import Any

from replyflow.reply.models import OUTBOX_STATUSES, TICKET_STATUSES
from replyflow.reply.policy import REASONS
from replyflow.settings import SENTIMENT_CLASSES, TOPIC_CLASSES


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERR = {"400": _json(_ref("Error"), "Invalid input"), "401": _json(_ref("Error"), "Missing or wrong bearer token")}


def openapi_document() -> dict[str, Any]:
    string_id = {"type": "string", "pattern": "^[0-9]{1,20}$"}
    nullable_str = {"type": ["string", "null"]}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "replyflow reply service",
            "version": "1.0.0",
            "description": "Tickets and public replies for enriched airline tweets. See docs/API.md.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/replies": {
                "post": {
                    "summary": "Ingest one enriched tweet or a batch (idempotent by tweet_id)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"oneOf": [
                            _ref("EnrichedTweet"),
                            {"type": "object", "required": ["tweets"],
                             "properties": {"tweets": {"type": "array", "items": _ref("EnrichedTweet")}}},
                        ]}}},
                    },
                    "responses": {
                        "200": _json({"oneOf": [_ref("ReplyResult"), {"type": "object", "properties": {
                            "results": {"type": "array", "items": _ref("ReplyResult")}}}]},
                            "One result per tweet, in request order"),
                        **_ERR,
                    },
                }
            },
            "/tickets": {
                "get": {
                    "summary": "List tickets, newest first",
                    "parameters": [
                        {"name": "status", "in": "query", "schema": {"enum": list(TICKET_STATUSES)}},
                        {"name": "topic", "in": "query", "schema": {"type": "string"},
                         "description": "Topic class name or 3-letter code (BAG, ... GEN)"},
                        {"name": "sentiment", "in": "query", "schema": {"enum": list(SENTIMENT_CLASSES)}},
                        {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
                        {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
                        {"name": "q", "in": "query", "schema": {"type": "string"},
                         "description": "Substring of ticket ID, author handle or any tweet text"},
                        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                        {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                    ],
                    "responses": {"200": _json({"type": "object", "properties": {
                        "items": {"type": "array", "items": _ref("Ticket")}, "total": {"type": "integer"},
                        "page": {"type": "integer"}, "per_page": {"type": "integer"}}}, "A page of tickets"), **_ERR},
                }
            },
            "/tickets/{ticket_id}": {
                "parameters": [{"name": "ticket_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "get": {"summary": "One ticket with its tweets and outbox entry",
                        "responses": {"200": _json(_ref("TicketDetail"), "The ticket"),
                                      "404": _json(_ref("Error"), "No such ticket"), **_ERR}},
                "patch": {
                    "summary": "Change the status",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["status"],
                        "properties": {"status": {"enum": list(TICKET_STATUSES)}}}}}},
                    "responses": {"200": _json(_ref("TicketDetail"), "Updated ticket"),
                                  "404": _json(_ref("Error"), "No such ticket"),
                                  "409": _json(_ref("Error"), "Conversation already has another open ticket"), **_ERR},
                },
            },
            "/health": {"get": {"summary": "Database reachable? Outbox counts. No auth.", "security": [],
                                "responses": {"200": _json({"type": "object"}, "Healthy"),
                                              "503": _json({"type": "object"}, "Database unreachable")}}},
            "/stats": {"get": {"summary": "Counts per sentiment, topic, status, reason; outbox counts",
                               "responses": {"200": _json({"type": "object"}, "Counts"), **_ERR}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": _json({"type": "object"}, "OpenAPI 3")}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"},
                    "details": {"type": "array", "items": {"type": "object", "properties": {
                        "loc": {"type": "string"}, "msg": {"type": "string"}}}}}}}},
                "Entity": {"type": "object", "required": ["text", "label", "start", "end"], "properties": {
                    "text": {"type": "string"}, "label": {"type": "string"},
                    "start": {"type": "integer"}, "end": {"type": "integer"}}},
                "EnrichedTweet": {
                    "type": "object",
                    "required": ["tweet_id", "text", "author_id", "author_handle", "created_at", "sentiment", "sentiment_score"],
                    "properties": {
                        "tweet_id": string_id, "text": {"type": "string", "minLength": 1},
                        "author_id": {"type": "string"}, "author_handle": {"type": "string"},
                        "created_at": {"type": "string", "format": "date-time"},
                        "conversation_id": {**string_id, "description": "defaults to tweet_id"},
                        "in_reply_to_tweet_id": nullable_str, "lang": nullable_str, "source": nullable_str,
                        "matched_rules": {"type": "array", "items": {"type": "string"}},
                        "clean_text": nullable_str,
                        "sentiment": {"enum": list(SENTIMENT_CLASSES)},
                        "sentiment_score": {"type": "number", "minimum": 0, "maximum": 1},
                        "topic": {"enum": [*TOPIC_CLASSES, None]},
                        "topic_score": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                        "entities": {"type": "array", "items": _ref("Entity")},
                        "model_version": nullable_str,
                        "processed_at": {"type": ["string", "null"], "format": "date-time"},
                        "needs_reply": {"type": ["boolean", "null"], "description": "ignored: recomputed by the policy"},
                    },
                },
                "ReplyResult": {"type": "object", "properties": {
                    "tweet_id": {"type": "string"},
                    "decision": {"enum": ["reply", "ticket", "ignore"]},
                    "needs_reply": {"type": "boolean"}, "auto_reply": {"type": "boolean"},
                    "reason": {"enum": list(REASONS)},
                    "ticket_id": nullable_str, "reply_queued": {"type": "boolean"}, "duplicate": {"type": "boolean"}}},
                "Ticket": {"type": "object", "properties": {
                    "ticket_id": {"type": "string", "example": "BAG-20261124-0042"},
                    "status": {"enum": list(TICKET_STATUSES)}, "topic": nullable_str, "topic_code": {"type": "string"},
                    "sentiment": nullable_str, "reason": {"type": "string"}, "conversation_id": {"type": "string"},
                    "author_handle": nullable_str, "first_tweet_id": {"type": "string"},
                    "created_at": {"type": "string"}, "updated_at": {"type": "string"}}},
                "TicketDetail": {"allOf": [_ref("Ticket"), {"type": "object", "properties": {
                    "tweets": {"type": "array", "items": {"type": "object"}},
                    "outbox": {"type": ["object", "null"], "properties": {
                        "status": {"enum": list(OUTBOX_STATUSES)}, "text": {"type": "string"},
                        "attempts": {"type": "integer"}, "last_error": nullable_str,
                        "posted_tweet_id": nullable_str, "note": nullable_str}}}}]},
            },
        },
    }
