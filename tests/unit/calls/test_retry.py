from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest
from tenacity import RetryCallState

from dscall.calls.retry import (
    build_retrying,
    call_with_retries,
    classify_status,
    parse_retry_after,
    parse_retry_after_ms,
    retry_after_from_headers,
    retry_delay,
    should_retry,
)
from dscall.config import BACKOFF_BASE_S, BACKOFF_MAX_S, RETRY_AFTER_CAP_S, RETRY_AFTER_JITTER
from dscall.errors import (
    AttemptTimeout,
    AuthenticationFailed,
    BudgetExhausted,
    CorruptDocument,
    EmptyResponse,
    EndpointDown,
    HTTPStatusError,
    InsufficientBalance,
    InsufficientResources,
    Interrupted,
    MalformedResponse,
    PermanentCallError,
    TransportError,
)

NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, "ok"),
        (204, "ok"),
        (400, "permanent"),
        (401, "auth"),
        (402, "balance"),
        (403, "permanent"),
        (404, "permanent"),
        (408, "retry"),
        (409, "retry"),
        (413, "permanent"),
        (422, "permanent"),
        (429, "retry"),
        (500, "retry"),
        (501, "permanent"),
        (502, "retry"),
        (503, "retry"),
        (504, "retry"),
        (505, "permanent"),
        (520, "retry"),
        (524, "retry"),
        (301, "permanent"),
        (100, "permanent"),
    ],
)
def test_classify_status(status: int, kind: str) -> None:
    assert classify_status(status) == kind


def _http_date(offset_s: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset_s, tz=timezone.utc), usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("0", 0.0),
        ("5", 5.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        (".25", 0.25),
        ("-1", None),
        ("-0.5", None),
        ("abc", None),
        ("nan", None),
        ("inf", None),
        ("1e3", None),
        ("1_000", None),
        ("9" * 400, None),  # would parse to float('inf')
        (_http_date(30), 30.0),
        (_http_date(0), 0.0),
        (_http_date(-30), None),  # already past: fall back to backoff
        ("Fri, 20 Nov 2026 12:01:00 -0000", 60.0),  # parses naive: still GMT
        ("Fri, 99 Foo 2026 12:00:00 GMT", None),
        ("Fri, 20 Nov", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    result = parse_retry_after(value, NOW)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("1500", 1.5), ("250.5", 0.2505), ("-3", None), ("x", None)],
)
def test_parse_retry_after_ms(value: str | None, expected: float | None) -> None:
    assert parse_retry_after_ms(value) == (pytest.approx(expected) if expected else expected)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "4"}, 4.0),
        ({"retry-after-ms": "1200", "Retry-After": "2"}, 1.2),  # the precise one wins
        ({"retry-after-ms": "junk", "Retry-After": "2"}, 2.0),
        ({"Retry-After": "soon"}, None),
    ],
)
def test_retry_after_from_headers(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_from_headers(headers, NOW) == expected


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (HTTPStatusError(429, "slow down"), True),
        (HTTPStatusError(503, "busy", retry_after=2.0), True),
        (TransportError("connection reset"), True),
        (AttemptTimeout("deadline"), True),
        (EmptyResponse("empty body"), True),
        (MalformedResponse("not JSON"), True),
        (InsufficientResources("insufficient_system_resource"), True),
        (PermanentCallError(400, "bad request"), False),
        (PermanentCallError(422, "unprocessable"), False),
        (AuthenticationFailed("401"), False),
        (InsufficientBalance("402"), False),
        (EndpointDown("down"), False),
        (BudgetExhausted("budget"), False),
        (Interrupted("SIGINT"), False),
        (CorruptDocument("bad pdf"), False),
        (asyncio.CancelledError(), False),
        (ValueError("a bug"), False),
        (KeyboardInterrupt(), False),
    ],
)
def test_should_retry(exc: BaseException, expected: bool) -> None:
    assert should_retry(exc) is expected


class _FixedRng(random.Random):
    """uniform() returns the given fraction of its range: pins jitter to an edge."""

    def __init__(self, fraction: float) -> None:
        super().__init__(0)
        self.fraction = fraction

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.fraction


@pytest.mark.parametrize(
    ("attempt", "retry_after", "fraction", "expected"),
    [
        # full jitter: the top of the range doubles per attempt up to BACKOFF_MAX_S
        (1, None, 1.0, BACKOFF_BASE_S),
        (2, None, 1.0, BACKOFF_BASE_S * 2),
        (3, None, 1.0, BACKOFF_BASE_S * 4),
        (30, None, 1.0, BACKOFF_MAX_S),
        (10_000, None, 1.0, BACKOFF_MAX_S),  # no overflow
        (0, None, 1.0, BACKOFF_BASE_S),  # nonsense attempt numbers count as the first
        (1, None, 0.0, 0.0),
        (5, None, 0.5, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 16) / 2),
        # Retry-After: honoured, never shortened, stretched by at most RETRY_AFTER_JITTER
        (1, 3.0, 0.0, 3.0),
        (1, 3.0, 1.0, 3.0 * (1 + RETRY_AFTER_JITTER)),
        (6, 0.0, 1.0, BACKOFF_BASE_S * 32),  # "retry now" is no excuse for a hot loop
        (1, RETRY_AFTER_CAP_S - 1, 1.0, RETRY_AFTER_CAP_S),  # stretch stops at the cap
        (1, RETRY_AFTER_CAP_S * 10, 0.0, RETRY_AFTER_CAP_S),
        (1, -5.0, 1.0, BACKOFF_BASE_S),  # a negative hint is no hint
    ],
)
def test_retry_delay(
    attempt: int, retry_after: float | None, fraction: float, expected: float
) -> None:
    assert retry_delay(attempt, retry_after, _FixedRng(fraction)) == pytest.approx(expected)


