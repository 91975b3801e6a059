"""Bad and hostile input at every entry point (corpus: :mod:`tests.reliability.corpus`).

(a) ingest: :func:`parse_raw` rejects every corpus entry with a ``ValueError`` naming the
    problem; a replay of a file holding them all on the REAL broker publishes the valid
    tweets and puts exactly one DLQ message per bad line, with its line number and reason.
    The stream job's pure parse step (:func:`replyflow.stream.enrich.parse_frame`) gives the
    same verdicts without Spark.
(b) reply API: every bad body is a 4xx JSON error (never a 500), hostile-but-valid text is
    accepted and stored verbatim, query parameters and ticket-id paths carrying SQL or HTML
    are inert, and afterwards every table is still there with exactly the expected rows.
(c) dashboard: hostile text and query parameters come back HTML-escaped.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import pytest
import requests
from sqlalchemy import create_engine, func, inspect, select

from replyflow.core.contracts import parse_raw
from tests.reliability.corpus import (
    BAD_MESSAGES,
    HOSTILE_TEXTS,
    HOSTILE_VALID,
    IMG_ONERROR,
    SCRIPT,
    SQL_INJECTION,
    api_bad_bodies,
)
from tests.reliability.report import record

API = "/api/v1"
TABLES = {"tweets", "tickets", "outbox", "ticket_counters"}


# --- (a) ingest validator ----------------------------------------------------------------
@pytest.mark.parametrize("bad", BAD_MESSAGES, ids=[m.name for m in BAD_MESSAGES])
def test_parse_raw_rejects_with_reason(bad: Any) -> None:
    with pytest.raises(ValueError) as info:
        parse_raw(bad.payload)
    assert bad.reason in str(info.value)
    assert len(str(info.value)) < 1000, "the reason must be short, not an echo of the payload"


@pytest.mark.parametrize("tweet", HOSTILE_VALID, ids=range(len(HOSTILE_VALID)))
def test_parse_raw_keeps_hostile_text_verbatim(tweet: dict[str, Any]) -> None:
    assert parse_raw(json.dumps(tweet).encode()).text == tweet["text"]


def test_stream_parse_frame_rejects_the_corpus_without_spark() -> None:
    """The Spark job's parse step: one output row per record, a dead letter for every bad one."""
    from replyflow.stream.columns import DLQ_COLUMN
    from replyflow.stream.enrich import parse_frame

    payloads = [m.payload for m in BAD_MESSAGES] + [json.dumps(t).encode() for t in HOSTILE_VALID] + [None]
    n = len(payloads)
    records = pd.DataFrame({
        "key": [b"k"] * n, "value": payloads, "topic": ["tweets.raw"] * n, "partition": [0] * n,
        "offset": list(range(n)), "timestamp": [datetime(2026, 11, 24, tzinfo=timezone.utc)] * n,
    })  # fmt: skip
    out = parse_frame(records)
    assert len(out) == n
    letters = [json.loads(v) if v else None for v in out[DLQ_COLUMN]]
    for i, bad in enumerate(BAD_MESSAGES):
        assert letters[i] is not None, bad.name
        assert bad.reason in letters[i]["reason"] and letters[i]["source_offset"] == i
    hostile = letters[len(BAD_MESSAGES): len(BAD_MESSAGES) + len(HOSTILE_VALID)]
    assert hostile == [None] * len(HOSTILE_VALID)
    assert list(out["text"][len(BAD_MESSAGES): -1]) == list(HOSTILE_TEXTS)
    assert letters[-1] is not None and "null value" in letters[-1]["reason"]


