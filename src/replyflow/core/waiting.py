"""The one wait-until-deadline helper: poll a condition until it holds or time runs out.

Services, the Kafka broker, topic leaders and the stream's graceful stop all wait for
something; they all use :func:`wait_until` (tenacity underneath) instead of a loop each.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from tenacity import RetryError, Retrying, retry_if_result, stop_after_attempt, stop_after_delay, wait_fixed


class WaitTimeout(TimeoutError):
    """The condition did not hold within the time allowed."""


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    *,
    interval: float = 0.2,
    what: str = "condition",
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Call ``condition()`` every ``interval`` seconds until it returns True.

    Raises :class:`WaitTimeout` after ``timeout`` seconds.  ``condition`` may raise to give up
    early (a dead process will never answer): the exception propagates unchanged.  The attempt
    bound (``timeout / interval`` polls) ends the wait also when ``sleep`` is a test's fake that
    lets no real time pass.
    """
    retrying = Retrying(
        retry=retry_if_result(lambda ok: not ok),
        stop=stop_after_delay(timeout) | stop_after_attempt(max(1, math.ceil(timeout / interval)) + 1),
        wait=wait_fixed(interval),
        sleep=sleep,
    )
    try:
        retrying(condition)
    except RetryError:
        raise WaitTimeout(f"{what} not reached within {timeout:g} s") from None
