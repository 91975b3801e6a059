"""Logging set-up for the CLI and services, with secrets redacted from every record."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

_SECRET_PATTERNS = [
    re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=%-]+", re.IGNORECASE),
    re.compile(r"((?:token|secret|password|api_key)[\"']?\s*[=:]\s*[\"']?)[^\s\"',&]+", re.IGNORECASE),
]
_registered_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Make sure this exact value never appears in a log line."""
    if value and len(value) >= 4:
        _registered_secrets.add(value)


def redact(text: str) -> str:
    for secret in _registered_secrets:
        text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites the formatted message so tokens never reach a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class RedactingFormatter(logging.Formatter):
    """Redacts the whole formatted record: the filter only sees the message, not a traceback.

    Exception texts often quote what failed (``401 for Bearer <token>``, a URL with a key),
    and ``log.exception`` appends them after the filter has run.
    """

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str = "INFO", logfile: Path | None = None) -> None:
    """Configure the root logger once: stderr (and optionally a file), redacted."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile is not None:
        logfile.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logfile, encoding="utf-8"))
    fmt = RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    root = logging.getLogger()
    root.handlers.clear()
    for handler in handlers:
        handler.setFormatter(fmt)
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("py4j", "urllib3", "werkzeug", "tensorflow", "absl", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
