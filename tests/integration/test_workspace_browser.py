"""The agent workspace end to end in a real browser (Debian's Chromium through Playwright) on the real
waitress server: an agent signs in, approves one held reply, edits another, rejects a third, answers a
low-confidence ticket with a canned response and corrects a topic; then the outbox and the database
are checked.  It also takes the screenshots of docs/WORKSPACE.md: set ``WORKSPACE_SCREENSHOTS=docs/img``
to write them there (otherwise they go to the test's temporary folder, so a test run changes no file).
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from tests.fixtures.reply import enriched_tweet
from tests.fixtures.workspace import AGENT

pytestmark = [pytest.mark.integration, pytest.mark.slow]
# The dry-run sender counts: approved (1), edited (1), the web_wendy reply queued at once (1), the agent's reply (1).

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture()
def settings(settings: Any) -> Any:
    """Replies the policy is less than 95 % sure of wait for an agent."""
    return settings.model_copy(update={"reply_approval_below": 0.95})


def _shot(page: Any, folder: Path, name: str) -> Path:
    """A screenshot, reduced to a 256-colour PNG (about 100 KB: small enough to commit)."""
    from PIL import Image

    path = folder / f"workspace-{name}.png"
    image = Image.open(io.BytesIO(page.screenshot(full_page=False))).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


def _db(settings: Any) -> Any:
    from replyflow.reply.store import Store

    return Store(settings.db_url)


def test_agent_works_the_queues_in_chromium(reply_server: Any, tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api")
    from replyflow.reply.manage import add_user
    from replyflow.reply.sender import Sender
    from replyflow.reply.tables import OutboxEntry
    from replyflow.reply.worktables import Correction

    base_url, settings = reply_server
    shots = Path(os.environ.get("WORKSPACE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    add_user(settings, *AGENT, role="agent")
    headers = {"Authorization": f"Bearer {settings.secret('api_token')}"}
    tweets = [
        enriched_tweet(tweet_id="101", sentiment_score=0.9, author_handle="bag_owner",
                       text="@united my bag is lost <b>again</b> & nobody answers"),
        enriched_tweet(tweet_id="102", sentiment_score=0.88, topic="Delay and Customer Service", topic_score=0.7,
                       author_handle="late_larry", text="@united 3 hours late at ORD, missed my connection"),
        enriched_tweet(tweet_id="103", sentiment_score=0.91, topic="Extra Charges", author_handle="fee_fran",
                       text="@united charged twice for one bag"),
        enriched_tweet(tweet_id="104", sentiment="neutral", needs_reply_score=0.4, topic="Baggage Issue", topic_score=0.4,
                       author_handle="seat_sam", text="@united can I still switch to an aisle seat on UA88?"),
        enriched_tweet(tweet_id="105", needs_reply_score=0.99, topic="Online Booking", topic_score=0.99, author_handle="web_wendy",
                       text="@united the website crashed at payment"),
    ]
    results = requests.post(f"{base_url}/api/v1/replies", json={"tweets": tweets}, headers=headers, timeout=30).json()["results"]
    held_tickets = [r["ticket_id"] for r in results[:3]]
    human_ticket = results[3]["ticket_id"]
    assert [r["reply_queued"] for r in results] == [False, False, False, False, True]

    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

            # Sign in: every page sends a stranger to the login form first.
            page.goto(f"{base_url}/", wait_until="load")
            assert "/login" in page.url
            page.fill("input[name=username]", AGENT[0])
            page.fill("input[name=password]", AGENT[1])
            page.click("button[type=submit]")
            page.wait_for_url("**/")
            assert page.locator("#whoami").inner_text() == "alice"
            assert page.locator("#tickets tbody tr").count() == 5
            page.select_option("select[name=topic]", "CHG")
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**topic=CHG**")
            assert page.locator("#tickets tbody tr").count() == 1

            page.goto(f"{base_url}/queues/unassigned", wait_until="load")
            page.wait_for_selector("#count-approvals")  # htmx loaded the counts
            assert page.locator("#count-approvals").inner_text() == "3"
            assert page.locator("#freshness").inner_text().startswith("last tweet received")
            _shot(page, shots, "queue")

            # Approve one, edit another, reject the third.
            page.goto(f"{base_url}/approvals", wait_until="load")
            _shot(page, shots, "approval")
            cards = {t: page.locator("article.held", has_text=t) for t in held_tickets}
            cards[held_tickets[0]].locator("button.approve").click()
            page.wait_for_selector("p.flash-ok")
            edited = f"@late_larry So sorry about ORD. We rebooked you on UA200 at 18:05. Ref {held_tickets[1]}"
            area = page.locator("article.held", has_text=held_tickets[1]).locator("textarea")
            area.fill("@late_larry no ticket id")
            counter = page.locator("article.held", has_text=held_tickets[1]).locator(".counter")
            assert "must stay in the reply" in counter.inner_text()
            assert area.evaluate("e => e.validity.valid") is False  # the browser will not submit it
            area.fill(edited)
            assert counter.inner_text().startswith(f"{len(edited)} / 280")
            page.locator("article.held", has_text=held_tickets[1]).locator("button.approve").click()
            page.wait_for_selector("p.flash-ok")
            third = page.locator("article.held", has_text=held_tickets[2])
            third.locator("input[name=reason]").fill("double charge already refunded by phone")
            third.locator("button.reject").click()
            page.wait_for_selector("p.flash-ok")
            assert page.locator("article.held").count() == 0
            page.wait_for_function("document.querySelector('#count-approvals').textContent.trim() === '0'")

            # Answer the low-confidence ticket with a canned response, and correct its topic.
            page.goto(f"{base_url}/queues/low_confidence", wait_until="load")
            page.click(f"text={human_ticket}")
            page.wait_for_url(f"**/tickets/{human_ticket}")
            page.select_option("#assign-form select[name=assignee]", "me")
            page.click("#assign-form button[type=submit]")
            page.wait_for_selector("p.flash-ok")
            page.select_option("select[name=template]", label="Question: general")
            reply_text = page.locator("#reply-text").input_value()
            assert reply_text.startswith("@seat_sam Thanks for reaching out!") and human_ticket in reply_text
            page.click("#reply-form button[type=submit]")
            page.wait_for_selector("p.flash-ok")
            page.locator("#tweet-104 details.correct summary").click()
            page.select_option("#tweet-104 select[name=topic]", "Seating Preferences")
            page.click("#tweet-104 .correction button[type=submit]")
            page.wait_for_selector("#tweet-104 .corrected")
            assert "Seating Preferences" in page.locator("#tweet-104 .corrected").inner_text()
            _shot(page, shots, "ticket")
            page.select_option("#status-form select[name=status]", "resolved")
            page.click("#status-form button[type=submit]")
            page.wait_for_selector("p.flash-ok")
            assert page.locator("#ticket-status").inner_text() == "resolved"

            # The sender (dry run) posts what the agent approved and wrote: the same outbox, the same sender.
            assert Sender(settings).drain_once() == {"sent": 4, "failed": 0, "skipped": 0}

            # Escaping: the tweet's markup is shown as text, never rendered.
            page.goto(f"{base_url}/tickets/{held_tickets[0]}", wait_until="load")
            assert "my bag is lost <b>again</b> & nobody answers" in page.locator(".tweet-text").first.inner_text()
            assert page.locator(".tweet-text b").count() == 0

            page.goto(f"{base_url}/sla", wait_until="load")
            assert page.locator("#sla-agents").inner_text().count("alice") == 1
            assert page.locator("#sla-overall td").nth(2).inner_text() == "4"  # answered: 4 replies sent
            _shot(page, shots, "sla")
            page.goto(f"{base_url}/overview", wait_until="load")
            assert page.locator("svg").count() == 3
            assert errors == []
        finally:
            browser.close()

    store = _db(settings)
    try:
        with store.db.read() as session:
            outbox = {(e.ticket_id, e.kind): e for e in session.scalars(select(OutboxEntry)).all()}
            corrections = session.scalars(select(Correction)).all()
        approved, edited_entry, rejected = (outbox[(t, "auto")] for t in held_tickets)
        assert (approved.status, approved.reviewed_by) == ("sent", "alice")
        assert (edited_entry.status, edited_entry.text) == ("sent", edited)
        assert (rejected.status, rejected.review_note) == ("rejected", "double charge already refunded by phone")
        manual = outbox[(human_ticket, "manual")]
        assert (manual.status, manual.created_by, manual.text, manual.tweet_id) == ("sent", "alice", reply_text, "104")
        assert (human_ticket, "auto") not in outbox
        ((correction),) = corrections
        assert (correction.topic, correction.model_topic, correction.corrected_by) == \
            ("Seating Preferences", "Baggage Issue", "alice")
        assert store.worklists.ticket(human_ticket, _targets(settings), _now())["assignee"] == "alice"
    finally:
        store.dispose()
    for name in ("queue", "approval", "ticket", "sla"):
        assert (shots / f"workspace-{name}.png").stat().st_size > 10_000


def _targets(settings: Any) -> Any:
    from replyflow.reply.sla import SlaTargets

    return SlaTargets.from_settings(settings)


def _now() -> Any:
    from replyflow.core.times import utcnow

    return utcnow()
