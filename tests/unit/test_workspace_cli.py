"""``replyflow users ...`` and ``replyflow corrections export`` as a person runs them (real processes)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def _cli(settings: Any, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REPLYFLOW_STATE_DIR": str(settings.state_dir), "REPLYFLOW_LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "replyflow.cli", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def test_users_commands(settings: Any) -> None:
    from replyflow.reply.store import Store

    added = _cli(settings, "users", "add", "Boss", "--role", "admin", "--password-stdin", stdin="boss-password-1\n")
    assert added.returncode == 0 and "added boss (admin)" in added.stdout, added.stderr
    assert _cli(settings, "users", "add", "eve", "--password-stdin", stdin="eve-password-1\n").returncode == 0
    again = _cli(settings, "users", "add", "eve", "--password-stdin", stdin="eve-password-1\n")
    assert again.returncode == 1 and again.stderr.strip() == "error: user eve already exists"  # one line, no traceback
    weak = _cli(settings, "users", "add", "mallory", "--password-stdin", stdin="short\n")
    assert weak.returncode == 1 and "password too short" in weak.stderr
    assert _cli(settings, "users", "disable", "eve").returncode == 0
    assert _cli(settings, "users", "reset-password", "boss", "--password-stdin", stdin="boss-password-2\n").returncode == 0
    listing = _cli(settings, "users", "list").stdout.splitlines()
    assert [line.split("\t")[:3] for line in listing] == [["boss", "admin", "active"], ["eve", "agent", "disabled"]]
    assert _cli(settings, "users", "disable", "nobody").stderr.strip() == "error: no user nobody"

    store = Store(settings.db_url)
    try:
        assert store.accounts.authenticate("boss", "boss-password-2").outcome == "ok"
        assert store.accounts.authenticate("eve", "eve-password-1").outcome == "disabled"
    finally:
        store.dispose()


def test_corrections_export(settings: Any, reply_client: Any, auth_headers: Any, make_tweet: Any, tmp_path: Path) -> None:
    store = reply_client.application.extensions["replyflow"].store
    reply_client.post("/api/v1/replies", json=make_tweet(tweet_id="5", text='say "hi", & bye'), headers=auth_headers)
    store.work.correct("5", "neutral", None, False, "alice")
    out = tmp_path / "out" / "corrections.csv"
    result = _cli(settings, "corrections", "export", str(out))
    assert result.returncode == 0 and "1 corrected tweet(s)" in result.stdout, result.stderr
    (row,) = csv.DictReader(out.open(encoding="utf-8"))
    assert row == {"tweet_id": "5", "text": 'say "hi", & bye', "sentiment": "neutral", "topic": "", "needs_reply": "false",
                   "corrected_by": "alice", "corrected_at": row["corrected_at"]}
    assert row["corrected_at"].endswith("Z")
