"""The reply service over real HTTP: waitress in a thread, and ``replyflow serve`` as a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from replyflow.ops.background import free_port, wait_for_health
from tests.fixtures.reply import enriched_tweet

pytestmark = pytest.mark.integration


def test_reply_server_fixture_serves_api(reply_server) -> None:
    base_url, settings = reply_server
    assert settings.reply_api_url == base_url
    headers = {"Authorization": f"Bearer {settings.secret('api_token')}"}
    assert requests.get(f"{base_url}/api/v1/health", timeout=5).json()["status"] == "ok"
    assert requests.get(f"{base_url}/api/v1/stats", timeout=5).status_code == 401
    tweet = enriched_tweet(tweet_id="4242")
    barrier = threading.Barrier(8)

    def send(_: int) -> dict:
        with requests.Session() as s:
            barrier.wait()
            return s.post(f"{base_url}/api/v1/replies", json=tweet, headers=headers, timeout=30).json()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, range(8)))
    assert sum(not r["duplicate"] for r in results) == 1
    assert sum(r["reply_queued"] for r in results) == 1
    stats = requests.get(f"{base_url}/api/v1/stats", headers=headers, timeout=5).json()
    assert stats["tickets"]["total"] == 1 and stats["outbox"]["queued"] == 1
    assert "text/html" in requests.get(f"{base_url}/", timeout=5).headers["Content-Type"]


def test_cli_serve_with_sender(tmp_path: Path) -> None:
    """``replyflow serve`` answers, and its in-process sender drains the outbox (dry run)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLYFLOW_")}
    env.update(REPLYFLOW_STATE_DIR=str(tmp_path / "var"), REPLYFLOW_API_PORT=str(port),
               REPLYFLOW_API_TOKEN="cli-token-abcdef", REPLYFLOW_SENDER_POLL_SECONDS="0.2")
    proc = subprocess.Popen([sys.executable, "-m", "replyflow.cli", "serve"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}/api/v1"
    headers = {"Authorization": "Bearer cli-token-abcdef"}
    try:
        try:
            wait_for_health(f"{base}/health", 30, proc)
        except RuntimeError as exc:
            output = proc.stdout.read() if proc.poll() is not None and proc.stdout else ""
            raise AssertionError(f"serve did not come up: {exc}\n{output}") from None
        r = requests.post(f"{base}/replies", json=enriched_tweet(tweet_id="77"), headers=headers, timeout=10).json()
        assert r["reply_queued"]
        deadline = time.monotonic() + 15
        while requests.get(f"{base}/health", timeout=5).json()["outbox"]["sent"] != 1:
            assert time.monotonic() < deadline, "sender did not send"
            time.sleep(0.1)
        outbox = requests.get(f"{base}/tickets/{r['ticket_id']}", headers=headers, timeout=5).json()["outbox"]
        assert outbox["note"] == "dry-run" and outbox["posted_tweet_id"] is None
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert "cli-token-abcdef" not in output  # the token is never logged


def test_app_on_postgresql(settings, fresh_postgres_url) -> None:
    """The same app and API on PostgreSQL (by URL): batch, duplicates, threads, PATCH."""
    from replyflow.app import create_app

    pg = settings.model_copy(update={"database_url": fresh_postgres_url})
    app = create_app(pg)
    try:
        assert app.extensions["replyflow"].store.db.dialect == "postgresql"
        headers = {"Authorization": f"Bearer {settings.secret('api_token')}"}
        tweets = [enriched_tweet(tweet_id=str(3000 + i)) for i in range(5)]
        client = app.test_client()
        first = client.post("/api/v1/replies", json={"tweets": tweets + tweets[:2]}, headers=headers).json["results"]
        assert [r["duplicate"] for r in first] == [False] * 5 + [True, True]
        barrier = threading.Barrier(6)

        def send(_: int) -> list[dict]:
            barrier.wait()
            return app.test_client().post("/api/v1/replies", json={"tweets": tweets}, headers=headers).json["results"]

        with ThreadPoolExecutor(6) as pool:
            again = list(pool.map(send, range(6)))
        assert all(r["duplicate"] and not r["reply_queued"] for batch in again for r in batch)
        stats = client.get("/api/v1/stats", headers=headers).json
        assert stats["tickets"]["total"] == 5 and stats["outbox"]["queued"] == 5
        tid = first[0]["ticket_id"]
        assert client.patch(f"/api/v1/tickets/{tid}", json={"status": "resolved"}, headers=headers).json["status"] == "resolved"
        assert client.get("/api/v1/health").json["database"] == "ok"
    finally:
        app.extensions["replyflow"].store.dispose()
