"""JSON error responses, shared by the API blueprint and the app-wide handlers."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify


def json_error(status: int, code: str, message: str, details: list[dict[str, Any]] | None = None) -> tuple[Response, int]:
    """``{"error": {"code", "message", "details"}}`` with the HTTP status."""
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return jsonify(body), status
