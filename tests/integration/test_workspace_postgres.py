"""The workspace's SQL on the REAL PostgreSQL: partial unique indexes, SLA arithmetic, lockout, races."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from replyflow.core.times import utcnow
from replyflow.reply.sla import SlaTargets
from replyflow.reply.tables import OutboxEntry, Ticket
from tests.fixtures.workspace import AGENT, ingest, post_form, sign_in

pytestmark = pytest.mark.integration


@pytest.fixture()
def pg_app(settings: Any, fresh_postgres_url: str) -> Any:
    from replyflow.app import create_app

    app = create_app(settings.model_copy(update={"database_url": fresh_postgres_url, "reply_approval_below": 0.95,
                                                 "web_lockout_failures": 2}))
    app.config["TESTING"] = True
    yield app
    app.extensions["replyflow"].store.dispose()


def test_workspace_on_postgresql(pg_app: Any, auth_headers: Any, make_tweet: Any) -> None:
    store = pg_app.extensions["replyflow"].store
    settings = pg_app.extensions["replyflow"].settings
    store.accounts.add(*AGENT)
    client = pg_app.test_client()
    assert sign_in(client, *AGENT).status_code == 302
    held, sure = ingest(client, auth_headers, make_tweet(tweet_id="1", needs_reply_score=0.9),
                        make_tweet(tweet_id="2", needs_reply_score=0.99, topic="Seating Preferences", topic_score=0.99))
    assert not held["reply_queued"] and sure["reply_queued"]

    # One automatic reply per ticket (partial unique index), any number of manual ones.
    with store.db.read() as session:
        auto = session.scalars(select(OutboxEntry).where(OutboxEntry.ticket_id == held["ticket_id"])).one()
    with pytest.raises(IntegrityError), store.db.write() as session:
        session.add(OutboxEntry(tweet_id="1b", ticket_pk=auto.ticket_pk, ticket_id=auto.ticket_id, text="x", kind="auto"))
    for key in ("k1", "k2"):
        store.work.reply(held["ticket_id"], f"hi {held['ticket_id']}", "alice", key)

    # A double-submitted form racing itself stores one reply.
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(
        store.work.reply(held["ticket_id"], f"again {held['ticket_id']}", "alice", "same-key"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.id for r in results}) == 1 and sum(r.created for r in results) == 1

    # Approve through the page; a second approval is refused.
    post_form(client, f"/replies/{auto.id}/approve", {}, "/approvals")
    with pytest.raises(ValueError, match="queued now"):
        store.approvals.approve(auto.id, "alice")

    # SLA arithmetic in SQL (extract epoch): answered after 10 minutes, a day ago.
    with store.db.write() as session:
        session.execute(update(Ticket).where(Ticket.ticket_id == sure["ticket_id"]).values(
            created_at=utcnow() - timedelta(hours=26), first_response_at=utcnow() - timedelta(hours=25, minutes=50)))
    figures = store.sla.figures(SlaTargets.from_settings(settings), utcnow(), timedelta(days=30))
    assert figures["overall"]["tickets"] == 2 and 590 < figures["overall"]["first_response_avg"] < 610
    assert figures["overall"]["breached"] == 1
    assert sure["ticket_id"] in client.get("/queues/breached").get_data(as_text=True)
    assert client.get("/sla").status_code == 200

    # Corrections and agreement.
    store.work.correct("2", "negative", None, True, "alice")
    agreement = store.corrections.agreement(utcnow() - timedelta(days=1))
    (week,) = agreement["topic"]["weeks"]
    assert agreement["topic"]["classes"]["none"][week] == (0, 1)
    assert client.get("/quality").status_code == 200

    # Lockout counted in the database.
    other = pg_app.test_client()
    assert [sign_in(other, AGENT[0], "wrong-password").status_code for _ in range(2)] == [401, 401]
    assert "locked" in sign_in(other, *AGENT).get_data(as_text=True)
    counts = store.worklists.counts(None, SlaTargets.from_settings(settings), utcnow())
    assert counts["approvals"] == 0 and counts["breached"] == 1
    for url in ("/", "/queues/unassigned", f"/tickets/{held['ticket_id']}", "/failures", "/overview"):
        assert client.get(url).status_code == 200, url
