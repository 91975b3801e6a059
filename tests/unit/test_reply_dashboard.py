"""The read-only dashboard: lists, filters, detail, charts, and escaping of hostile text."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from replyflow.web.charts import bar_chart, volume_chart


def _post(client, headers, *tweets) -> list[dict]:
    return client.post("/api/v1/replies", json={"tweets": list(tweets)}, headers=headers).json["results"]


def test_index_lists_tickets_with_charts(reply_client, auth_headers, make_tweet) -> None:
    results = _post(reply_client, auth_headers, make_tweet(tweet_id="1"),
                    make_tweet(tweet_id="2", topic="Seating Preferences", text="stuck in 34E"))
    page = reply_client.get("/").get_data(as_text=True)
    for r in results:
        assert r["ticket_id"] in page
    assert page.count("<svg") == 3
    assert "Tweet volume" in page and "Sentiment of tweets sent to the service" in page and "Tickets per topic" in page
    assert "https://" not in page  # nothing from a CDN


def test_index_filters_and_search(reply_client, auth_headers, make_tweet) -> None:
    bag, seat = (r["ticket_id"] for r in _post(
        reply_client, auth_headers, make_tweet(tweet_id="1"),
        make_tweet(tweet_id="2", topic="Seating Preferences", text="stuck in 34E", sentiment="neutral", topic_score=0.9)))
    page = reply_client.get("/?topic=SEA").get_data(as_text=True)
    assert seat in page and bag not in page
    page = reply_client.get("/?sentiment=negative").get_data(as_text=True)
    assert bag in page and seat not in page
    page = reply_client.get("/?q=34e").get_data(as_text=True)
    assert seat in page and bag not in page
    page = reply_client.get("/?status=resolved").get_data(as_text=True)
    assert "No tickets match" in page
    assert reply_client.get("/?status=bogus&page=x").status_code == 200


def test_ticket_detail(reply_client, auth_headers, make_tweet) -> None:
    (r,) = _post(reply_client, auth_headers, make_tweet(tweet_id="5"))
    page = reply_client.get(f"/tickets/{r['ticket_id']}").get_data(as_text=True)
    assert "my bag never arrived" in page
    assert "AIRPORT" in page and "0.93" in page and "0.81" in page
    assert "queued" in page and r["ticket_id"] in page
    assert reply_client.get("/tickets/NOPE").status_code == 404


def test_hostile_text_is_escaped(reply_client, auth_headers, make_tweet) -> None:
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    (r,) = _post(reply_client, auth_headers, make_tweet(tweet_id="6", text=evil,
                                                        entities=[{"text": "<b>x</b>", "label": "<i>", "start": 0, "end": 3}]))
    for url in ("/", f"/tickets/{r['ticket_id']}", "/?q=<script>"):
        page = reply_client.get(url).get_data(as_text=True)
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>x</b>" not in page
    assert "&lt;script&gt;" in reply_client.get(f"/tickets/{r['ticket_id']}").get_data(as_text=True)


def test_dashboard_is_read_only(reply_client) -> None:
    assert reply_client.post("/").status_code == 405
    assert reply_client.get("/dashboard-static/dashboard.css").status_code == 200


def test_chart_geometry() -> None:
    chart = bar_chart("x", {"a": 10, "b": 5, "c": 0})
    assert [b.label for b in chart.bars] == ["a", "b", "c"]
    assert chart.bars[0].width == 2 * chart.bars[1].width and chart.bars[2].width == 0
    start = datetime(2026, 11, 24, tzinfo=timezone.utc)
    hourly = volume_chart([start, start + timedelta(minutes=5), start + timedelta(hours=3)])
    assert hourly.title.endswith("hour") and [b.value for b in hourly.bars] == [2, 1]
    daily = volume_chart([start, start + timedelta(days=5)])
    assert daily.title.endswith("day") and len(daily.bars) == 2
    assert volume_chart([]).bars == []
