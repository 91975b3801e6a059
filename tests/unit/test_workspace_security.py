"""Security of the agent workspace (docs/SECURITY.md): login everywhere, CSRF on every form, roles,
sessions (new at login, ended at once when a user is disabled), login rate limit and lockout,
cookie flags, escaping of hostile text in tweets, notes and templates, security headers.

The route checks enumerate Flask's ``url_map``: a new page or form is covered without editing them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import SecretStr

from tests.fixtures.workspace import ADMIN, AGENT, csrf_token, ingest, post_form, sign_in

WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'


def _url(rule: Any) -> str:
    url = rule.rule
    for arg in rule.arguments:
        url = re.sub(rf"<(?:[^:<>]+:)?{arg}>", "1" if "int:" in rule.rule else "X-20261124-0001", url)
    return url


def _workspace_rules(app: Any, method: str) -> list[Any]:
    return [r for r in app.url_map.iter_rules() if not r.rule.startswith(("/api/", "/dashboard-static"))
            and method in (r.methods or set()) and r.endpoint != "auth.login"]


def test_every_page_needs_a_login(reply_app: Any) -> None:
    client = reply_app.test_client()
    rules = _workspace_rules(reply_app, "GET")
    assert {"/", "/queues/<name>", "/tickets/<ticket_id>", "/approvals", "/sla", "/admin/users"} <= {r.rule for r in rules}
    for rule in rules:
        r = client.get(_url(rule))
        assert r.status_code == 302 and r.headers["Location"].startswith("/login"), rule.rule
    r = client.get("/fragments/nav", headers={"HX-Request": "true"})  # htmx polling: sent to the login page
    assert r.status_code == 401 and r.headers["HX-Redirect"] == "/login"
    assert client.get("/login").status_code == 200 and client.get("/dashboard-static/dashboard.css").status_code == 200


def test_every_form_needs_the_csrf_token(agent_client: Any, reply_app: Any) -> None:
    """Signed in, every workspace write route without the token (or with a wrong one) is a 400."""
    rules = [r for r in reply_app.url_map.iter_rules() if not r.rule.startswith("/api/") and (r.methods or set()) & WRITE_METHODS]
    assert {"/login", "/logout", "/replies/<int:entry_id>/approve", "/tickets/<ticket_id>/replies",
            "/admin/users"} <= {r.rule for r in rules}
    for rule in rules:
        for data in ({}, {"csrf_token": "forged"}):
            r = agent_client.post(_url(rule), data=data)
            assert r.status_code == 400, (rule.rule, data, r.status_code)
            assert "CSRF" in r.get_data(as_text=True)
    assert agent_client.get("/queues/unassigned").status_code == 200  # still signed in: nothing happened


def test_the_api_keeps_its_bearer_token_and_needs_no_csrf(reply_client: Any, auth_headers: Any, make_tweet: Any) -> None:
    assert reply_client.post("/api/v1/replies", json=make_tweet(tweet_id="1"), headers=auth_headers).status_code == 200
    assert reply_client.post("/api/v1/replies", json=make_tweet(tweet_id="2")).status_code == 401
    r = reply_client.get("/api/v1/health")
    assert r.status_code == 200 and "Content-Security-Policy" not in r.headers and "Set-Cookie" not in r.headers


def test_agents_cannot_reach_admin_pages_or_actions(agent_client: Any, admin_client: Any, reply_app: Any, store: Any) -> None:
    rules = [r for r in reply_app.url_map.iter_rules() if r.rule.startswith("/admin")]
    assert len(rules) >= 7
    for rule in rules:
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            if method == "GET":
                r = agent_client.get(_url(rule))
            else:
                r = agent_client.post(_url(rule), data={"csrf_token": csrf_token(agent_client, "/"), "username": "mallory",
                                                        "password": "mallory-password", "role": "admin", "name": "x",
                                                        "body": "x"})
            assert r.status_code == 403, (method, rule.rule, r.status_code)
            if method == "GET":
                assert admin_client.get(_url(rule)).status_code in (200, 405), rule.rule
    assert store.accounts.get("mallory") is None and store.accounts.get("alice").active
    assert 'href="/admin/users"' not in agent_client.get("/").get_data(as_text=True)
    assert 'href="/admin/users"' in admin_client.get("/").get_data(as_text=True)


def _session_cookie(client: Any) -> str | None:
    cookie = client.get_cookie("replyflow_session")
    return cookie.value if cookie else None


def test_login_issues_a_new_session(reply_app: Any, users: Any) -> None:
    client = reply_app.test_client()
    token_before = csrf_token(client)
    before = _session_cookie(client)
    assert before
    response = client.post("/login", data={"username": AGENT[0], "password": AGENT[1], "csrf_token": token_before})
    assert response.status_code == 302
    after = _session_cookie(client)
    assert after and after != before
    assert csrf_token(client, "/") != token_before  # the CSRF token is new too
    # The pre-login cookie (an attacker's planted one) is not signed in.
    planted = reply_app.test_client()
    planted.set_cookie("replyflow_session", before)
    assert planted.get("/").status_code == 302


def test_session_cookie_flags(reply_app: Any, settings: Any) -> None:
    client = reply_app.test_client()
    r = client.get("/login", base_url="https://localhost")
    cookies = [c for c in r.headers.getlist("Set-Cookie") if c.startswith("replyflow_session=")]
    assert cookies and all("HttpOnly" in c and "SameSite=Lax" in c and "Secure" in c for c in cookies)
    plain = reply_app.test_client().get("/login")
    (cookie,) = [c for c in plain.headers.getlist("Set-Cookie") if c.startswith("replyflow_session=")]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # plain HTTP on loopback
    from replyflow.app import create_app

    secure_app = create_app(settings.model_copy(update={"web_cookie_secure": True}))
    try:
        (cookie,) = [c for c in secure_app.test_client().get("/login").headers.getlist("Set-Cookie")
                     if c.startswith("replyflow_session=")]
        assert "Secure" in cookie
    finally:
        secure_app.extensions["replyflow"].store.dispose()


def test_disabled_user_is_locked_out_at_once(agent_client: Any, store: Any) -> None:
    assert agent_client.get("/queues/mine").status_code == 200
    store.accounts.set_active("alice", False)
    assert agent_client.get("/queues/mine").status_code == 302  # the very next request
    assert sign_in(agent_client, *AGENT).status_code == 401
    store.accounts.set_active("alice", True)
    assert agent_client.get("/queues/mine").status_code == 302  # the old session stays dead
    assert sign_in(agent_client, *AGENT).status_code == 302


def test_password_reset_and_logout_everywhere_end_sessions(reply_app: Any, store: Any, users: Any) -> None:
    laptop, phone = reply_app.test_client(), reply_app.test_client()
    for client in (laptop, phone):
        sign_in(client, *AGENT)
    post_form(laptop, "/logout-everywhere", {}, "/")
    assert laptop.get("/").status_code == 302 and phone.get("/").status_code == 302
    sign_in(phone, *AGENT)
    store.accounts.reset_password("alice", "alice-password-2")
    assert phone.get("/").status_code == 302
    assert sign_in(phone, *AGENT).status_code == 401 and sign_in(phone, "alice", "alice-password-2").status_code == 302
    post_form(phone, "/logout", {}, "/")
    assert phone.get("/").status_code == 302


def test_login_rate_limit_holds(settings: Any) -> None:
    from replyflow.app import create_app

    app = create_app(settings.model_copy(update={"web_login_rate_limit": "3 per minute", "web_lockout_failures": 100}))
    try:
        app.extensions["replyflow"].store.accounts.add(*AGENT)
        client = app.test_client()
        codes = [sign_in(client, AGENT[0], "wrong-password").status_code for _ in range(3)]
        assert codes == [401, 401, 401]
        assert sign_in(client, *AGENT).status_code == 429  # even the right password: the address is throttled
        other = app.test_client()  # another address is not
        assert other.post("/login", data={"username": AGENT[0], "password": AGENT[1],
                                          "csrf_token": csrf_token(other)},
                          environ_base={"REMOTE_ADDR": "127.0.0.2"}).status_code == 302
    finally:
        app.extensions["replyflow"].store.dispose()


def test_lockout_is_per_account_and_shared_by_instances(settings: Any) -> None:
    from replyflow.app import create_app

    locked = settings.model_copy(update={"web_lockout_failures": 3, "web_login_rate_limit": "100 per minute"})
    first, second = create_app(locked), create_app(locked)  # two service instances on one database
    try:
        first.extensions["replyflow"].store.accounts.add(*AGENT)
        a, b = first.test_client(), second.test_client()
        assert [sign_in(c, AGENT[0], "wrong-password").status_code for c in (a, b, a)] == [401, 401, 401]
        r = sign_in(b, *AGENT)
        assert r.status_code == 401 and "locked" in r.get_data(as_text=True)
        second.extensions["replyflow"].store.accounts.reset_password(AGENT[0], AGENT[1])  # an admin unlocks it
        assert sign_in(a, *AGENT).status_code == 302
    finally:
        for app in (first, second):
            app.extensions["replyflow"].store.dispose()


def test_unknown_user_and_wrong_password_look_the_same(reply_app: Any, users: Any) -> None:
    client = reply_app.test_client()
    wrong, unknown = sign_in(client, AGENT[0], "nope-nope-nope"), sign_in(client, "nobody", "nope-nope-nope")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong user name or password." in wrong.get_data(as_text=True)
    assert "Wrong user name or password." in unknown.get_data(as_text=True)


def test_open_redirect_after_login_is_refused(reply_app: Any, users: Any) -> None:
    client = reply_app.test_client()
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        r = client.post("/login", data={"username": AGENT[0], "password": AGENT[1], "csrf_token": csrf_token(client),
                                        "next": target})
        assert r.headers["Location"] == "/queues/unassigned", target
    r = client.post("/login", data={"username": AGENT[0], "password": AGENT[1], "csrf_token": csrf_token(client),
                                    "next": "/sla"})
    assert r.headers["Location"] == "/sla"


def test_hostile_text_in_tweets_notes_and_templates_is_escaped(agent_client: Any, admin_client: Any, auth_headers: Any,
                                                               make_tweet: Any, store: Any) -> None:
    (r,) = ingest(agent_client, auth_headers, make_tweet(tweet_id="9", text=f"{SCRIPT} {IMG}", author_handle="evil_one",
                                                        entities=[{"text": "<b>x</b>", "label": "<i>", "start": 0, "end": 3}]))
    page = f"/tickets/{r['ticket_id']}"
    post_form(agent_client, f"{page}/notes", {"body": f"note {SCRIPT}{IMG}", "request_key": "n1"}, page)
    bag = next(t for t in store.templates.list() if t.slot == "complaint:Baggage Issue")
    post_form(admin_client, "/admin/templates", {"template_id": bag.id, "name": f"T {SCRIPT}", "body": f"Sorry {IMG}"},
              "/admin/templates")
    post_form(admin_client, "/admin/templates", {"name": f"C {IMG}", "body": f"hi {SCRIPT}"}, "/admin/templates")
    store.work.reply(r["ticket_id"], f"{SCRIPT} {r['ticket_id']}", "alice", "r1")
    post_form(agent_client, "/tweets/9/correction", {"sentiment": "negative", "topic": "", "needs_reply": "yes"}, page)
    urls = [page, "/", "/queues/unassigned", "/approvals", "/failures", "/quality", f"/?q={SCRIPT}", "/overview"]
    for client, url in [(agent_client, u) for u in urls] + [(admin_client, "/admin/templates"), (admin_client, page)]:
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>x</b>" not in html, url
    html = agent_client.get(page).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "note &lt;script&gt;" in html
    assert "&lt;script&gt;" in admin_client.get("/admin/templates").get_data(as_text=True)


def test_html_escaped_text_from_x_is_shown_once_escaped(agent_client: Any, auth_headers: Any, make_tweet: Any) -> None:
    """Ingest unescapes X's ``&amp;`` (test_ingest_*); the page escapes once: ``&amp;`` never shows literally."""
    from replyflow.ingest.replay import csv_row_to_tweet

    raw = csv_row_to_tweet({"tweet_id": "7", "text": "@united bags &amp; seats &lt;3", "name": "jo",
                            "tweet_created": "2015-02-24 11:35:52 -0800"})
    assert raw.text == "@united bags & seats <3"
    (r,) = ingest(agent_client, auth_headers, make_tweet(tweet_id="7", text=raw.text))
    html = agent_client.get(f"/tickets/{r['ticket_id']}").get_data(as_text=True)
    assert "bags &amp; seats &lt;3" in html and "&amp;amp;" not in html


