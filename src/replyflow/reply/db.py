"""The ticket database: engine set-up for SQLite and PostgreSQL, and short transactions.

Why the care: the stream job retries batches (at-least-once), several API threads or
instances may receive the same tweet at once, and a public reply must never go out twice.
Every write runs in one short transaction and the database's unique constraints (see
:mod:`replyflow.reply.tables`) are the referee.

SQLite: WAL (readers never block the writer), a busy timeout, and ``BEGIN IMMEDIATE`` for
write transactions so two writers queue up instead of deadlocking on a lock upgrade.
PostgreSQL (``postgresql://`` URLs use psycopg 3): READ COMMITTED plus the constraints.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from replyflow.reply import worktables  # noqa: F401 - registers the workspace's tables on Base
from replyflow.reply.tables import Base

log = logging.getLogger(__name__)


def normalise_url(url: str) -> str:
    """``postgresql://`` / ``postgres://`` -> psycopg 3 driver (SQLAlchemy defaults to psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    return make_url(normalise_url(url)).render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    """An engine configured for concurrent use by API threads and the sender."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=10)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        readonly = conn.get_execution_options().get("replyflow_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


class SchemaError(RuntimeError):
    """The database's tables do not match this version's (an older schema)."""


class Database:
    """An engine with read and write transactions; every repository of the reply service shares one."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(replyflow_readonly=True), expire_on_commit=False
        )
        # SQLite has one writer at a time anyway; queueing writers on a lock here is much
        # faster than letting them spin in SQLite's busy handler (which sleeps up to 100 ms).
        self._write_lock: Any = threading.Lock() if self.engine.dialect.name == "sqlite" else nullcontext()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_all(self) -> None:
        """Create missing tables (no migrations yet), and refuse a database made by an older version.

        ``create_all`` never alters an existing table, so a database created before a column was
        added would fail later on the first query that reads it; saying so at start is kinder."""
        Base.metadata.create_all(self.engine)
        inspector = inspect(self.engine)
        missing = [f"{table.name}.{column.name}" for table in Base.metadata.sorted_tables
                   for column in table.columns
                   if column.name not in {c["name"] for c in inspector.get_columns(table.name)}]
        if missing:
            raise SchemaError(f"the database was created by an older replyflow and lacks {', '.join(missing)}: "
                              "see docs/OPERATIONS.md (upgrading the ticket database)")

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        with self._write_lock, self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read_sessions() as session, session.begin():
            yield session

    def ping(self) -> bool:
        try:
            with self.read() as session:
                session.execute(select(1))
            return True
        except Exception:  # noqa: BLE001 - health check reports, never raises
            log.warning("database ping failed", exc_info=True)
            return False
