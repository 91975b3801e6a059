"""The agent workspace through Flask's test client on SQLite: queues, the ticket page and its actions,
approvals, failures, corrections, SLA and templates.  (Security: test_workspace_security.py.)"""

from __future__ import annotations

import csv
from datetime import timedelta
from typing import Any

import pytest
from markupsafe import escape
from sqlalchemy import select, update

from replyflow.core.times import utcnow
from replyflow.reply.outbox import INTERRUPTED, SendOutcome
from replyflow.reply.sender import Sender
from replyflow.reply.tables import OutboxEntry, Ticket
from replyflow.reply.worktables import TicketEvent
from tests.fixtures.workspace import ingest, post_form


def _outbox(store: Any, **where: Any) -> list[OutboxEntry]:
    with store.db.read() as session:
        query = select(OutboxEntry).order_by(OutboxEntry.id)
        for name, value in where.items():
            query = query.where(getattr(OutboxEntry, name) == value)
        return list(session.scalars(query).all())


def _events(store: Any, kind: str) -> list[TicketEvent]:
    with store.db.read() as session:
        return list(session.scalars(select(TicketEvent).where(TicketEvent.kind == kind).order_by(TicketEvent.id)).all())


def _held_app(settings: Any, **changes: Any) -> Any:
    from replyflow.app import create_app

    app = create_app(settings.model_copy(update=changes))
    app.config["TESTING"] = True
    return app


# --- queues and the ticket list -------------------------------------------------------------
def test_queues_list_the_right_tickets(agent_client, auth_headers, make_tweet, store, users) -> None:
    bag, unsure, seat = (r["ticket_id"] for r in ingest(
        agent_client, auth_headers, make_tweet(tweet_id="1"),
        make_tweet(tweet_id="2", sentiment="neutral", needs_reply_score=0.4, text="@united hmm, my flight?"),
        make_tweet(tweet_id="3", topic="Seating Preferences", text="stuck in 34E")))
    page = agent_client.get("/queues/unassigned").get_data(as_text=True)
    assert bag in page and unsure in page and seat in page
    low = agent_client.get("/queues/low_confidence").get_data(as_text=True)
    assert unsure in low and bag not in low
    store.work.assign(seat, "alice", "alice")
    mine = agent_client.get("/queues/mine").get_data(as_text=True)
    assert seat in mine and bag not in mine
    assert seat not in agent_client.get("/queues/unassigned").get_data(as_text=True)
    assert agent_client.get("/queues/nope").status_code == 404
    nav = agent_client.get("/fragments/nav").get_data(as_text=True)
    assert 'id="count-unassigned">2<' in nav and 'id="count-mine">1<' in nav and 'id="count-low_confidence">1<' in nav
    assert "last tweet received" in nav and "just now" in nav


def test_ticket_list_filters_and_search(agent_client, auth_headers, make_tweet) -> None:
    bag, seat = (r["ticket_id"] for r in ingest(
        agent_client, auth_headers, make_tweet(tweet_id="1"),
        make_tweet(tweet_id="2", topic="Seating Preferences", text="stuck in 34E", sentiment="neutral", topic_score=0.9)))
    assert seat in agent_client.get("/?topic=SEA").get_data(as_text=True)
    assert bag not in agent_client.get("/?topic=SEA").get_data(as_text=True)
    page = agent_client.get("/?q=34e").get_data(as_text=True)
    assert seat in page and bag not in page
    assert "No tickets match" in agent_client.get("/?status=resolved").get_data(as_text=True)
    assert agent_client.get("/?status=bogus&page=x").status_code == 200


def test_overview_has_the_charts(agent_client, auth_headers, make_tweet) -> None:
    ingest(agent_client, auth_headers, make_tweet(tweet_id="1"))
    page = agent_client.get("/overview").get_data(as_text=True)
    assert page.count("<svg") == 3 and "Tweet volume" in page and "Tickets per topic" in page
    assert "https://" not in page  # nothing from a CDN


