"""Bearer-token auth for /api/v1, and the key that signs the workspace's session cookies.

One shared token (``REPLYFLOW_API_TOKEN``).  If none is configured the service does not
run open: :func:`resolve_api_token` generates a random token once, stores it in
``<state_dir>/run/api-token`` (mode 0600) and logs only the file's path, never the value.
Processes on the same machine (stream job, demo) call the same function and read it.
The session key (``REPLYFLOW_WEB_SECRET_KEY``) works the same way (``<state_dir>/run/web-secret``),
so sessions survive a restart and every instance sharing the state folder accepts them.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

from replyflow.core.tokens import read_api_token, read_secret_file, token_file
from replyflow.logs import register_secret
from replyflow.settings import Settings

log = logging.getLogger(__name__)


def _generate_secret(path: Path, variable: str) -> str:
    """A new random secret written to ``path`` (mode 0600); only the path is logged."""
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    register_secret(token)
    log.warning("%s is not set: generated one and stored it in %s (mode 0600)", variable, path)
    return token


def resolve_api_token(settings: Settings) -> str:
    """The API token: :func:`read_api_token`, else a new one written to :func:`token_file`."""
    return read_api_token(settings) or _generate_secret(token_file(settings), "REPLYFLOW_API_TOKEN")


def web_secret_file(settings: Settings) -> Path:
    return settings.state_dir / "run" / "web-secret"


def resolve_web_secret(settings: Settings) -> str:
    """The key that signs session cookies: the setting, else :func:`web_secret_file` (generated once)."""
    configured = settings.secret("web_secret_key")
    if configured:
        register_secret(configured)
        return configured
    path = web_secret_file(settings)
    return read_secret_file(path) or _generate_secret(path, "REPLYFLOW_WEB_SECRET_KEY")


def check_bearer(header: str | None, expected: str) -> bool:
    """Constant-time comparison of an ``Authorization: Bearer <token>`` header."""
    if not header or not header.startswith("Bearer "):
        return False
    given = header[len("Bearer "):].strip()
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
