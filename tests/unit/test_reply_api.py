"""The /api/v1 endpoints through Flask's test client (SQLite in a temp dir)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

API = "/api/v1"


def post(client, body, headers, **kw):
    return client.post(f"{API}/replies", json=body, headers=headers, **kw)


# --- auth ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/replies"), ("get", "/tickets"), ("get", "/tickets/BAG-20261124-0001"),
     ("patch", "/tickets/BAG-20261124-0001"), ("get", "/stats"), ("get", "/openapi.json")],
)
@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "test-token-123456", "Basic dGVzdA=="])
def test_401_without_or_with_wrong_token(reply_client, method, path, header) -> None:
    headers = {"Authorization": header} if header else {}
    response = getattr(reply_client, method)(f"{API}{path}", headers=headers, json={})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"


def test_health_needs_no_token(reply_client) -> None:
    body = reply_client.get(f"{API}/health").json
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["outbox"] == {"awaiting_approval": 0, "queued": 0, "sending": 0, "sent": 0, "failed": 0,
                              "uncertain": 0, "rejected": 0}


def test_generated_token_when_unset(settings, tmp_path, caplog) -> None:
    from replyflow.app import create_app
    from replyflow.core.tokens import token_file

    unset = settings.model_copy(update={"api_token": None})
    with caplog.at_level("WARNING"):
        app = create_app(unset)
    token = token_file(unset).read_text().strip()
    assert len(token) >= 32 and oct(token_file(unset).stat().st_mode & 0o777) == "0o600"
    assert token not in caplog.text and str(token_file(unset)) in caplog.text
    client = app.test_client()
    assert client.get(f"{API}/stats").status_code == 401
    assert client.get(f"{API}/stats", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    app.extensions["replyflow"].store.dispose()


# --- ingest ----------------------------------------------------------------------------
def test_single_tweet_creates_ticket_and_reply(reply_client, auth_headers, make_tweet) -> None:
    r = post(reply_client, make_tweet(tweet_id="1"), auth_headers)
    assert r.status_code == 200
    assert r.json == {"tweet_id": "1", "decision": "reply", "needs_reply": True, "auto_reply": True,
                      "reason": "complaint", "ticket_id": "BAG-20261124-0001", "reply_queued": True, "duplicate": False}


def test_same_tweet_three_times(reply_client, auth_headers, make_tweet) -> None:
    tweet = make_tweet(tweet_id="7")
    results = [post(reply_client, tweet, auth_headers).json for _ in range(3)]
    assert [r["duplicate"] for r in results] == [False, True, True]
    assert [r["reply_queued"] for r in results] == [True, False, False]
    assert len({r["ticket_id"] for r in results}) == 1
    stats = reply_client.get(f"{API}/stats", headers=auth_headers).json
    assert stats["tickets"]["total"] == 1 and stats["tweets"]["total"] == 1 and stats["outbox"]["queued"] == 1


def test_same_tweet_three_times_in_one_batch(reply_client, auth_headers, make_tweet) -> None:
    tweet = make_tweet(tweet_id="8")
    results = post(reply_client, {"tweets": [tweet, tweet, tweet]}, auth_headers).json["results"]
    assert [r["duplicate"] for r in results] == [False, True, True]
    assert sum(r["reply_queued"] for r in results) == 1
    stats = reply_client.get(f"{API}/stats", headers=auth_headers).json
    assert stats["tickets"]["total"] == 1 and stats["outbox"]["queued"] == 1


def test_same_tweet_concurrently_from_threads(reply_app, auth_headers, make_tweet) -> None:
    tweet = make_tweet(tweet_id="9")
    barrier = threading.Barrier(6)

    def send(_: int) -> dict:
        client = reply_app.test_client()
        barrier.wait()
        return post(client, tweet, auth_headers).json

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(send, range(6)))
    assert sum(not r["duplicate"] for r in results) == 1
    assert sum(r["reply_queued"] for r in results) == 1
    assert len({r["ticket_id"] for r in results}) == 1


def test_conversation_threading(reply_client, auth_headers, make_tweet) -> None:
    first = post(reply_client, make_tweet(tweet_id="50", conversation_id="50"), auth_headers).json
    second = post(reply_client, make_tweet(tweet_id="51", conversation_id="50", in_reply_to_tweet_id="50",
                                           text="still waiting for my bag!"), auth_headers).json
    assert second["ticket_id"] == first["ticket_id"]
    assert first["reply_queued"] and not second["reply_queued"] and not second["duplicate"]
    detail = reply_client.get(f"{API}/tickets/{first['ticket_id']}", headers=auth_headers).json
    assert [t["tweet_id"] for t in detail["tweets"]] == ["50", "51"]
    assert detail["outbox"]["tweet_id"] == "50" and detail["outbox"]["status"] == "queued"


def test_client_needs_reply_is_ignored(reply_client, auth_headers, make_tweet) -> None:
    r = post(reply_client, make_tweet(author_handle="replyflowsupport", needs_reply=True), auth_headers).json
    assert r["decision"] == "ignore" and r["reason"] == "own_tweet" and r["ticket_id"] is None


def test_batch_results_in_order(reply_client, auth_headers, make_tweet) -> None:
    tweets = [make_tweet(tweet_id="60"), make_tweet(tweet_id="61", sentiment="positive", needs_reply_score=0.05),
              make_tweet(tweet_id="62", needs_reply_score=0.4), make_tweet(tweet_id="63", text="RT @x: bag lost")]
    results = post(reply_client, {"tweets": tweets}, auth_headers).json["results"]
    assert [(r["tweet_id"], r["decision"], r["reason"]) for r in results] == [
        ("60", "reply", "complaint"), ("61", "ignore", "no_reply_needed"),
        ("62", "ticket", "low_confidence"), ("63", "ignore", "retweet")]
    assert results[2]["ticket_id"] and not results[2]["reply_queued"]


# --- bad input -------------------------------------------------------------------------
def _error(response) -> dict:
    assert response.status_code == 400, response.data
    assert response.is_json
    return response.json["error"]


def test_missing_fields(reply_client, auth_headers, make_tweet) -> None:
    tweet = make_tweet()
    del tweet["sentiment"], tweet["text"]
    err = _error(post(reply_client, tweet, auth_headers))
    locs = {d["loc"] for d in err["details"]}
    assert {"sentiment", "text"} <= locs
    assert "Field required" in err["message"]


def test_wrong_types(reply_client, auth_headers, make_tweet) -> None:
    tweet = make_tweet(sentiment_score="very", entities="none", sentiment="angry", topic="Food")
    tweet["tweet_id"] = 123  # a number, not a string of digits
    err = _error(post(reply_client, tweet, auth_headers))
    locs = {d["loc"] for d in err["details"]}
    assert {"sentiment_score", "tweet_id", "entities", "sentiment", "topic"} <= locs


def test_oversize_text(reply_client, auth_headers, make_tweet, settings) -> None:
    err = _error(post(reply_client, make_tweet(text="x" * (settings.api_max_text_chars + 1)), auth_headers))
    assert err["details"] == [{"loc": "text", "msg": f"text too long: {settings.api_max_text_chars + 1} characters, "
                                                     f"at most {settings.api_max_text_chars}"}]


def test_non_json(reply_client, auth_headers) -> None:
    err = _error(reply_client.post(f"{API}/replies", data="not json{", headers=auth_headers, content_type="application/json"))
    assert err["code"] == "invalid_json"
    err = _error(reply_client.post(f"{API}/replies", data="a=b", headers=auth_headers))
    assert err["code"] == "invalid_json"
    err = _error(post(reply_client, [1, 2], auth_headers))
    assert "object" in err["message"]


def test_oversize_batch(reply_client, auth_headers, make_tweet, settings) -> None:
    tweets = [make_tweet() for _ in range(settings.api_max_batch + 1)]
    err = _error(post(reply_client, {"tweets": tweets}, auth_headers))
    assert "batch too large" in err["message"]


def test_one_bad_item_rejects_the_batch(reply_client, auth_headers, make_tweet) -> None:
    bad = make_tweet()
    del bad["author_id"]
    err = _error(post(reply_client, {"tweets": [make_tweet(tweet_id="70"), bad]}, auth_headers))
    assert err["details"][0]["loc"] == "tweets.1.author_id"
    assert reply_client.get(f"{API}/stats", headers=auth_headers).json["tweets"]["total"] == 0


# --- tickets ---------------------------------------------------------------------------
@pytest.fixture()
def some_tickets(reply_client, auth_headers, make_tweet) -> list[str]:
    bodies = [
        make_tweet(tweet_id="100", text="@united lost my suitcase in Denver"),
        make_tweet(tweet_id="101", topic="Seating Preferences", author_handle="seatfan", created_at="2026-11-20T10:00:00Z"),
        make_tweet(tweet_id="102", sentiment="neutral", topic="Online Booking", topic_score=0.9),
        make_tweet(tweet_id="103", needs_reply_score=0.4),
    ]
    return [r["ticket_id"] for r in post(reply_client, {"tweets": bodies}, auth_headers).json["results"]]


def test_list_filters(reply_client, auth_headers, some_tickets) -> None:
    def get(**params) -> dict:
        r = reply_client.get(f"{API}/tickets", query_string=params, headers=auth_headers)
        assert r.status_code == 200
        return r.json

    assert get()["total"] == 4
    assert [t["ticket_id"] for t in get(topic="SEA")["items"]] == [some_tickets[1]]
    assert get(topic="Online Booking")["total"] == 1
    assert get(sentiment="neutral")["total"] == 1
    assert get(q="denver")["items"][0]["ticket_id"] == some_tickets[0]
    assert get(q="@seatfan".lstrip("@"))["total"] == 1
    assert get(q=some_tickets[2])["total"] == 1
    assert get(status="open")["total"] == 4 and get(status="pending")["total"] == 0
    assert get(**{"from": "2000-01-01", "to": "2100-01-01"})["total"] == 4
    assert get(**{"from": "2100-01-01"})["total"] == 0
    page = get(per_page=3, page=2)
    assert page["total"] == 4 and len(page["items"]) == 1
    for bad in ({"status": "closed"}, {"from": "yesterday"}, {"per_page": "0"}, {"page": "x"}):
        assert reply_client.get(f"{API}/tickets", query_string=bad, headers=auth_headers).status_code == 400


def test_ticket_detail_and_404(reply_client, auth_headers, some_tickets) -> None:
    detail = reply_client.get(f"{API}/tickets/{some_tickets[0]}", headers=auth_headers).json
    assert detail["tweets"][0]["entities"][0]["label"] == "AIRPORT"
    assert detail["outbox"]["text"].startswith("@traveller_jo ") and some_tickets[0] in detail["outbox"]["text"]
    human = reply_client.get(f"{API}/tickets/{some_tickets[3]}", headers=auth_headers).json
    assert human["outbox"] is None and human["reason"] == "low_confidence"
    r = reply_client.get(f"{API}/tickets/NOPE-1", headers=auth_headers)
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"


def test_patch_status(reply_client, auth_headers, some_tickets) -> None:
    url = f"{API}/tickets/{some_tickets[0]}"
    r = reply_client.patch(url, json={"status": "pending"}, headers=auth_headers)
    assert r.status_code == 200 and r.json["status"] == "pending"
    assert reply_client.patch(url, json={"status": "resolved"}, headers=auth_headers).json["status"] == "resolved"
    assert reply_client.get(url, headers=auth_headers).json["status"] == "resolved"
    assert reply_client.patch(url, json={"status": "done"}, headers=auth_headers).status_code == 400
    assert reply_client.patch(url, data="x", headers=auth_headers).status_code == 400
    assert reply_client.patch(f"{API}/tickets/NOPE", json={"status": "open"}, headers=auth_headers).status_code == 404


def test_json_errors_for_404_405(reply_client, auth_headers) -> None:
    r = reply_client.get(f"{API}/nothing", headers=auth_headers)
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    r = reply_client.delete(f"{API}/replies", headers=auth_headers)
    assert r.status_code == 405 and r.is_json


def test_500_is_json_and_hides_details(reply_app, reply_client, auth_headers, monkeypatch) -> None:
    service = reply_app.extensions["replyflow"]
    monkeypatch.setattr(service, "stats", lambda: 1 / 0)
    r = reply_client.get(f"{API}/stats", headers=auth_headers)
    assert r.status_code == 500 and r.json == {"error": {"code": "internal_error", "message": "internal server error"}}


def test_openapi_document(reply_client, auth_headers) -> None:
    doc = reply_client.get(f"{API}/openapi.json", headers=auth_headers).json
    assert doc["openapi"].startswith("3.")
    assert {"/replies", "/tickets", "/tickets/{ticket_id}", "/health", "/stats", "/openapi.json"} <= set(doc["paths"])
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "patch" in doc["paths"]["/tickets/{ticket_id}"]


def test_stats_shape(reply_client, auth_headers, some_tickets) -> None:
    stats = reply_client.get(f"{API}/stats", headers=auth_headers).json
    assert stats["tickets"]["by_status"] == {"open": 4}
    assert stats["tickets"]["by_topic"] == {"BAG": 2, "SEA": 1, "ONL": 1}
    assert stats["outbox"]["queued"] == 3
    assert stats["tweets"]["by_reason"]["low_confidence"] == 1