def test_security_headers_on_pages(agent_client: Any) -> None:
    r = agent_client.get("/")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"
    assert "<script>" not in r.get_data(as_text=True)  # no inline script anywhere (the CSP would block it)


def test_web_secret_is_generated_once_with_mode_0600(settings: Any) -> None:
    from replyflow.reply.auth import resolve_web_secret, web_secret_file

    first = resolve_web_secret(settings)
    assert len(first) >= 32 and oct(web_secret_file(settings).stat().st_mode & 0o777) == "0o600"
    assert resolve_web_secret(settings) == first
    configured = settings.model_copy(update={"web_secret_key": SecretStr("configured-key-0123456789abcdef")})
    assert resolve_web_secret(configured) == "configured-key-0123456789abcdef"


def test_nul_in_a_form_or_url_is_refused(agent_client: Any, reply_app: Any) -> None:
    r = agent_client.post("/tickets/X/notes", data={"body": "a\x00b", "csrf_token": csrf_token(agent_client, "/")})
    assert r.status_code == 400
    stranger = reply_app.test_client()  # refused before the login check (PostgreSQL cannot compare NUL)
    assert stranger.get("/?q=%00").status_code == 400 and stranger.get("/tickets/a%00").status_code == 400


@pytest.mark.parametrize("password", ["short", "x\x00" * 10])
def test_weak_passwords_are_refused(store: Any, password: str) -> None:
    from replyflow.reply.accounts import AccountError

    with pytest.raises(AccountError):
        store.accounts.add("bob", password)


def test_passwords_are_stored_as_argon2_hashes(store: Any, users: Any) -> None:
    from sqlalchemy import select

    from replyflow.reply.worktables import User

    with store.db.read() as session:
        hashes = session.scalars(select(User.password_hash)).all()
    assert len(hashes) == 2 and all(h.startswith("$argon2id$") and ADMIN[1] not in h for h in hashes)
