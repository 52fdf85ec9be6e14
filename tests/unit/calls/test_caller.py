"""The call path of one request (``ChunkCaller``) through a handler backend, with the real
limits, breaker, result cache and audit log: cache hits, single flight, retries, stops, the
audit line of each attempt and the answer kept as the checkpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dscall.calls.backend import Handler, HandlerBackend, status_error
from dscall.calls.breaker import CircuitBreaker
from dscall.calls.cache import ResultCache
from dscall.calls.caller import ChunkCaller, RequestContext
from dscall.calls.limits import CallLimits
from dscall.calls.router import one_endpoint
from dscall.config import RETRY_AFTER_JITTER
from dscall.errors import AuthenticationFailed, Interrupted, RunStopped, TransportError
from dscall.output.audit import AuditLog
from dscall.stats import RunStats
from dscall.types import CallRequest, CallResponse, Usage

ANSWER = CallResponse("the summary", "stop", "deepseek-flash", Usage(120, 30, 100, 20))
CONTEXT = RequestContext("reports/q3.pdf", 2)


def make_request(n: int = 0) -> CallRequest:
    return CallRequest(
        body=b'{"n":%d}' % n,
        request_hash=f"{n:064x}",
        model="deepseek-flash",
        estimated_prompt_tokens=120,
        max_tokens=64,
        stream=False,
    )


def scripted(*steps: CallResponse | Exception) -> Handler:
    """A handler answering each attempt with the next step: a response, or an error raised."""
    remaining = list(steps)

    def handler(request: CallRequest) -> CallResponse:
        step = remaining.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    return handler


@dataclass
class Rig:
    caller: ChunkCaller
    backend: HandlerBackend
    stats: RunStats
    delays: list[float]  # what the retry policy asked to wait, never waited for


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ResultCache]:
    with ResultCache(tmp_path / "cache", "default") as opened:
        yield opened


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, "run-1", "ann@host", "default", "handler.invalid") as log:
        yield log


@pytest.fixture
def rig(cache: ResultCache, audit: AuditLog) -> Callable[..., Rig]:
    def build(
        handler: Handler,
        max_retries: int = 3,
        stop_requested: Callable[[], RunStopped | None] = lambda: None,
        concurrency: int = 4,
    ) -> Rig:
        delays: list[float] = []

        async def sleep(delay: float) -> None:
            delays.append(delay)

        backend = HandlerBackend(handler)
        stats = RunStats()
        loop = asyncio.get_running_loop()
        caller = ChunkCaller(
            one_endpoint(backend, CallLimits(concurrency, concurrency), CircuitBreaker(loop.time)),
            stats,
            max_retries,
            cache=cache,
            audit=audit,
            stop_requested=stop_requested,
            sleep=sleep,
        )
        return Rig(caller, backend, stats, delays)

    return build


def audit_lines(audit: AuditLog) -> list[dict[str, Any]]:
    audit.flush()
    return [json.loads(line) for line in audit.path.read_text().splitlines()]


async def test_a_cache_hit_is_the_cached_outcome_without_an_attempt(
    rig: Callable[..., Rig], cache: ResultCache, audit: AuditLog
) -> None:
    cache.put(make_request().request_hash, ANSWER)
    r = rig(scripted())  # any send would fail: the script is empty
    for outcome in (r.caller.cached(make_request()), await r.caller.call(make_request(), CONTEXT)):
        assert outcome is not None
        assert outcome.response == ANSWER
        assert outcome.cached is True
        assert outcome.attempts == 0
    assert r.backend.requests == []
    assert r.stats.requests_sent == 0
    assert audit_lines(audit) == []  # the audit log records attempts; there were none
    assert r.caller.cached(make_request(1)) is None


async def test_identical_requests_in_flight_are_sent_once(rig: Callable[..., Rig]) -> None:
    release = asyncio.Event()

    async def handler(request: CallRequest) -> CallResponse:
        await release.wait()
        return ANSWER

    r = rig(handler)
    request = make_request()
    leader = r.caller.claim(request)
    leading = asyncio.ensure_future(r.caller.call(request, CONTEXT, leader))
    assert r.caller.in_flight(make_request()) is leader  # identical request, same key
    following = asyncio.ensure_future(r.caller.follow(leader))
    await asyncio.sleep(0.01)
    assert not following.done()
    release.set()
    first, second = await asyncio.gather(leading, following)
    assert len(r.backend.requests) == 1
    assert (first.response, first.cached, first.attempts) == (ANSWER, False, 1)
    assert (second.response, second.cached, second.attempts) == (ANSWER, True, 0)
    assert r.caller.in_flight(request) is None


async def test_a_follower_of_a_failed_call_gets_its_error_uncached(rig: Callable[..., Rig]) -> None:
    r = rig(scripted(status_error(400, "bad request")))
    request = make_request()
    leader = r.caller.claim(request)
    following = asyncio.ensure_future(r.caller.follow(leader))
    first = await r.caller.call(request, CONTEXT, leader)
    second = await following
    assert len(r.backend.requests) == 1
    assert (second.error_type, second.error_message) == (first.error_type, first.error_message)
    assert (second.response, second.cached, second.attempts) == (None, False, 0)


async def test_a_retryable_error_is_retried(rig: Callable[..., Rig]) -> None:
    r = rig(scripted(TransportError("connection reset"), ANSWER))
    outcome = await r.caller.call(make_request(), CONTEXT)
    assert outcome.response == ANSWER
    assert outcome.error_type is None
    assert outcome.attempts == 2
    assert r.stats.retries == 1
    assert r.stats.requests_sent == 2
    assert len(r.backend.requests) == 2
    assert len(r.delays) == 1


async def test_retries_stop_at_max_retries_with_the_last_error(rig: Callable[..., Rig]) -> None:
    r = rig(scripted(*(TransportError(f"reset {i}") for i in range(3))), max_retries=2)
    outcome = await r.caller.call(make_request(), CONTEXT)
    assert outcome.response is None
    assert (outcome.error_type, outcome.error_message) == ("TransportError", "reset 2")
    assert outcome.attempts == 3
    assert r.stats.retries == 2


async def test_a_permanent_error_is_an_error_outcome_without_retry(
    rig: Callable[..., Rig], cache: ResultCache
) -> None:
    r = rig(scripted(status_error(400, "context too long")))
    outcome = await r.caller.call(make_request(), CONTEXT)
    assert outcome.response is None
    assert outcome.error_type == "PermanentCallError"
    assert outcome.error_message == "HTTP 400: context too long"
    assert outcome.attempts == 1
    assert outcome.cached is False
    assert r.stats.retries == 0
    assert r.delays == []
    assert r.stats.status_counts == {400: 1}
    assert cache.get(make_request().request_hash) is None


async def test_a_429_is_throttled_and_retried_after_its_hint(rig: Callable[..., Rig]) -> None:
    r = rig(scripted(status_error(429, "slow down", retry_after=0.25), ANSWER))
    outcome = await r.caller.call(make_request(), CONTEXT)
    assert outcome.response == ANSWER
    assert outcome.attempts == 2
    assert r.stats.throttled == 1
    assert r.stats.retries == 1
    assert r.stats.status_counts == {429: 1, 200: 1}
    assert len(r.delays) == 1
    assert 0.25 <= r.delays[0] <= 0.25 * (1 + RETRY_AFTER_JITTER)


async def test_a_run_stop_propagates_to_the_caller_and_its_followers(
    rig: Callable[..., Rig], cache: ResultCache
) -> None:
    r = rig(scripted(status_error(401, "invalid key")))
    request = make_request()
    leader = r.caller.claim(request)
    following = asyncio.ensure_future(r.caller.follow(leader))
    with pytest.raises(AuthenticationFailed) as stopped:
        await r.caller.call(request, CONTEXT, leader)
    with pytest.raises(AuthenticationFailed) as followed:
        await following
    assert followed.value is stopped.value
    assert "HTTP 401: invalid key" in stopped.value.message
    assert len(r.backend.requests) == 1  # not retried
    assert r.caller.in_flight(request) is None
    # The lease went back with the stop: the next run may send the request.
    assert await cache.acquire(request.request_hash) is None


async def test_a_stop_requested_before_the_attempt_sends_nothing(rig: Callable[..., Rig]) -> None:
    stop = Interrupted("interrupted by SIGINT")
    r = rig(scripted(ANSWER), stop_requested=lambda: stop)
    with pytest.raises(Interrupted) as raised:
        await r.caller.call(make_request(), CONTEXT)
    assert raised.value is stop
    assert r.backend.requests == []
    assert r.stats.requests_sent == 0


async def test_a_stop_requested_between_attempts_ends_the_retries(
    rig: Callable[..., Rig],
) -> None:
    stops: list[RunStopped] = []

    def handler(request: CallRequest) -> CallResponse:
        stops.append(Interrupted("interrupted by SIGTERM"))
        raise TransportError("connection reset")

    r = rig(handler, stop_requested=lambda: stops[0] if stops else None)
    with pytest.raises(Interrupted):
        await r.caller.call(make_request(), CONTEXT)
    assert len(r.backend.requests) == 1


async def test_a_stop_while_waiting_for_a_slot_sends_nothing(rig: Callable[..., Rig]) -> None:
    release = asyncio.Event()
    stops: list[RunStopped] = []

    async def handler(request: CallRequest) -> CallResponse:
        await release.wait()
        return ANSWER

    r = rig(handler, stop_requested=lambda: stops[0] if stops else None, concurrency=1)
    first = asyncio.ensure_future(r.caller.call(make_request(1), CONTEXT))
    second = asyncio.ensure_future(r.caller.call(make_request(2), CONTEXT))
    await asyncio.sleep(0.01)
    assert r.backend.requests == [make_request(1)]
    stops.append(Interrupted("interrupted by SIGINT"))
    release.set()
    assert (await first).response == ANSWER  # already on the wire: allowed to finish
    with pytest.raises(Interrupted):
        await second
    assert len(r.backend.requests) == 1


async def test_every_attempt_writes_an_audit_line(rig: Callable[..., Rig], audit: AuditLog) -> None:
    r = rig(scripted(TransportError("connection reset"), status_error(503, "busy", 0.01), ANSWER))
    request = make_request(7)
    await r.caller.call(request, RequestContext("docs/a b.docx", 4))
    lines = audit_lines(audit)
    assert [(line["attempt"], line["status"], line["error_type"]) for line in lines] == [
        (1, None, "TransportError"),
        (2, 503, "HTTPStatusError"),
        (3, 200, None),
    ]
    for line in lines:
        assert line["request_hash"] == request.request_hash
        assert (line["doc_path"], line["chunk_index"]) == ("docs/a b.docx", 4)
        assert (line["model"], line["endpoint_host"], line["run_id"]) == (
            "deepseek-flash",
            "handler.invalid",
            "run-1",
        )
        assert line["cached"] is False
    assert [(line["prompt_tokens"], line["completion_tokens"]) for line in lines] == [
        (0, 0),
        (0, 0),
        (120, 30),
    ]


async def test_the_answer_is_in_the_cache_once_the_call_returns(
    rig: Callable[..., Rig], tmp_path: Path
) -> None:
    r = rig(scripted(ANSWER))
    request = make_request(3)
    outcome = await r.caller.call(request, CONTEXT)
    assert outcome.cached is False
    # Another process opening the same cache sees it (committed, not only pending here).
    await asyncio.sleep(0)
    with ResultCache(tmp_path / "cache", "default") as other:
        assert other.get(request.request_hash) == ANSWER
    again = await r.caller.call(request, CONTEXT)
    assert (again.response, again.cached, again.attempts) == (ANSWER, True, 0)
    assert len(r.backend.requests) == 1
