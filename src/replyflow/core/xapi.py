"""The one X API v2 client module (tweepy 4.17), used by ingest (stream, mentions) and the sender.

What lives here is what every caller of X needs alike: building an authenticated
``tweepy`` client (optionally pointed at another base URL: a local fake X API in end-to-end
tests), and the one retry policy for X calls: after a 429 wait until ``x-rate-limit-reset``,
after a 5xx or a network error back off exponentially (2, 4, 8 ... 60 s).  Time is injected
(``sleep``, ``clock``) so tests assert the exact waits without waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
import tweepy
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from replyflow.settings import Settings

log = logging.getLogger(__name__)

X_API_HOST = "https://api.twitter.com"
#: Failures worth retrying: rate limit, X server errors, the network.
RETRYABLE = (tweepy.TooManyRequests, tweepy.TwitterServerError, requests.ConnectionError, requests.Timeout)
MAX_BACKOFF_SECONDS = 60.0


class XApiConfigError(RuntimeError):
    """The X API cannot be used as configured (missing token, user id or credentials)."""


def rate_limit_wait(headers: Mapping[str, str] | None, now: float, minimum: float = 1.0, default: float = 60.0) -> float:
    """Seconds to wait after a 429: until ``x-rate-limit-reset`` (epoch seconds) plus 1 s slack."""
    reset = (headers or {}).get("x-rate-limit-reset")
    if reset is None:
        return default
    try:
        return max(minimum, float(reset) - now + 1.0)
    except ValueError:
        return default


def backoff_seconds(exc: BaseException | None, attempt: int, now: float) -> float:
    """The wait before retry number ``attempt`` (1-based) after ``exc``."""
    if isinstance(exc, tweepy.TooManyRequests):
        response = getattr(exc, "response", None)
        return rate_limit_wait(response.headers if response is not None else None, now)
    return min(MAX_BACKOFF_SECONDS, 2.0**attempt)


def retrying(
    attempts: int,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    on_wait: Callable[[float], None] | None = None,
    on_rate_limit: Callable[[float], None] | None = None,
    what: str = "X API call",
) -> Retrying:
    """A tenacity ``Retrying`` with the X retry policy; ``on_wait`` is told every wait, ``on_rate_limit``
    every wait after a 429 (counters)."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        seconds = backoff_seconds(exc, state.attempt_number, clock())
        if on_wait is not None:
            on_wait(seconds)
        if on_rate_limit is not None and isinstance(exc, tweepy.TooManyRequests):
            on_rate_limit(seconds)
        log.warning("%s failed (%s); retrying in %.1f s", what, describe_error(exc) if exc else "?", seconds)
        return seconds

    return Retrying(
        retry=retry_if_exception_type(RETRYABLE),
        wait=wait,
        stop=stop_after_attempt(max(1, attempts)),
        sleep=sleep,
        reraise=True,
    )


def describe_error(exc: BaseException) -> str:
    """One line about a failed X call, with X's ``detail`` when the response carries one (<= 500 chars)."""
    text = str(exc).strip().replace("\n", " ")
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            detail = response.json().get("detail")
        except Exception:  # noqa: BLE001 - best effort: not every error body is JSON
            detail = None
        if detail and str(detail) not in text:
            text = f"{text} {detail}".strip()
    return text[:500]


class RebaseAdapter(HTTPAdapter):
    """Sends tweepy's hard-coded ``https://api.twitter.com`` requests to another base URL."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if request.url and request.url.startswith(X_API_HOST):
            request.url = self.base_url + request.url[len(X_API_HOST):]
        return super().send(request, **kwargs)


def point_at_base_url(session: requests.Session, settings: Settings) -> None:
    """Route a tweepy client's session to ``settings.x_api_base_url`` when it is not X itself."""
    if settings.x_api_base_url.rstrip("/") != X_API_HOST:
        session.mount(X_API_HOST, RebaseAdapter(settings.x_api_base_url))


def bearer_token(settings: Settings) -> str:
    """The app's bearer token (filtered stream, mentions); a clear error when it is missing."""
    token = settings.secret("x_bearer_token")
    if not token:
        raise XApiConfigError("X bearer token missing: set REPLYFLOW_X_BEARER_TOKEN (or X_BEARER_TOKEN), see docs/X_API.md")
    return token


def app_client(settings: Settings) -> tweepy.Client:
    """A client authenticated as the app (bearer token): reading mentions and users.

    ``wait_on_rate_limit`` is off: we wait ourselves, testably (:func:`retrying`)."""
    client = tweepy.Client(bearer_token=bearer_token(settings), wait_on_rate_limit=False)
    point_at_base_url(client.session, settings)
    return client


def user_client(settings: Settings) -> tweepy.Client:
    """A client authenticated as the support account (OAuth 1.0a user context): posting replies."""
    keys = {
        "consumer_key": settings.secret("x_api_key"),
        "consumer_secret": settings.secret("x_api_secret"),
        "access_token": settings.secret("x_access_token"),
        "access_token_secret": settings.secret("x_access_token_secret"),
    }
    missing = [k for k, v in keys.items() if not v]
    if missing:
        raise XApiConfigError(
            f"live sending needs X user credentials; missing: {', '.join(missing)} (or set REPLYFLOW_DRY_RUN=true)"
        )
    client = tweepy.Client(**keys, wait_on_rate_limit=False)
    point_at_base_url(client.session, settings)
    return client
