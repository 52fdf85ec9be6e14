"""Retry policy: which answers are worth another attempt, and how long to wait before it.

The rules are pure functions (status -> kind, header -> seconds, exception -> bool,
attempt -> delay) so they can be tested with tables; ``build_retrying`` wires them into one
tenacity ``AsyncRetrying``. Following openai-python (``_should_retry``,
``_calculate_retry_timeout``), with two differences: a ``Retry-After`` is never shortened
below what the server asked (up to a cap), and backoff uses full jitter (AWS architecture
blog, "Exponential Backoff And Jitter") because hundreds of chunks fail together when an
endpoint hiccups, and they must not come back together.

Status policy (``classify_status``):

    2xx                     ok
    401                     auth       stop the run: every later request fails the same way
    402                     balance    stop the run: insufficient balance
    408 409 429             retry      timeout, conflict/lock, throttled
    5xx except 501 505      retry      includes the CDN-style 520-524 some hosts put in front
    501 505, other 4xx, 1xx/3xx  permanent  resending the same request cannot change them
"""

from __future__ import annotations

import asyncio
import math
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Literal, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from dscall.config import BACKOFF_BASE_S, BACKOFF_MAX_S, RETRY_AFTER_CAP_S, RETRY_AFTER_JITTER
from dscall.errors import RetryableCallError

StatusKind = Literal["ok", "retry", "permanent", "auth", "balance"]
T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 409, 429})
# 501 Not Implemented and 505 HTTP Version Not Supported describe the request, not the
# server's health: the same request gets the same answer.
PERMANENT_5XX = frozenset({501, 505})

# RFC 9110 delay-seconds is an integer; DeepSeek/OpenAI-style servers also send "1.5".
_DELTA_SECONDS = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*")
# Past this, 2 ** n only overflows; the backoff is capped at BACKOFF_MAX_S long before.
_MAX_EXPONENT = 60


def classify_status(status: int) -> StatusKind:
    """What to do about an HTTP status (see the module docstring for the table)."""
    if 200 <= status < 300:
        return "ok"
    if status == 401:
        return "auth"
    if status == 402:
        return "balance"
    if status in RETRY_STATUSES or (500 <= status < 600 and status not in PERMANENT_5XX):
        return "retry"
    return "permanent"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds (fractions accepted) or an
    HTTP-date, relative to ``now`` (epoch seconds). Missing, garbage, negative, non-finite or
    a date already past -> None (the caller falls back to backoff)."""
    if not value:
        return None
    match = _DELTA_SECONDS.fullmatch(value)
    if match is not None:
        seconds = float(match.group(1))
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" parses naive; HTTP-dates are always GMT
        when = when.replace(tzinfo=timezone.utc)
    delay = when.timestamp() - now
    return delay if delay >= 0 else None


def parse_retry_after_ms(value: str | None) -> float | None:
    """Seconds from a ``retry-after-ms`` value (milliseconds, as OpenAI-style servers send)."""
    if not value:
        return None
    match = _DELTA_SECONDS.fullmatch(value)
    if match is None:
        return None
    seconds = float(match.group(1)) / 1000.0
    return seconds if math.isfinite(seconds) else None


def retry_after_from_headers(headers: Mapping[str, str], now: float) -> float | None:
    """The server's hint from response headers: ``retry-after-ms`` (more precise) first, then
    ``Retry-After``. aiohttp's headers are case-insensitive; a plain dict is tried in the two
    usual spellings."""
    ms = headers.get("retry-after-ms") or headers.get("Retry-After-Ms")
    hint = parse_retry_after_ms(ms)
    if hint is not None:
        return hint
    return parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"), now)


def should_retry(exc: BaseException) -> bool:
    """Only transient call failures are retried. Permanent ones, run-stopping ones (401, 402,
    outage, budget, interrupt), document errors and cancellation are not."""
    return isinstance(exc, RetryableCallError)


def retry_delay(attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Seconds to sleep after failed attempt number ``attempt`` (1-based).

    With a server hint: at least the hint (capped at RETRY_AFTER_CAP_S), stretched by up to
    RETRY_AFTER_JITTER so a throttled crowd spreads out. Without: full jitter,
    uniform(0, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1))).
    """
    # A hint of 0 ("retry now") in a 429 storm would turn into a hot loop: back off instead.
    if retry_after is not None and retry_after > 0:
        if retry_after >= RETRY_AFTER_CAP_S:
            return RETRY_AFTER_CAP_S
        stretched = retry_after * (1.0 + rng.uniform(0.0, RETRY_AFTER_JITTER))
        return min(stretched, RETRY_AFTER_CAP_S)
    exponent = min(max(attempt, 1) - 1, _MAX_EXPONENT)
    return rng.uniform(0.0, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**exponent))


BeforeSleep = Callable[[RetryCallState], "Awaitable[None] | None"]


def build_retrying(
    max_retries: int,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
    before_sleep: BeforeSleep | None = None,
) -> AsyncRetrying:
    """A tenacity controller: at most ``max_retries + 1`` attempts, retrying only what
    ``should_retry`` accepts, waiting ``retry_delay`` (honouring the error's ``retry_after``).
    The last error is re-raised as itself, never wrapped in ``tenacity.RetryError``.

    The returned object holds per-call state: use ``.copy()`` for each call, since tasks that
    share one instance on one thread share its state.
    """
    jitter = rng if rng is not None else random.Random()

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        hint = getattr(exc, "retry_after", None)
        return retry_delay(state.attempt_number, hint, jitter)

    return AsyncRetrying(
        sleep=sleep,
        stop=stop_after_attempt(max(max_retries, 0) + 1),
        retry=retry_if_exception(should_retry),
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )


async def call_with_retries(retrying: AsyncRetrying, operation: Callable[[], Awaitable[T]]) -> T:
    """``await operation()`` under the policy of ``retrying`` (from ``build_retrying``).

    tenacity costs about 60 us of CPU per call even when the first attempt succeeds (it wraps
    every action with ``inspect`` checks on each iteration), which is a large share of the
    engine's per-request budget. So the first attempt runs bare, and tenacity is entered only
    after a retryable failure, by replaying that failure as its attempt 1: waits, stop rule,
    ``before_sleep`` and the re-raised error are exactly those of ``async for attempt in
    retrying.copy()``, and the policy still lives in one place.
    """
    try:
        return await operation()
    except RetryableCallError as exc:
        first: BaseException | None = exc

    async def replaying() -> T:
        nonlocal first
        if first is not None:
            failed, first = first, None
            raise failed
        return await operation()

    return await retrying.copy()(replaying)
