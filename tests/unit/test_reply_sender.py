"""The outbox sender against simulated X API v2 responses (``responses`` intercepts tweepy)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import responses
import tweepy
from pydantic import SecretStr
from sqlalchemy import select, update

from replyflow.core.contracts import EnrichedTweet
from replyflow.core.policy import PolicyConfig, decide
from replyflow.core.times import utcnow
from replyflow.reply.metrics import ReplyMetrics
from replyflow.reply.outbox import SendOutcome
from replyflow.reply.sender import Sender, run_sender
from replyflow.reply.store import Store
from replyflow.reply.tables import OutboxEntry
from tests.fixtures.reply import enriched_tweet

TWEETS_URL = "https://api.twitter.com/2/tweets"
NOW = 1_800_000_000.0


def created(tweet_id: str = "999") -> dict:
    return {"data": {"id": tweet_id, "text": "reply", "edit_history_tweet_ids": [tweet_id]}}


@pytest.fixture()
def store(settings):
    st = Store(settings.db_url, PolicyConfig.from_settings(settings), signature=settings.support_signature)
    st.create_all()
    yield st
    st.dispose()


def queue(store: Store, settings, n: int = 1) -> list[str]:
    ids = []
    for i in range(n):
        rec = EnrichedTweet.model_validate(enriched_tweet(tweet_id=str(5000 + i))).to_record()
        result = store.intake.ingest(rec, decide(rec, settings))
        assert result.reply_queued
        ids.append(result.tweet_id)
    return ids


def entry(store: Store, tweet_id: str) -> OutboxEntry:
    with store.db.read() as s:
        return s.scalars(select(OutboxEntry).where(OutboxEntry.tweet_id == tweet_id)).one()


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture()
def live(settings, store):
    """A live-mode sender with a real tweepy Client, fake sleep and a fixed clock."""
    sleeps = Sleeps()
    client = tweepy.Client(consumer_key="ck", consumer_secret="cs", access_token="at", access_token_secret="ats")
    sender = Sender(settings.model_copy(update={"dry_run": False, "sender_max_attempts": 4}), client,
                    outbox=store.outbox, sleep=sleeps, clock=lambda: NOW)
    return sender, sleeps


def test_dry_run_marks_sent_without_posting(settings, store) -> None:
    (tid,) = queue(store, settings)
    with responses.RequestsMock() as rsps:  # any HTTP call would fail the test
        counts = Sender(settings, outbox=store.outbox).drain_once()
        assert len(rsps.calls) == 0
    assert counts == {"sent": 1, "failed": 0, "skipped": 0}
    e = entry(store, tid)
    assert (e.status, e.posted_tweet_id, e.note, e.attempts) == ("sent", None, "dry-run", 1)


@responses.activate
def test_201_posts_reply(settings, store, live) -> None:
    sender, sleeps = live
    (tid,) = queue(store, settings)
    responses.post(TWEETS_URL, json=created("1234"), status=201)
    assert sender.drain_once()["sent"] == 1
    body = json.loads(responses.calls[0].request.body)
    assert body["reply"] == {"in_reply_to_tweet_id": tid}
    assert body["text"].startswith("@traveller_jo ") and "BAG-" in body["text"]
    assert responses.calls[0].request.headers["Authorization"].startswith("OAuth ")
    e = entry(store, tid)
    assert (e.status, e.posted_tweet_id, e.last_error, e.note) == ("sent", "1234", None, "posted")
    assert sleeps == []


@responses.activate
def test_429_waits_until_reset_then_succeeds(settings, store, live) -> None:
    sender, sleeps = live
    (tid,) = queue(store, settings)
    responses.post(TWEETS_URL, json={"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429},
                   status=429, headers={"x-rate-limit-reset": str(int(NOW + 30)), "x-rate-limit-remaining": "0"})
    responses.post(TWEETS_URL, json=created("77"), status=201)
    assert sender.drain_once()["sent"] == 1
    assert sleeps == [pytest.approx(31.0)]
    assert entry(store, tid).posted_tweet_id == "77"


@responses.activate
def test_503_retries_with_backoff_then_succeeds(settings, store, live) -> None:
    sender, sleeps = live
    (tid,) = queue(store, settings)
    responses.post(TWEETS_URL, json={"title": "Service Unavailable", "status": 503}, status=503)
    responses.post(TWEETS_URL, json={"title": "Service Unavailable", "status": 503}, status=503)
    responses.post(TWEETS_URL, json=created("88"), status=201)
    assert sender.drain_once()["sent"] == 1
    assert len(sleeps) == 2 and sleeps[1] >= sleeps[0] >= 1
    assert entry(store, tid).status == "sent"


@responses.activate
def test_persistent_5xx_fails_after_max_attempts(settings, store, live) -> None:
    sender, sleeps = live
    (tid,) = queue(store, settings)
    responses.post(TWEETS_URL, json={"title": "Internal Error", "status": 500}, status=500)
    assert sender.drain_once()["failed"] == 1
    assert len(responses.calls) == 4 and len(sleeps) == 3
    e = entry(store, tid)
    assert e.status == "failed" and "500" in e.last_error


@responses.activate
def test_403_duplicate_content_counts_as_sent(settings, store, live) -> None:
    sender, _ = live
    (tid,) = queue(store, settings)
    responses.post(TWEETS_URL, status=403, json={
        "detail": "You are not allowed to create a Tweet with duplicate content.",
        "type": "about:blank", "title": "Forbidden", "status": 403})
    assert sender.drain_once()["sent"] == 1
    e = entry(store, tid)
    assert e.status == "sent" and e.posted_tweet_id is None and "duplicate" in e.note


@responses.activate
def test_400_and_other_403_fail_with_visible_error(settings, store, live) -> None:
    sender, sleeps = live
    a, b = queue(store, settings, 2)
    responses.post(TWEETS_URL, status=400, json={"errors": [{"message": "Invalid reply target"}],
                                                "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                                                "type": "https://api.twitter.com/2/problems/invalid-request"})
    responses.post(TWEETS_URL, status=403, json={"detail": "You are not permitted to perform this action.",
                                                "title": "Forbidden", "status": 403})
    assert sender.drain_once() == {"sent": 0, "failed": 2, "skipped": 0}
    assert len(responses.calls) == 2 and sleeps == []  # permanent errors are not retried
    assert "Invalid reply target" in entry(store, a).last_error
    assert "not permitted" in entry(store, b).last_error


def test_claim_is_atomic(settings, store) -> None:
    (tid,) = queue(store, settings)
    one, two = Sender(settings, outbox=store.outbox), Sender(settings, outbox=store.outbox)
    entry_id = entry(store, tid).id
    assert one.outbox.claim(entry_id) is True
    assert two.outbox.claim(entry_id) is False
    assert entry(store, tid).status == "sending"


@responses.activate
def test_two_senders_never_post_the_same_entry(settings, store) -> None:
    ids = queue(store, settings, 12)
    responses.post(TWEETS_URL, json=created("1"), status=201)
    live_settings = settings.model_copy(update={"dry_run": False})
    client = tweepy.Client(consumer_key="ck", consumer_secret="cs", access_token="at", access_token_secret="ats")
    senders = [Sender(live_settings, client, outbox=store.outbox, sleep=lambda s: None) for _ in range(2)]
    barrier = threading.Barrier(2)
    totals = []

    def run(s: Sender) -> None:
        barrier.wait()
        totals.append(s.drain_once())

    threads = [threading.Thread(target=run, args=(s,)) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    posted = [json.loads(c.request.body)["reply"]["in_reply_to_tweet_id"] for c in responses.calls]
    assert sorted(posted) == sorted(ids)  # each entry exactly once
    assert sum(t["sent"] for t in totals) == 12


def test_crash_mid_send_is_not_reposted(settings, store) -> None:
    """At-most-once: an entry left in 'sending' past its lease by a dead sender is uncertain, never re-posted."""
    stale, fresh = queue(store, settings, 2)
    metrics = ReplyMetrics(store.outbox.counts)
    sender = Sender(settings, outbox=store.outbox, metrics=metrics)
    assert sender.outbox.claim(entry(store, stale).id) and sender.outbox.claim(entry(store, fresh).id)
    with store.db.write() as s:
        s.execute(update(OutboxEntry).where(OutboxEntry.tweet_id == stale)
                  .values(claimed_at=utcnow() - timedelta(seconds=settings.sender_lease_seconds + 1)))
    assert sender.reclaim_expired() == 1
    e = entry(store, stale)
    assert e.status == "uncertain" and "not re-posted" in e.last_error
    assert entry(store, fresh).status == "sending"  # its lease runs: may still be in flight elsewhere
    assert sender.drain_once() == {"sent": 0, "failed": 0, "skipped": 0}
    assert sender.reclaim_expired() == 0  # counted once
    exposition = metrics.exposition().decode()
    assert "replyflow_sender_uncertain_total 1.0" in exposition
    assert 'replyflow_outbox_entries{status="uncertain"} 1.0' in exposition
    assert 'replyflow_outbox_entries{status="sending"} 1.0' in exposition


def test_running_sender_reclaims_expired_leases(settings, store) -> None:
    """Not only a starting sender: every round of a running one surfaces entries of a dead sender."""
    (tid,) = queue(store, settings, 1)
    assert store.outbox.claim(entry(store, tid).id)  # "another sender" claims it, then dies
    quick = settings.model_copy(update={"sender_poll_seconds": 0.02, "sender_lease_seconds": 0.2})
    sender = Sender(quick, outbox=store.outbox)
    thread = threading.Thread(target=sender.run_forever)
    thread.start()
    try:
        for _ in range(200):
            if entry(store, tid).status == "uncertain":
                break
            threading.Event().wait(0.02)
    finally:
        sender.stopping.set()
        thread.join(5)
    assert entry(store, tid).status == "uncertain"


@responses.activate
def test_lease_renewed_while_waiting_for_rate_limit(settings, store) -> None:
    """A live sender waiting out a long 429 keeps its lease: nobody marks its entry uncertain meanwhile."""
    (tid,) = queue(store, settings)
    responses.post(TWEETS_URL, status=429, headers={"x-rate-limit-reset": str(int(NOW) + 600)}, json={"title": "Too Many"})
    responses.post(TWEETS_URL, json=created("77"), status=201)
    claimed_at: list = []
    metrics = ReplyMetrics()

    def sleep(seconds: float) -> None:
        claimed_at.append(entry(store, tid).claimed_at)
        # What another sender would do during the wait: the lease must not have run out.
        assert other.reclaim_expired() == 0

    client = tweepy.Client(consumer_key="ck", consumer_secret="cs", access_token="at", access_token_secret="ats")
    lease = settings.model_copy(update={"dry_run": False, "sender_lease_seconds": 60})
    sender = Sender(lease, client, outbox=store.outbox, sleep=sleep, clock=lambda: NOW, metrics=metrics)
    other = Sender(settings.model_copy(update={"sender_lease_seconds": 60}), outbox=store.outbox)
    assert sender.drain_once()["sent"] == 1
    assert len(claimed_at) == 31  # 601 s in steps of at most a third of the lease (20 s)
    assert claimed_at == sorted(claimed_at)
    text = metrics.exposition().decode()
    assert "replyflow_sender_rate_limit_waits_total 1.0" in text
    assert "replyflow_sender_rate_limit_wait_seconds_total 601.0" in text
    assert 'replyflow_sender_sends_total{outcome="sent"} 1.0' in text


def test_stopping_sender_claims_no_more(settings, store) -> None:
    ids = queue(store, settings, 3)
    sender = Sender(settings, outbox=store.outbox)
    posted = []

    def post(text: str, in_reply_to: str, entry_id: int | None = None):
        posted.append(in_reply_to)
        sender.stopping.set()  # a SIGTERM arrives while the first reply is being posted
        return SendOutcome("sent", None, note="dry-run")

    sender.post = post  # type: ignore[method-assign]
    assert sender.drain_once()["sent"] == 1
    assert posted == ids[:1]
    assert store.outbox.counts()["queued"] == 2 and store.outbox.counts()["sending"] == 0


def test_live_mode_without_credentials_refuses(settings) -> None:
    with pytest.raises(RuntimeError, match="credentials"):
        Sender(settings.model_copy(update={"dry_run": False}))


def test_run_sender_once(settings, store) -> None:
    queue(store, settings, 3)
    assert run_sender(settings, once=True) == {"sent": 3, "failed": 0, "skipped": 0}
    assert store.outbox.counts()["sent"] == 3


def test_run_forever_stops(settings, store) -> None:
    queue(store, settings, 2)
    stop, wake = threading.Event(), threading.Event()
    sender = Sender(settings.model_copy(update={"sender_poll_seconds": 0.05}), outbox=store.outbox)
    thread = threading.Thread(target=sender.run_forever, kwargs={"stop": stop, "wakeup": wake})
    thread.start()
    for _ in range(100):
        if store.outbox.counts()["sent"] == 2:
            break
        threading.Event().wait(0.05)
    stop.set()
    wake.set()
    thread.join(5)
    assert not thread.is_alive() and store.outbox.counts()["sent"] == 2


@responses.activate
def test_x_api_base_url_redirects_tweepy(settings, store) -> None:
    """``x_api_base_url`` points the live client at a fake X API (used by end-to-end tests)."""
    (tid,) = queue(store, settings)
    responses.post("http://127.0.0.1:9/2/tweets", json=created("55"), status=201)
    live_settings = settings.model_copy(update={
        "dry_run": False, "x_api_base_url": "http://127.0.0.1:9",
        **{k: SecretStr(k) for k in ("x_api_key", "x_api_secret", "x_access_token", "x_access_token_secret")}})
    assert Sender(live_settings, outbox=store.outbox).drain_once()["sent"] == 1
    assert responses.calls[0].request.url == "http://127.0.0.1:9/2/tweets"
    assert entry(store, tid).posted_tweet_id == "55"
