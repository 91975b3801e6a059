"""A PostgreSQL server run by replyflow from the installed server binaries (Debian's ``postgresql``).

Used by ``replyflow up --cluster`` (the ticket store of the local cluster, data kept under
``var/cluster/postgres``) and by the test fixtures (a throwaway server per test session).
``initdb`` once, then ``pg_ctl start``/``stop``: the server is a detached process that
``pg_ctl`` tracks through ``postmaster.pid`` in the data directory, so a later command (``down``)
can stop it.  Listens on 127.0.0.1 and a unix socket in its own directory; local trust
authentication, since nothing but this machine's loopback can reach it.

PostgreSQL refuses to run as root, so as root the binaries run as the ``postgres`` OS user (or
``nobody``) via ``runuser``, in a directory owned by that user.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


class PostgresError(RuntimeError):
    """The PostgreSQL server could not be found, initialised, started or stopped."""


def bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are (``REPLYFLOW_PG_BIN``, Debian's layout, or PATH); None if nowhere."""
    env = os.environ.get("REPLYFLOW_PG_BIN")
    candidates = [env] if env else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.append(str(Path(found).parent))
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    return None


def _run_as() -> str | None:
    """The unprivileged user to run the server as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PostgresError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


@dataclass
class PostgresServer:
    """One server: ``root`` holds ``data/``, ``sock/`` and ``server.log``; ``durable=False`` turns fsync off (tests)."""

    root: Path
    port: int
    durable: bool = True
    bindir: Path | None = field(default_factory=bin_dir)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "replyflow") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _cmd(self, tool: str, *args: str) -> list[str]:
        if self.bindir is None:
            raise PostgresError("PostgreSQL server binaries (initdb, pg_ctl) not installed (apt-get install postgresql); "
                                "or set REPLYFLOW_PG_BIN")
        user = _run_as()
        cmd = [str(self.bindir / tool), *args]
        return ["runuser", "-u", user, "--", *cmd] if user else cmd

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        proc = subprocess.run(self._cmd(tool, *args), capture_output=True, text=True, env=env, cwd=self.root, check=False)
        if check and proc.returncode != 0:
            server_log = self.logfile.read_text(errors="replace")[-3000:] if self.logfile.exists() else ""
            raise PostgresError(f"{tool} {' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr.strip()}\n{server_log}")
        return proc

    def _prepare(self) -> None:
        sock = self.root / "sock"
        sock.mkdir(parents=True, exist_ok=True)
        user = _run_as()
        if user:
            entry = pwd.getpwnam(user)
            for path in (self.root, sock):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            if subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(self.root)], check=False).returncode != 0:
                raise PostgresError(f"PostgreSQL runs as {user!r} (not as root) and cannot reach {self.root}: "
                                    "a parent directory is not searchable by others (chmod o+x it, or move state_dir)")
        if not (self.data / "PG_VERSION").is_file():
            log.info("Initialising PostgreSQL in %s", self.data)
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      *([] if self.durable else ["--no-sync"]))

    def running(self) -> bool:
        return self.data.is_dir() and self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def start(self, database: str = "replyflow") -> str:
        """Start the server (initialising it the first time), create ``database``; returns its SQLAlchemy URL."""
        import psycopg

        self.root.mkdir(parents=True, exist_ok=True)
        self._prepare()
        if not self.running():
            opts = (f"-p {self.port} -k {self.root / 'sock'} -c listen_addresses=127.0.0.1 -c max_connections=100"
                    + ("" if self.durable else " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"))
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-o", opts, "-w", "-t", "60", "start")
            log.info("PostgreSQL started on 127.0.0.1:%d (data %s)", self.port, self.data)
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{database}"')
        return self.url(database)

    def stop(self) -> bool:
        """Fast shutdown (rolls back open transactions, no data loss); False if it was not running."""
        if not self.running():
            return False
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        log.info("PostgreSQL stopped (data %s)", self.data)
        return True