@pytest.mark.integration
def test_replay_of_the_corpus_on_the_real_broker(kafka_settings: Any, kafka_consume: Any, tmp_path: Path) -> None:
    """Bad lines -> one DLQ message each (line number + reason); valid and hostile-valid -> tweets.raw."""
    from replyflow.ingest.replay import replay_file

    bad = [m for m in BAD_MESSAGES if m.single_line]
    valid = [json.dumps(t, ensure_ascii=False).encode() for t in HOSTILE_VALID]
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b"\n".join([m.payload for m in bad] + valid) + b"\n")
    stats = replay_file(kafka_settings, path, progress=False)
    assert (stats.published, stats.dead_lettered) == (len(valid), len(bad) - sum(not m.payload for m in bad))
    assert stats.blank == sum(not m.payload for m in bad)  # an empty line is not a message

    letters = [json.loads(m.value()) for m in kafka_consume(kafka_settings, kafka_settings.topic_dlq, n=stats.dead_lettered)]
    assert len(letters) == stats.dead_lettered
    by_line = {int(d["reason"].split(" line ")[1].split(":")[0]): d for d in letters}
    for line, m in enumerate(bad, start=1):
        if not m.payload:
            continue
        assert m.reason in by_line[line]["reason"], (m.name, by_line[line]["reason"])
        assert by_line[line]["stage"] == "ingest-replay"
        assert len(by_line[line]["payload"]) <= 64 * 1024
    multi_mb = by_line[[m.name for m in bad].index("text-multi-MB") + 1]
    assert "payload truncated from" in multi_mb["reason"], "a >1 MB dead letter would not fit in a Kafka message"
    raw = kafka_consume(kafka_settings, kafka_settings.topic_raw, n=len(valid))
    assert sorted(parse_raw(m.value()).text for m in raw) == sorted(HOSTILE_TEXTS)
    record("bad input: replay of the corpus (real broker)", "test_replay_of_the_corpus_on_the_real_broker",
           rows_in=stats.rows, rows_out=len(raw), dlq=len(letters), replies=0, duplicates=len(raw) - len(valid),
           lost=stats.rows - stats.blank - len(raw) - len(letters))


# --- (b) reply API -----------------------------------------------------------------------
def _post(client: Any, body: Any, headers: dict[str, str]) -> Any:
    return client.post(f"{API}/replies", data=json.dumps(body), headers={**headers, "Content-Type": "application/json"})


def _db_counts(settings: Any) -> dict[str, int]:
    engine = create_engine(settings.db_url)
    try:
        assert TABLES <= set(inspect(engine).get_table_names()), "a table disappeared"
        with engine.connect() as conn:
            from replyflow.reply.tables import OutboxEntry, Ticket, Tweet

            return {name: int(conn.scalar(select(func.count()).select_from(model)) or 0)
                    for name, model in (("tweets", Tweet), ("tickets", Ticket), ("outbox", OutboxEntry))}
    finally:
        engine.dispose()


def _hostile_enriched(make_tweet: Any) -> list[dict[str, Any]]:
    # written to us (a leading @handle), so each gets a ticket and a public reply whatever follows
    return [make_tweet(tweet_id=str(3000 + i), conversation_id=str(3000 + i), text="@united " + text,
                       entities=[{"text": text[:20], "label": SCRIPT, "start": 0, "end": 3}])
            for i, text in enumerate(HOSTILE_TEXTS)]


def test_api_rejects_every_bad_body_with_a_json_4xx(reply_client: Any, auth_headers: Any, make_tweet: Any,
                                                     settings: Any) -> None:
    cases = api_bad_bodies(make_tweet, settings.api_max_batch, settings.api_max_text_chars)
    for name, body, status in cases:
        r = _post(reply_client, body, auth_headers)
        assert r.status_code == status, (name, r.status_code, r.get_data(as_text=True)[:300])
        assert r.is_json and r.json["error"]["code"] in {"invalid_json", "invalid_body"}, name
        assert r.json["error"]["message"], name
    assert _db_counts(settings) == {"tweets": 0, "tickets": 0, "outbox": 0}
    record("bad input: reply API bodies", "test_api_rejects_every_bad_body_with_a_json_4xx",
           rows_in=len(cases), rows_out=0, dlq=len(cases), replies=0, duplicates=0, lost=0)


