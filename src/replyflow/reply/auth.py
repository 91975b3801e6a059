"""Bearer-token auth for /api/v1.

One shared token (``REPLYFLOW_API_TOKEN``).  If none is configured the service does not
run open: :func:`resolve_api_token` generates a random token once, stores it in
``<state_dir>/run/api-token`` (mode 0600) and logs only the file's path, never the value.
Processes on the same machine (stream job, demo) call the same function and read it.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets

from replyflow.core.tokens import read_api_token, token_file
from replyflow.logs import register_secret
from replyflow.settings import Settings

log = logging.getLogger(__name__)


def resolve_api_token(settings: Settings) -> str:
    """The API token: :func:`read_api_token`, else a new one written to :func:`token_file`."""
    existing = read_api_token(settings)
    if existing:
        return existing
    path = token_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    register_secret(token)
    log.warning("REPLYFLOW_API_TOKEN is not set: generated one and stored it in %s (mode 0600)", path)
    return token


def check_bearer(header: str | None, expected: str) -> bool:
    """Constant-time comparison of an ``Authorization: Bearer <token>`` header."""
    if not header or not header.startswith("Bearer "):
        return False
    given = header[len("Bearer "):].strip()
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
