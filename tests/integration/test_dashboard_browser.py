"""End to end in a real browser: headless Chromium loads the dashboard from the waitress server."""

from __future__ import annotations

import shutil

import pytest
import requests

from tests.fixtures.reply import enriched_tweet

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_dashboard_in_chromium(reply_server) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api")
    base_url, settings = reply_server
    headers = {"Authorization": f"Bearer {settings.secret('api_token')}"}
    tweets = [
        enriched_tweet(tweet_id="1", text="My bag is lost <b>again</b>", author_handle="bag_owner"),
        enriched_tweet(tweet_id="2", topic="Seating Preferences", text="Stuck in a middle seat", author_handle="seat_fan"),
        enriched_tweet(tweet_id="3", sentiment="neutral", topic="Online Booking", topic_score=0.9, text="How do I change my booking online?"),
    ]
    results = requests.post(f"{base_url}/api/v1/replies", json={"tweets": tweets}, headers=headers, timeout=30).json()["results"]
    bag_ticket = results[0]["ticket_id"]

    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{base_url}/", wait_until="load")
            rows = page.locator("#tickets tbody tr")
            assert rows.count() == 3
            assert page.locator("svg").count() == 3
            assert page.locator("#kpi-tickets").inner_text() == "3"

            page.select_option("select[name=topic]", "SEA")
            page.click("button[type=submit]")
            page.wait_for_url("**topic=SEA**")
            assert rows.count() == 1 and "seat_fan" in rows.first.inner_text()

            page.goto(f"{base_url}/", wait_until="load")
            page.click(f"text={bag_ticket}")
            page.wait_for_url(f"**/tickets/{bag_ticket}")
            assert page.locator("#ticket-id").inner_text() == bag_ticket
            assert "My bag is lost <b>again</b>" in page.locator(".tweet-text").first.inner_text()  # shown, not rendered
            assert page.locator(".tweet-text b").count() == 0
            assert page.locator("#outbox-status").inner_text() == "queued"
            assert bag_ticket in page.locator("#reply").inner_text()
            assert errors == []
        finally:
            browser.close()