def test_retry_delay_random_bounds() -> None:
    rng = random.Random(42)
    for attempt in range(1, 12):
        top = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
        delays = [retry_delay(attempt, None, rng) for _ in range(200)]
        assert all(0.0 <= d <= top for d in delays)
        assert max(delays) > top / 2  # really spread over the range, not pinned low
        hinted = [retry_delay(attempt, 2.0, rng) for _ in range(50)]
        assert all(2.0 <= d <= 2.0 * (1 + RETRY_AFTER_JITTER) for d in hinted)


class _Flaky:
    """Fails with the given errors in turn, then answers "ok"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class _Recorder:
    def __init__(self) -> None:
        self.delays: list[float] = []
        self.before_sleep_attempts: list[int] = []

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)

    def before_sleep(self, state: RetryCallState) -> None:
        self.before_sleep_attempts.append(state.attempt_number)


async def _run_async_for(retrying_op: _Flaky, max_retries: int, rec: _Recorder) -> str:
    retrying = build_retrying(
        max_retries, sleep=rec.sleep, rng=_FixedRng(1.0), before_sleep=rec.before_sleep
    )
    result = ""
    async for attempt in retrying.copy():
        with attempt:
            result = await retrying_op()
    return result


async def _run_fast_path(retrying_op: _Flaky, max_retries: int, rec: _Recorder) -> str:
    retrying = build_retrying(
        max_retries, sleep=rec.sleep, rng=_FixedRng(1.0), before_sleep=rec.before_sleep
    )
    return await call_with_retries(retrying, retrying_op)


Runner = Callable[[_Flaky, int, _Recorder], Awaitable[str]]
RUNNERS: list[Runner] = [_run_async_for, _run_fast_path]


@pytest.mark.parametrize("run", RUNNERS)
async def test_wiring_fails_then_succeeds(run: Runner) -> None:
    rec = _Recorder()
    op = _Flaky(
        TransportError("reset"),
        HTTPStatusError(429, "slow", retry_after=7.0),
        EmptyResponse("empty"),
    )
    assert await run(op, 6, rec) == "ok"
    assert op.calls == 4
    # backoff for attempt 1, the server's 7 s (stretched at most 10%), backoff for attempt 3
    assert rec.delays == pytest.approx(
        [BACKOFF_BASE_S, 7.0 * (1 + RETRY_AFTER_JITTER), BACKOFF_BASE_S * 4]
    )
    assert rec.before_sleep_attempts == [1, 2, 3]


@pytest.mark.parametrize("run", RUNNERS)
async def test_wiring_gives_up_with_the_last_error(run: Runner) -> None:
    rec = _Recorder()
    errors = [HTTPStatusError(503, f"busy {i}") for i in range(5)]
    op = _Flaky(*errors)
    with pytest.raises(HTTPStatusError) as info:
        await run(op, 2, rec)
    assert info.value is errors[2]  # the third attempt's error, not a tenacity.RetryError
    assert op.calls == 3
    assert len(rec.delays) == 2


@pytest.mark.parametrize("run", RUNNERS)
@pytest.mark.parametrize(
    "error",
    [PermanentCallError(400, "bad"), AuthenticationFailed("401"), ValueError("bug")],
)
async def test_wiring_does_not_retry_non_retryable(run: Runner, error: BaseException) -> None:
    rec = _Recorder()
    op = _Flaky(error)
    with pytest.raises(type(error)):
        await run(op, 6, rec)
    assert op.calls == 1
    assert rec.delays == []


@pytest.mark.parametrize("run", RUNNERS)
async def test_wiring_zero_retries(run: Runner) -> None:
    rec = _Recorder()
    op = _Flaky(TransportError("reset"))
    with pytest.raises(TransportError):
        await run(op, 0, rec)
    assert op.calls == 1
    assert rec.delays == []


async def test_one_retrying_serves_concurrent_calls_through_copy() -> None:
    rec = _Recorder()
    retrying = build_retrying(3, sleep=rec.sleep, rng=_FixedRng(0.0))
    ops = [_Flaky(*[TransportError("x")] * i) for i in range(4)]
    results = await asyncio.gather(*(call_with_retries(retrying, op) for op in ops))
    assert results == ["ok"] * 4
    assert [op.calls for op in ops] == [1, 2, 3, 4]