@pytest.mark.parametrize(
    ("name", "data", "content_type", "status"),
    [
        ("non-json", b"this is not json", "application/json", 400),
        ("invalid-utf8", b'{"tweet_id": "\xff\xfe"}', "application/json", 400),
        ("form-encoded", b"tweet_id=1&text=hi", "application/x-www-form-urlencoded", 400),
        ("no-content-type", b'{"tweet_id": "1"}', None, 400),
        ("empty", b"", "application/json", 400),
        ("json-nan", b'{"tweets": [NaN]}', "application/json", 400),
        ("deeply-nested", b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
        ("multi-MB", b'{"tweets": [' + b'"' + b"x" * 6_000_000 + b'"]}', "application/json", 413),
    ],
)
def test_api_raw_bodies(reply_client: Any, auth_headers: Any, settings: Any, name: str, data: bytes,
                        content_type: str | None, status: int) -> None:
    headers = dict(auth_headers)
    if content_type:
        headers["Content-Type"] = content_type
    r = reply_client.post(f"{API}/replies", data=data, headers=headers)
    assert r.status_code == status, (name, r.get_data(as_text=True)[:300])
    assert r.is_json and "error" in r.json
    assert _db_counts(settings) == {"tweets": 0, "tickets": 0, "outbox": 0}


def test_api_accepts_hostile_text_and_stays_intact(reply_client: Any, auth_headers: Any, make_tweet: Any,
                                                   settings: Any) -> None:
    tweets = _hostile_enriched(make_tweet)
    r = _post(reply_client, {"tweets": tweets}, auth_headers)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    results = r.json["results"]
    assert all(res["ticket_id"] and not res["duplicate"] for res in results)
    for tweet, res in zip(tweets, results, strict=True):
        ticket = reply_client.get(f"{API}/tickets/{res['ticket_id']}", headers=auth_headers).json
        assert ticket["tweets"][0]["text"] == tweet["text"], "stored verbatim"
    assert _db_counts(settings) == {"tweets": len(tweets), "tickets": len(tweets), "outbox": len(tweets)}

    # The same batch again: idempotent, nothing new.
    again = _post(reply_client, {"tweets": tweets}, auth_headers).json["results"]
    assert all(res["duplicate"] for res in again)
    assert _db_counts(settings) == {"tweets": len(tweets), "tickets": len(tweets), "outbox": len(tweets)}
    record("bad input: hostile but valid text via the API", "test_api_accepts_hostile_text_and_stays_intact",
           rows_in=2 * len(tweets), rows_out=len(tweets), dlq=0, replies=len(tweets), duplicates=0, lost=0)


def test_api_query_params_and_paths_are_inert(agent_client: Any, auth_headers: Any, make_tweet: Any,
                                              settings: Any) -> None:
    reply_client = agent_client  # the ticket pages need a signed-in user
    tweets = _hostile_enriched(make_tweet)
    assert _post(reply_client, {"tweets": tweets}, auth_headers).status_code == 200
    get = lambda url: reply_client.get(url, headers=auth_headers)  # noqa: E731

    # q is a parameterised LIKE: the injection string finds exactly the tweet that contains it.
    r = get(f"{API}/tickets?q={quote(SQL_INJECTION)}")
    assert r.status_code == 200 and r.json["total"] == 1
    assert r.json["items"][0]["first_text"] == "@united " + SQL_INJECTION
    for value in (SCRIPT, IMG_ONERROR, "' OR 1=1 --", "\\", "%00"):
        r = get(f"{API}/tickets?q={quote(value)}")
        assert r.status_code == 200 and r.is_json, value
    r = get(f"{API}/tickets?q={quote(chr(0))}")  # PostgreSQL cannot compare text with NUL: refused up front
    assert r.status_code == 400 and r.json["error"]["code"] == "invalid_query"
    for param in ("topic", "sentiment"):  # not one of the documented values: refused, never queried
        r = get(f"{API}/tickets?{param}={quote(SQL_INJECTION)}")
        assert r.status_code == 400 and r.json["error"]["code"] == "invalid_query"
    for query in (f"status={quote(SCRIPT)}", "page=abc", "page=0", "per_page=100000000000000000000",
                  f"from={quote(SQL_INJECTION)}", "to=2026-13-45"):
        r = get(f"{API}/tickets?{query}")
        assert r.status_code == 400 and r.json["error"]["code"] == "invalid_query", query

    for ticket_id in (SQL_INJECTION, SCRIPT, IMG_ONERROR, "../../etc/passwd", "1' OR '1'='1", "A" * 5000):
        path = quote(ticket_id, safe="")
        r = get(f"{API}/tickets/{path}")
        assert r.status_code == 404 and r.is_json and r.mimetype == "application/json", ticket_id
        r = reply_client.patch(f"{API}/tickets/{path}", json={"status": "resolved"}, headers=auth_headers)
        assert r.status_code == 404 and r.is_json, ticket_id
        page = reply_client.get(f"/tickets/{path}")
        assert page.status_code == 404 and "<script>alert" not in page.get_data(as_text=True)
    r = reply_client.patch(f"{API}/tickets/{quote(SQL_INJECTION, safe='')}", json={"status": SQL_INJECTION},
                           headers=auth_headers)
    assert r.status_code == 400
    assert _db_counts(settings) == {"tweets": len(tweets), "tickets": len(tweets), "outbox": len(tweets)}


@pytest.mark.integration
def test_api_over_real_http(reply_server: Any) -> None:
    """Through waitress: the multi-MB body and broken encodings still end in JSON 4xx, never 5xx."""
    base_url, settings = reply_server
    headers = {"Authorization": f"Bearer {settings.secret('api_token')}", "Content-Type": "application/json"}
    cases = [
        (b"x" * 8_000_000, 413),
        (b'{"tweets": [' + b",".join([b'{"tweet_id": "1"}'] * (settings.api_max_batch + 1)) + b"]}", 400),
        (b"\xff\xfe\x00garbage", 400),
        (b"[" * 100_000, 400),
        (json.dumps({"tweets": [{"tweet_id": SQL_INJECTION, "text": SCRIPT}]}).encode(), 400),
    ]
    for body, status in cases:
        r = requests.post(f"{base_url}{API}/replies", data=body, headers=headers, timeout=60)
        assert r.status_code == status, (body[:40], r.status_code, r.text[:200])
        assert r.headers["Content-Type"].startswith("application/json") and "error" in r.json()
    assert requests.get(f"{base_url}{API}/health", timeout=10).json()["status"] == "ok"
    assert _db_counts(settings) == {"tweets": 0, "tickets": 0, "outbox": 0}


# --- (c) dashboard -----------------------------------------------------------------------
def test_dashboard_escapes_hostile_text(agent_client: Any, auth_headers: Any, make_tweet: Any) -> None:
    reply_client = agent_client  # the workspace needs a signed-in user
    tweets = _hostile_enriched(make_tweet)
    results = _post(reply_client, {"tweets": tweets}, auth_headers).json["results"]
    urls = ["/", "/queues/unassigned", "/queues/low_confidence", "/overview", f"/?q={quote(SCRIPT)}",
            f"/?q={quote(IMG_ONERROR)}", f"/?topic={quote(SCRIPT)}",
            f"/?status={quote(SCRIPT)}", f"/?sentiment={quote(IMG_ONERROR)}", f"/?page={quote(SCRIPT)}"]
    urls += [f"/tickets/{r['ticket_id']}" for r in results]
    for url in urls:
        r = reply_client.get(url)
        assert r.status_code == 200, url
        page = r.get_data(as_text=True)
        assert "<script>alert" not in page and "<img src=x" not in page and "onerror=alert(1)>" not in page, url
    detail = reply_client.get(f"/tickets/{results[2]['ticket_id']}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail
    search = reply_client.get(f"/?q={quote(SCRIPT)}").get_data(as_text=True)
    assert "&lt;script&gt;" in search  # the filter box echoes the query, escaped


@pytest.mark.integration
def test_api_on_postgresql_with_hostile_text(settings: Any, fresh_postgres_url: str, make_tweet: Any) -> None:
    """The same hostile batch on the REAL PostgreSQL: no 500 (PostgreSQL refuses NUL in text), tables intact."""
    from replyflow.app import create_app

    pg = settings.model_copy(update={"database_url": fresh_postgres_url})
    app = create_app(pg)
    try:
        client = app.test_client()
        headers = {"Authorization": f"Bearer {pg.secret('api_token')}"}
        tweets = _hostile_enriched(make_tweet)
        r = _post(client, {"tweets": tweets}, headers)
        assert r.status_code == 200, r.get_data(as_text=True)[:500]
        nul = _post(client, {"tweets": [make_tweet(tweet_id="4000", text="null\x00byte")]}, headers)
        assert nul.status_code == 400 and "NUL" in nul.json["error"]["message"]
        r = client.get(f"{API}/tickets?q={quote(SQL_INJECTION)}", headers=headers)
        assert r.status_code == 200 and r.json["total"] == 1
        for url in (f"{API}/tickets?q={quote(chr(0))}", f"{API}/tickets/{quote(chr(0))}", f"/?q={quote(chr(0))}",
                    f"/tickets/a{quote(chr(0))}"):
            assert client.get(url, headers=headers).status_code == 400, url
        assert _db_counts(pg) == {"tweets": len(tweets), "tickets": len(tweets), "outbox": len(tweets)}
    finally:
        app.extensions["replyflow"].store.dispose()
