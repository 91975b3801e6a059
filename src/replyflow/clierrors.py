"""One clear line for the errors a person causes and can fix: a bad file, a bad setting, a service
that is not there, a missing tool.  The CLI prints the line and exits non-zero; the traceback goes
to the log (and to the terminal with ``--debug``).  Anything not recognised here is a bug and
keeps its traceback.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

from pydantic import ValidationError

from replyflow.settings import Settings


def _settings_error(exc: ValidationError) -> str | None:
    if exc.title != Settings.__name__:
        return None
    parts = []
    for err in exc.errors(include_url=False):
        name = str(err["loc"][0]) if err["loc"] else "?"
        # an aliased field reports its environment name (REPLYFLOW_SPARK_MASTER), the others the field name
        env = name if name.isupper() else f"REPLYFLOW_{name.upper()}"
        field = name.removeprefix("REPLYFLOW_").lower()
        message = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"setting {field} ({env} in the environment, .env or replyflow.toml): {message}")
    return "invalid " + "; ".join(parts)


def _database_error(exc: Exception) -> str | None:
    from sqlalchemy.exc import OperationalError

    if not isinstance(exc, OperationalError):
        return None
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
    return f"cannot use the ticket database: {reason}. Check DATABASE_URL (REPLYFLOW_DATABASE_URL) and that the server runs"


def _os_error(exc: Exception) -> str | None:
    if isinstance(exc, FileNotFoundError):
        return f"file not found: {exc.filename or exc}" if exc.filename else str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"address already in use ({exc.strerror}): another process holds the port; set REPLYFLOW_API_PORT"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}"
    return None


def _known_error(exc: Exception) -> str | None:
    from replyflow.core.xapi import XApiConfigError
    from replyflow.ingest.replay import ReplayFileError
    from replyflow.kafka.broker import BrokerError
    from replyflow.reply.accounts import AccountError
    from replyflow.reply.db import SchemaError

    if isinstance(exc, (BrokerError, XApiConfigError, ReplayFileError, AccountError, SchemaError)):
        return str(exc)
    if "JAVA_GATEWAY_EXITED" in str(exc):
        return ("Spark could not start its JVM: check that Java 17 is installed ('java' on PATH) and that "
                "REPLYFLOW_SPARK_MASTER is reachable; details in var/logs/stream.log or with --debug")
    return None


_EXPLAINERS: tuple[Callable[[Exception], str | None], ...] = (_known_error, _database_error, _os_error)


def explain(exc: BaseException) -> str | None:
    """One line for a person, or None when ``exc`` is not a user error (a bug: keep the traceback)."""
    if isinstance(exc, ValidationError):
        return _settings_error(exc)
    if not isinstance(exc, Exception):
        return None
    for explainer in _EXPLAINERS:
        message = explainer(exc)
        if message:
            return message
    return None