# --- the ticket page --------------------------------------------------------------------------
def test_ticket_page_shows_the_whole_conversation(agent_client, auth_headers, make_tweet, store) -> None:
    (first,) = ingest(agent_client, auth_headers, make_tweet(tweet_id="10", conversation_id="10"))
    ingest(agent_client, auth_headers,
           make_tweet(tweet_id="11", conversation_id="10", text="still nothing, day 3", created_at="2026-11-25T09:00:00Z"),
           make_tweet(tweet_id="12", conversation_id="10", sentiment="positive", text="ok thanks",
                      created_at="2026-11-25T10:00:00Z"))
    page = agent_client.get(f"/tickets/{first['ticket_id']}").get_data(as_text=True)
    for text in ("my bag never arrived", "still nothing, day 3", "ok thanks", "Automatic reply", "AIRPORT"):
        assert text in page, text
    assert page.index("my bag never arrived") < page.index("still nothing, day 3") < page.index("ok thanks")
    assert agent_client.get("/tickets/NOPE").status_code == 404


def test_assign_status_and_notes_are_recorded_with_who_and_when(agent_client, auth_headers, make_tweet, store) -> None:
    (r,) = ingest(agent_client, auth_headers, make_tweet(tweet_id="20"))
    tid, page = r["ticket_id"], f"/tickets/{r['ticket_id']}"
    assert post_form(agent_client, f"{page}/assign", {"assignee": "me", "next": page}).status_code == 302
    assert post_form(agent_client, f"{page}/assign", {"assignee": "root"}).status_code == 302
    assert post_form(agent_client, f"{page}/status", {"status": "pending"}).status_code == 302
    assert post_form(agent_client, f"{page}/status", {"status": "resolved"}).status_code == 302
    for _ in range(2):  # a double submit of the same form stores one note
        post_form(agent_client, f"{page}/notes", {"body": "called the station", "request_key": "note-1"})
    assert [(e.actor, e.data) for e in _events(store, "assign")] == [
        ("alice", {"from": None, "to": "alice"}), ("alice", {"from": "alice", "to": "root"})]
    assert [e.data for e in _events(store, "status")] == [{"from": "open", "to": "pending"},
                                                          {"from": "pending", "to": "resolved"}]
    assert [(e.actor, e.body) for e in _events(store, "note")] == [("alice", "called the station")]
    with store.db.read() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.ticket_id == tid)).one()
        assert ticket.status == "resolved" and ticket.resolved_at is not None and ticket.open_conversation_id is None
    shown = agent_client.get(page).get_data(as_text=True)
    assert "called the station" in shown and "assigned it to <b>root</b>" in shown
    failed = post_form(agent_client, f"{page}/assign", {"assignee": "nobody-here"})
    assert "no active user nobody-here" in agent_client.get(failed.headers["Location"]).get_data(as_text=True)
    # The API's status change is an event too, by the API token.
    agent_client.patch(f"/api/v1/tickets/{tid}", json={"status": "open"}, headers=auth_headers)
    assert _events(store, "status")[-1].actor is None and _events(store, "status")[-1].data["via"] == "api"


def test_manual_reply_with_a_canned_response_goes_through_the_sender(agent_client, auth_headers, make_tweet, store,
                                                                     settings) -> None:
    (r,) = ingest(agent_client, auth_headers,
                  make_tweet(tweet_id="30", sentiment="neutral", sentiment_score=0.2, text="anyone there?"))
    tid, page = r["ticket_id"], f"/tickets/{r['ticket_id']}"
    shown = agent_client.get(page).get_data(as_text=True)
    canned = store.templates.list()[0]
    assert canned.name in shown and escape(f"{canned.body} Ref {tid}") in shown  # the picker carries the full text
    text = f"@traveller_jo {canned.body} Ref {tid} ^RF"
    for _ in range(2):  # double submit: one reply
        assert post_form(agent_client, f"{page}/replies", {"text": text, "request_key": "reply-1",
                                                           "template": canned.name}).status_code == 302
    (entry,) = _outbox(store, kind="manual")
    assert (entry.status, entry.created_by, entry.text, entry.tweet_id) == ("queued", "alice", text, "30")
    bad = post_form(agent_client, f"{page}/replies", {"text": "no ticket id here", "request_key": "reply-2"})
    assert "must contain the ticket ID" in agent_client.get(bad.headers["Location"]).get_data(as_text=True)
    long = post_form(agent_client, f"{page}/replies", {"text": f"{tid} " + "x" * 300, "request_key": "reply-3"})
    assert "at most 280" in agent_client.get(long.headers["Location"]).get_data(as_text=True)
    assert len(_outbox(store, kind="manual")) == 1
    assert Sender(settings, outbox=store.outbox).drain_once()["sent"] == 1
    (entry,) = _outbox(store, kind="manual")
    assert entry.status == "sent"
    with store.db.read() as session:
        assert session.scalars(select(Ticket.first_response_at).where(Ticket.ticket_id == tid)).one() is not None


