"""Property-based tests (hypothesis) of the code that sees untrusted input.

Why properties rather than more examples: tweets are arbitrary unicode from strangers, and
the reply API is reachable by anything holding the token.  The properties below are the
promises other stages rely on:

* ``nlp.text``: cleaning never raises, whatever the text (emoji, control characters, RTL
  marks, CJK...), and its output is what the models were trained on: lowercase ASCII words
  of >= 2 letters, no URL or @mention remnants, no stop words except negations and the
  sentiment-bearing function words; negations always survive (a complaint stays a complaint).
* ``parse_raw``: for ANY bytes, str or JSON value it returns a RawTweet or raises
  ``ValueError``; nothing else may escape, or the replay / stream parse step would crash.
* the reply API: no JSON body, query string or ticket id yields a 5xx.

Example counts are modest (``max_examples`` 100-200, no deadline) so the suite stays fast.
"""

from __future__ import annotations

import json
import re
import string
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from replyflow.core.contracts import RawTweet, parse_raw
from tests.reliability.corpus import valid_raw

FAST = hsettings(max_examples=150, deadline=None)
WITH_FIXTURES = hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Text as tweets come: any unicode (no lone surrogates: those cannot be UTF-8 encoded, and
# parse_raw rejects them first), biased towards the characters that matter for cleaning.
TWEET_CHARS = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(list("@#:/.'’`´!? \n\t\r\x00\x1b\u200b\u202e") + ["😡", "❤", "✈", "👍", "\U0001F1FA", "\U0001F1F8", "ﬁ", "İ"]),
)
tweet_texts = st.text(TWEET_CHARS, max_size=280)
words = st.text(alphabet=string.ascii_lowercase, min_size=3, max_size=10)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


# --- nlp.text ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def text_mod() -> Any:
    return pytest.importorskip("replyflow.nlp.text")


@FAST
@given(text=tweet_texts)
def test_tokens_never_raise_and_are_model_vocabulary(text_mod: Any, text: str) -> None:
    toks = text_mod.tokens(text)
    assert isinstance(toks, list)
    for tok in toks:
        assert re.fullmatch(r"[a-z]{2,}", tok), tok
        assert tok not in text_mod.STOP_WORDS, tok
    assert text_mod.clean_text(text) == " ".join(toks)


@FAST
@given(text=tweet_texts)
def test_pre_clean_output_charset(text_mod: Any, text: str) -> None:
    plain = text_mod.pre_clean(text)
    assert re.fullmatch(r"(?:[a-z]+(?: [a-z]+)*)?", plain), plain
    punct = text_mod.sentiment_text(text)
    assert re.fullmatch(r"(?:[a-z!?]+(?: [a-z!?]+)*)?", punct), punct


@FAST
@given(before=tweet_texts, after=tweet_texts, handle=words, path=words)
def test_urls_and_mentions_leave_no_trace(text_mod: Any, before: str, after: str, handle: str, path: str) -> None:
    marker_handle, marker_path = f"zq{handle}", f"xv{path}"
    assume(marker_handle not in (before + after).lower() and marker_path not in (before + after).lower())
    text = f"{before} @{marker_handle} {after} https://t.co/{marker_path} www.{marker_path}.com/{marker_path}"
    cleaned = text_mod.clean_text(text)
    assert marker_handle not in cleaned and marker_path not in cleaned
    assert "http" not in cleaned.split() and "www" not in cleaned.split()


@FAST
@given(before=st.lists(words, max_size=6), after=st.lists(words, max_size=6),
       negation=st.sampled_from(["not", "no", "never", "nor", "can't", "didn't", "won't", "cannot"]))
def test_negations_survive(text_mod: Any, before: list[str], after: list[str], negation: str) -> None:
    # Negations flip the meaning of a complaint; the stop-word list must never eat them.
    toks = text_mod.tokens(" ".join([*before, negation, *after]))
    expected = negation if negation in text_mod.NEGATIONS else "not"
    assert expected in toks


@FAST
@given(text=tweet_texts)
def test_batch_equals_single(text_mod: Any, text: str) -> None:
    # train == serve: the batch path (serving) and the one-text path give identical output.
    assert text_mod.clean_texts([text, "", text]) == [text_mod.clean_text(text), "", text_mod.clean_text(text)]


# --- parse_raw -----------------------------------------------------------------------------
def _only_value_error(payload: Any) -> RawTweet | None:
    try:
        return parse_raw(payload)
    except ValueError as exc:
        assert str(exc), "a rejection must say why"
        return None


