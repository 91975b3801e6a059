"""Where the reply API's bearer token lives, and how its clients read it.

One shared token (``REPLYFLOW_API_TOKEN``).  When none is configured, the reply service
generates one once into ``<state_dir>/run/api-token`` (mode 0600, see
:func:`replyflow.reply.auth.resolve_api_token`); its clients on the same machine (the stream
job, the demo) read it from there with :func:`read_api_token` and never generate one.
"""

from __future__ import annotations

from pathlib import Path

from replyflow.logs import register_secret
from replyflow.settings import Settings


def token_file(settings: Settings) -> Path:
    return settings.state_dir / "run" / "api-token"


def read_api_token(settings: Settings) -> str | None:
    """The API token: from settings, else from :func:`token_file`; None when neither has one."""
    configured = settings.secret("api_token")
    if configured:
        register_secret(configured)
        return configured
    return read_secret_file(token_file(settings))


def read_secret_file(path: Path) -> str | None:
    """The secret stored in ``path`` (registered for log redaction), or None when there is none."""
    if path.is_file():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            register_secret(token)
            return token
    return None