def test_several_manual_replies_but_one_automatic_reply_per_ticket(reply_client, auth_headers, store, make_tweet) -> None:
    from sqlalchemy.exc import IntegrityError

    (result,) = ingest(reply_client, auth_headers, make_tweet(tweet_id="40"))
    for key in ("a", "b"):
        store.work.reply(result["ticket_id"], f"hi {result['ticket_id']} ({key})", "alice", key)
    assert [e.kind for e in _outbox(store)] == ["auto", "manual", "manual"]
    (auto,) = _outbox(store, kind="auto")
    with pytest.raises(IntegrityError), store.db.write() as session:  # the partial unique index is the referee
        session.add(OutboxEntry(tweet_id="40-other", ticket_pk=auto.ticket_pk, ticket_id=auto.ticket_id, text="x", kind="auto"))


# --- approval ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("changes", "held"), [({"reply_approval_below": 0.95}, [True, False]),
                                               ({"review_all_replies": True}, [True, True]),
                                               ({}, [False, False])])
def test_which_automatic_replies_wait_for_approval(settings, make_tweet, auth_headers, changes, held) -> None:
    app = _held_app(settings, **changes)
    try:
        # confidence = needs-reply probability (no topic named, so the topic's score does not count)
        results = ingest(app.test_client(), auth_headers, make_tweet(tweet_id="50", needs_reply_score=0.9, topic=None),
                         make_tweet(tweet_id="51", needs_reply_score=0.99, topic=None))
        assert [not r["reply_queued"] for r in results] == held
        statuses = [e.status for e in _outbox(app.extensions["replyflow"].store)]
        assert statuses == ["awaiting_approval" if h else "queued" for h in held]
    finally:
        app.extensions["replyflow"].store.dispose()


def test_approve_edit_and_reject(settings, make_tweet, auth_headers, users: Any = None) -> None:
    from tests.fixtures.workspace import AGENT, sign_in

    app = _held_app(settings, review_all_replies=True)
    store = app.extensions["replyflow"].store
    try:
        store.accounts.add(*AGENT)
        client = app.test_client()
        sign_in(client, *AGENT)
        ids = [r["ticket_id"] for r in ingest(client, auth_headers, *(make_tweet(tweet_id=str(60 + i)) for i in range(3)))]
        held = {e.ticket_id: e for e in _outbox(store)}
        assert {e.status for e in held.values()} == {"awaiting_approval"}
        assert Sender(settings, outbox=store.outbox).drain_once()["sent"] == 0  # the sender never sees held replies
        page = client.get("/approvals").get_data(as_text=True)
        assert all(t in page for t in ids) and "3 replies waiting" in page

        a, b, c = (held[t] for t in ids)
        post_form(client, f"/replies/{a.id}/approve", {"text": a.text}, "/approvals")
        post_form(client, f"/replies/{b.id}/approve", {"text": f"@traveller_jo We found your bag! Ref {ids[1]}"}, "/approvals")
        post_form(client, f"/replies/{c.id}/reject", {"reason": "customer already called us"}, "/approvals")
        again = post_form(client, f"/replies/{a.id}/approve", {}, "/approvals")  # a second click changes nothing
        assert "this reply is queued now (by alice)" in client.get(again.headers["Location"]).get_data(as_text=True)
        cut = post_form(client, f"/replies/{b.id}/approve", {"text": "no id"}, "/approvals")
        assert cut.status_code == 302

        after = {e.ticket_id: e for e in _outbox(store)}
        assert [after[t].status for t in ids] == ["queued", "queued", "rejected"]
        assert after[ids[1]].text == f"@traveller_jo We found your bag! Ref {ids[1]}"
        assert after[ids[2]].review_note == "customer already called us"
        assert {after[t].reviewed_by for t in ids} == {"alice"}
        assert [e.kind for e in _events(store, "approve") + _events(store, "edit") + _events(store, "reject")] == \
            ["approve", "edit", "reject"]
        assert Sender(settings, outbox=store.outbox).drain_once()["sent"] == 2
        assert [after_send.status for after_send in _outbox(store)] == ["sent", "sent", "rejected"]
    finally:
        store.dispose()