@hsettings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=2000))
def test_parse_raw_arbitrary_bytes(payload: bytes) -> None:
    _only_value_error(payload)


@hsettings(max_examples=200, deadline=None)
@given(value=JSON)
def test_parse_raw_arbitrary_json(value: Any) -> None:
    _only_value_error(json.dumps(value))
    if isinstance(value, dict):
        _only_value_error(value)


@hsettings(max_examples=200, deadline=None)
@given(field=st.sampled_from(sorted(valid_raw())), value=JSON)
def test_parse_raw_one_field_replaced(field: str, value: Any) -> None:
    """A valid message with one field set to anything: accepted only if that value is valid."""
    tweet = _only_value_error(json.dumps(valid_raw(**{field: value})))
    if tweet is not None:
        assert json.loads(tweet.to_json())["tweet_id"].isdigit()
        # What we publish, we accept again, and republishing it changes nothing (the wire format
        # is a fixed point; it keeps whole seconds of created_at, as X does).
        again = parse_raw(tweet.to_json())
        assert again.to_json() == tweet.to_json()
        assert again.model_dump(exclude={"created_at"}) == tweet.model_dump(exclude={"created_at"})


@hsettings(max_examples=150, deadline=None)
@given(text=st.text(TWEET_CHARS, min_size=1, max_size=1000))
def test_parse_raw_round_trips_any_text(text: str) -> None:
    tweet = _only_value_error(json.dumps(valid_raw(text=text)))
    if text.strip() and "\x00" not in text:  # NUL is rejected: PostgreSQL cannot store it
        assert tweet is not None and tweet.text == text
        assert parse_raw(tweet.to_json()).text == text


# --- reply API -----------------------------------------------------------------------------
API = "/api/v1"


@WITH_FIXTURES
@given(body=JSON)
def test_api_arbitrary_json_body_never_5xx(reply_client: Any, auth_headers: Any, body: Any) -> None:
    r = reply_client.post(f"{API}/replies", data=json.dumps(body), headers={**auth_headers, "Content-Type": "application/json"})
    assert r.status_code < 500 and r.is_json, r.get_data(as_text=True)[:300]
    assert r.status_code in (200, 400)


@WITH_FIXTURES
@given(field=st.sampled_from(["tweet_id", "text", "author_id", "author_handle", "created_at", "conversation_id",
                              "in_reply_to_tweet_id", "lang", "source", "matched_rules", "clean_text", "sentiment",
                              "sentiment_score", "topic", "topic_score", "entities", "model_version",
                              "processed_at", "needs_reply"]),
       value=JSON, n=st.integers(0, 10**12))
def test_api_one_field_replaced_never_5xx(reply_client: Any, auth_headers: Any, make_tweet: Any, field: str,
                                          value: Any, n: int) -> None:
    tweet = make_tweet(tweet_id=str(n), conversation_id=str(n))
    tweet[field] = value
    r = reply_client.post(f"{API}/replies", data=json.dumps(tweet), headers={**auth_headers, "Content-Type": "application/json"})
    assert r.status_code in (200, 400), (field, value, r.get_data(as_text=True)[:300])


@WITH_FIXTURES
@given(params=st.dictionaries(st.sampled_from(["status", "topic", "sentiment", "from", "to", "q", "page", "per_page"]),
                              st.text(TWEET_CHARS, max_size=40), max_size=5),
       ticket_id=st.text(TWEET_CHARS, min_size=1, max_size=60))
def test_api_and_dashboard_arbitrary_queries_never_5xx(agent_client: Any, auth_headers: Any, params: dict[str, str],
                                                       ticket_id: str) -> None:
    query = "&".join(f"{k}={quote(v)}" for k, v in params.items())
    for url in (f"{API}/tickets?{query}", f"/?{query}", f"/queues/unassigned?{query}"):
        r = agent_client.get(url, headers=auth_headers)
        assert r.status_code in (200, 400), (url, r.status_code)
    path = quote(ticket_id, safe="")
    # 400 only for a NUL in the path (refused up front: PostgreSQL cannot compare it).
    allowed = (400,) if "\x00" in ticket_id else (200, 404)
    for url in (f"{API}/tickets/{path}", f"/tickets/{path}"):
        assert agent_client.get(url, headers=auth_headers).status_code in allowed, url
    r = agent_client.patch(f"{API}/tickets/{path}", json={"status": "resolved"}, headers=auth_headers)
    assert r.status_code in allowed
