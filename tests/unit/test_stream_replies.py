"""Unit tests of posting replies from the stream: chunking, retry while down, no loss, stop."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import requests
import responses

from replyflow.stream.replies import ReplyClient, ReplyRejected, ReplyStopped, ReplyUnavailable, after_first, chunked

BASE = "http://reply.test"
URL = BASE + "/api/v1/replies"


def rows(n: int) -> list[str]:
    """Rows as the stream hands them over: JSON text, as Spark wrote it."""
    return [json.dumps({"tweet_id": str(i), "text": f"tweet {i} \"quoted\" caf\u00e9", "needs_reply": True}) for i in range(n)]


def ok(request: Any) -> tuple[int, dict[str, str], str]:
    tweets = json.loads(request.body)["tweets"]
    body = {"results": [{"tweet_id": t["tweet_id"], "ticket_id": f"BAG-20261125-{i:04d}"} for i, t in enumerate(tweets)]}
    return 200, {}, json.dumps(body)


def client(**kw: Any) -> ReplyClient:
    kw.setdefault("sleep", lambda s: None)
    return ReplyClient(BASE, "secret-token", **kw)


def test_chunked() -> None:
    assert [list(c) for c in chunked([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
    assert list(chunked([], 3)) == []
    taken: list[int] = []
    lazy = chunked((taken.append(i) or i for i in range(5)), 2)  # what Spark's toLocalIterator hands over
    assert next(lazy) == [0, 1] and taken == [0, 1]  # the first chunk goes out before later rows are read
    with pytest.raises(ValueError):
        list(chunked([1], 0))


@responses.activate
def test_posts_in_chunks_with_bearer_token() -> None:
    responses.add_callback(responses.POST, URL, callback=ok)
    result = client(max_batch=2).post(rows(5))
    assert result.posted == 5 and result.tickets == 5 and result.requests == 3
    bodies = [json.loads(c.request.body)["tweets"] for c in responses.calls]
    assert [len(b) for b in bodies] == [2, 2, 1]
    assert [t["tweet_id"] for b in bodies for t in b] == [str(i) for i in range(5)]
    assert bodies[0][1] == json.loads(rows(2)[1])  # the rows travel as they came, a valid JSON body
    assert responses.calls[0].request.headers["Content-Type"] == "application/json"
    assert responses.calls[0].request.headers["Authorization"] == "Bearer secret-token"


@responses.activate
def test_retries_while_down_and_loses_nothing() -> None:
    sleeps: list[float] = []
    responses.add(responses.POST, URL, body=requests.ConnectionError("refused"))
    responses.add(responses.POST, URL, status=503, body="starting")
    responses.add(responses.POST, URL, status=429, body="slow down")
    responses.add_callback(responses.POST, URL, callback=ok)
    result = client(sleep=sleeps.append).post(rows(3))
    assert result.posted == 3 and result.tickets == 3 and result.attempts == 4
    assert len(sleeps) == 3 and sleeps == sorted(sleeps)  # exponential backoff
    assert [len(json.loads(c.request.body)["tweets"]) for c in responses.calls] == [3, 3, 3, 3]


@responses.activate
def test_an_answer_cut_off_by_a_dying_service_is_retried() -> None:
    """Killed while it sent its answer: the tweets may or may not be stored, and posting them again is safe."""
    responses.add(responses.POST, URL, body=requests.exceptions.ChunkedEncodingError("IncompleteRead(0 bytes read)"))
    responses.add_callback(responses.POST, URL, callback=ok)
    result = client().post(rows(2))
    assert result.posted == 2 and result.tickets == 2 and result.attempts == 2


@responses.activate
def test_client_error_is_not_retried() -> None:
    responses.add(responses.POST, URL, status=401, json={"error": {"code": "unauthorized"}})
    with pytest.raises(ReplyRejected, match="HTTP 401"):
        client().post(rows(1))
    assert len(responses.calls) == 1


@responses.activate
def test_give_up_after_bounds_the_wait() -> None:
    responses.add(responses.POST, URL, status=503)
    with pytest.raises(ReplyUnavailable):
        client(give_up_after=0.0).post(rows(1))


@responses.activate
def test_stop_event_ends_the_wait() -> None:
    stop = threading.Event()
    responses.add(responses.POST, URL, status=503)

    def sleep(seconds: float) -> None:
        stop.set()  # a SIGTERM arrives while we back off

    with pytest.raises(ReplyStopped):
        client(stop_event=stop, sleep=sleep).post(rows(1))
    assert len(responses.calls) == 1


def test_from_settings(settings: Any) -> None:
    c = ReplyClient.from_settings(settings)
    assert c.url == settings.reply_api_url + "/api/v1/replies"
    assert c.max_batch == settings.api_max_batch


def test_api_token_from_settings_or_token_file(settings: Any) -> None:
    from replyflow.core.tokens import token_file
    from replyflow.stream.replies import api_token

    assert api_token(settings) == "test-token-123456"
    bare = settings.model_copy(update={"api_token": None})
    assert api_token(bare) is None
    path = token_file(bare)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("generated-token-abc\n")
    assert api_token(bare) == "generated-token-abc"


def test_after_first_runs_the_action_once_when_the_first_item_arrives() -> None:
    calls: list[str] = []

    def rows():
        calls.append("fetch 1")
        yield "a"
        calls.append("fetch 2")
        yield "b"

    seen = []
    for item in after_first(rows(), lambda: calls.append("action")):
        seen.append(item)
        calls.append(f"got {item}")
    assert seen == ["a", "b"]
    assert calls == ["fetch 1", "action", "got a", "fetch 2", "got b"]


def test_after_first_runs_the_action_at_the_end_when_there_are_no_items() -> None:
    calls: list[str] = []
    assert list(after_first(iter([]), lambda: calls.append("action"))) == []
    assert calls == ["action"]