# --- failures -------------------------------------------------------------------------------
def test_failed_and_interrupted_replies_can_be_retried(agent_client, auth_headers, make_tweet, store, settings) -> None:
    results = ingest(agent_client, auth_headers, make_tweet(tweet_id="70"), make_tweet(tweet_id="71"))
    failed_entry, interrupted = _outbox(store)
    for entry, error in ((failed_entry, "403 Forbidden: not allowed"), (interrupted, INTERRUPTED)):
        assert store.outbox.claim(entry.id)
        store.outbox.record(entry.id, SendOutcome("failed", error=error))
    page = agent_client.get("/failures").get_data(as_text=True)
    assert results[0]["ticket_id"] in page and "not allowed" in page and "it is not on X" in page
    post_form(agent_client, f"/replies/{failed_entry.id}/retry", {}, "/failures")
    refused = post_form(agent_client, f"/replies/{interrupted.id}/retry", {}, "/failures")
    assert "may be on X already" in agent_client.get(refused.headers["Location"]).get_data(as_text=True)
    assert [e.status for e in _outbox(store)] == ["queued", "failed"]
    post_form(agent_client, f"/replies/{interrupted.id}/retry", {"confirm": "not-on-x"}, "/failures")
    assert [e.status for e in _outbox(store)] == ["queued", "queued"]
    assert [e.data["confirmed_not_on_x"] for e in _events(store, "retry")[1:]] == [True]
    with store.db.write() as session:  # the other helper's status for interrupted posts needs the same care
        session.execute(update(OutboxEntry).where(OutboxEntry.id == interrupted.id).values(status="uncertain"))
    with pytest.raises(ValueError, match="may be on X"):
        store.approvals.retry(interrupted.id, "alice")
    assert store.approvals.retry(interrupted.id, "alice", confirmed_not_on_x=True)["status"] == "queued"


# --- corrections ----------------------------------------------------------------------------
def test_corrections_are_stored_exported_and_measured(agent_client, auth_headers, make_tweet, store, tmp_path) -> None:
    (r,) = ingest(agent_client, auth_headers, make_tweet(tweet_id="80", text="seat &amp; bag, 5 > 4"))
    ingest(agent_client, auth_headers, make_tweet(tweet_id="81", topic="Seating Preferences", text="seat"))
    page = f"/tickets/{r['ticket_id']}"
    post_form(agent_client, "/tweets/80/correction", {"sentiment": "neutral", "topic": "", "needs_reply": "no",
                                                      "ticket_id": r["ticket_id"], "next": page})
    post_form(agent_client, "/tweets/80/correction", {"sentiment": "negative", "topic": "Seating Preferences",
                                                      "needs_reply": "yes", "ticket_id": r["ticket_id"]})
    post_form(agent_client, "/tweets/81/correction", {"sentiment": "negative", "topic": "Seating Preferences",
                                                      "needs_reply": "yes"})
    assert "corrected by alice" in agent_client.get(page).get_data(as_text=True)
    out = tmp_path / "corrections.csv"
    assert store.corrections.export_csv(out) == 2
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert list(rows[0]) == ["tweet_id", "text", "sentiment", "topic", "needs_reply", "corrected_by", "corrected_at"]
    assert [(x["tweet_id"], x["topic"], x["needs_reply"], x["corrected_by"]) for x in rows] == [
        ("80", "Seating Preferences", "true", "alice"), ("81", "Seating Preferences", "true", "alice")]
    assert rows[0]["text"] == "seat &amp; bag, 5 > 4"  # stored as received (the API gets unescaped text from ingest)
    agreement = store.corrections.agreement(utcnow() - timedelta(days=7))
    (week,) = agreement["topic"]["weeks"]
    assert agreement["topic"]["classes"]["Seating Preferences"][week] == (1, 2)  # model said Baggage once
    assert agreement["sentiment"]["overall"][week] == (2, 2)
    quality = agent_client.get("/quality").get_data(as_text=True)
    assert "50%" in quality and "Seating Preferences" in quality
    bad = post_form(agent_client, "/tweets/80/correction", {"sentiment": "furious", "needs_reply": "yes"})
    assert bad.status_code == 302 and store.corrections.export_csv(out) == 2


# --- SLA --------------------------------------------------------------------------------------
def test_sla_clocks_queue_and_figures(agent_client, auth_headers, make_tweet, store, settings) -> None:
    results = ingest(agent_client, auth_headers, *(make_tweet(tweet_id=str(90 + i)) for i in range(3)))
    old, answered, fresh = (r["ticket_id"] for r in results)
    with store.db.write() as session:  # two tickets from yesterday; one of them answered within 10 minutes
        for tid in (old, answered):
            session.execute(update(Ticket).where(Ticket.ticket_id == tid).values(created_at=utcnow() - timedelta(hours=26)))
        session.execute(update(Ticket).where(Ticket.ticket_id == answered).values(
            first_response_at=utcnow() - timedelta(hours=25, minutes=50), assignee_id=1))
    breached = agent_client.get("/queues/breached").get_data(as_text=True)
    assert old in breached and answered in breached and fresh not in breached  # answered, but unresolved after 24 h
    sla_page = agent_client.get("/sla").get_data(as_text=True)
    assert "alice" in sla_page and "Baggage Issue" in sla_page and "sla-overall" in sla_page
    from replyflow.reply.sla import SlaTargets

    figures = store.sla.figures(SlaTargets.from_settings(settings), utcnow(), timedelta(days=30))
    overall = figures["overall"]
    assert (overall["tickets"], overall["answered"], overall["breached"]) == (3, 1, 2)
    assert overall["first_response_met"] == 1.0 and 590 < overall["first_response_avg"] < 610
    (alice,) = [row for row in figures["agents"] if row["name"] == "alice"]
    assert (alice["tickets"], alice["breached"]) == (1, 1)


# --- templates --------------------------------------------------------------------------------
def test_templates_are_seeded_once_and_drive_automatic_replies(admin_client, auth_headers, make_tweet, store) -> None:
    templates = store.templates.list()
    assert len(templates) == 19 and all(t.slot for t in templates)  # 8 topics + general, complaint and question; thanks
    bag = next(t for t in templates if t.slot == "complaint:Baggage Issue")
    post_form(admin_client, "/admin/templates", {"template_id": bag.id, "name": bag.name,
                                                 "body": "So sorry about the bag! DM us the tag."}, "/admin/templates")
    post_form(admin_client, "/admin/templates", {"name": "Outage", "body": "We know, we are on it."}, "/admin/templates")
    ingest(admin_client, auth_headers, make_tweet(tweet_id="100"))
    (entry,) = _outbox(store)
    assert "So sorry about the bag! DM us the tag." in entry.text
    assert store.templates.seed() == 0  # once per database, even after edits
    assert {t.name for t in store.templates.list()} >= {"Outage", bag.name}
    refused = post_form(admin_client, f"/admin/templates/{bag.id}/delete", {}, "/admin/templates")
    assert "cannot be deleted" in admin_client.get(refused.headers["Location"]).get_data(as_text=True)
    outage = next(t for t in store.templates.list() if t.name == "Outage")
    post_form(admin_client, f"/admin/templates/{outage.id}/delete", {}, "/admin/templates")
    assert "Outage" not in {t.name for t in store.templates.list()}


def test_admin_manages_users(admin_client, store) -> None:
    post_form(admin_client, "/admin/users", {"username": "bob", "password": "bob-password-1", "role": "agent"}, "/admin/users")
    assert store.accounts.get("bob").role == "agent"
    short = post_form(admin_client, "/admin/users", {"username": "eve", "password": "short", "role": "agent"}, "/admin/users")
    assert "password too short" in admin_client.get(short.headers["Location"]).get_data(as_text=True)
    post_form(admin_client, "/admin/users/bob/disable", {}, "/admin/users")
    assert store.accounts.get("bob").active is False
    post_form(admin_client, "/admin/users/bob/enable", {}, "/admin/users")
    post_form(admin_client, "/admin/users/bob/password", {"password": "bob-password-2"}, "/admin/users")
    assert store.accounts.authenticate("bob", "bob-password-2").outcome == "ok"
    itself = post_form(admin_client, "/admin/users/root/disable", {}, "/admin/users")
    assert "cannot disable yourself" in admin_client.get(itself.headers["Location"]).get_data(as_text=True)
