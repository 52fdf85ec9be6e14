"""The router through the real caller, limits and breakers, with handler backends standing in
for endpoints: weights, retries elsewhere, fallbacks, disabled endpoints, cache groups."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from dscall.calls.backend import Handler, HandlerBackend, status_error
from dscall.calls.breaker import CircuitBreaker
from dscall.calls.cache import ResultCache
from dscall.calls.caller import ChunkCaller, RequestContext
from dscall.calls.endpoints import Endpoint, body_rewrite
from dscall.calls.limits import CallLimits
from dscall.calls.router import Router
from dscall.errors import NoEndpointLeft, TransportError
from dscall.jsonio import loads
from dscall.stats import RunStats
from dscall.types import CallRequest, CallResponse, Usage

ANSWER = CallResponse("ok", "stop", "deepseek-flash", Usage(10, 5, 0, 10))
CONTEXT = RequestContext("a.txt", 0)


def request(n: int, others: tuple[str, ...] = ()) -> CallRequest:
    return CallRequest(
        body=b'{"model":"deepseek-flash","n":%d,"thinking":{"type":"disabled"}}' % n,
        request_hash=f"{n:064x}",
        model="deepseek-flash",
        estimated_prompt_tokens=10,
        max_tokens=5,
        stream=False,
        other_hashes=others,
    )


def answering(_: CallRequest) -> CallResponse:
    return ANSWER


def endpoint(
    name: str,
    handler: Handler = answering,
    *,
    weight: float = 1.0,
    priority: str = "primary",
    limit: int = 8,
    source: int = 0,
) -> Endpoint:
    breaker = CircuitBreaker(asyncio.get_running_loop().time, consecutive_failures=2)
    return Endpoint(
        name,
        HandlerBackend(handler, host=f"{name}.invalid"),
        CallLimits(limit, limit),
        breaker,
        priority=priority,
        weight=weight,
        source_index=source,
    )


async def no_wait(_: float) -> None:
    await asyncio.sleep(0)


def caller(endpoints: list[Endpoint], cache: ResultCache | None = None) -> ChunkCaller:
    return ChunkCaller(Router(endpoints), RunStats(), max_retries=3, cache=cache, sleep=no_wait)


def sent(e: Endpoint) -> int:
    backend = e.backend
    assert isinstance(backend, HandlerBackend)
    return len(backend.requests)


async def test_calls_split_by_weight_one_at_a_time() -> None:
    a, b = endpoint("a", weight=3), endpoint("b", weight=1)
    call = caller([a, b])
    for n in range(400):
        outcome = await call.call(request(n), CONTEXT)
        assert outcome.endpoint in ("a", "b")
    assert (sent(a), sent(b)) == (300, 100)


async def test_calls_split_by_weight_concurrently() -> None:
    a, b = endpoint("a", weight=1, limit=4), endpoint("b", weight=1, limit=4)
    call = caller([a, b])
    outcomes = await asyncio.gather(*(call.call(request(n), CONTEXT) for n in range(200)))
    assert all(o.response is not None for o in outcomes)
    assert (sent(a), sent(b)) == (100, 100)


async def test_a_retry_goes_to_another_endpoint() -> None:
    def refused(_: CallRequest) -> CallResponse:
        raise TransportError("connection refused")

    a, b = endpoint("a", refused), endpoint("b")
    outcome = await caller([a, b]).call(request(1), CONTEXT)
    assert outcome.response is not None
    assert outcome.endpoint == "b"
    assert outcome.attempts == sent(a) + sent(b)
    assert sent(b) == 1


async def test_fallback_only_while_no_primary_can_take_calls() -> None:
    failing = {"on": False}

    def primary_handler(_: CallRequest) -> CallResponse:
        if failing["on"]:
            raise TransportError("down")
        return ANSWER

    main = endpoint("main", primary_handler)
    spare = endpoint("spare", priority="fallback")
    call = caller([main, spare])
    for n in range(20):
        await call.call(request(n), CONTEXT)
    assert (sent(main), sent(spare)) == (20, 0)
    failing["on"] = True
    outcomes = [await call.call(request(100 + n), CONTEXT) for n in range(10)]
    assert all(o.response is not None for o in outcomes)
    assert main.breaker.state != "closed"
    assert sent(spare) == 10  # every call answered there once the primary's breaker opened


async def test_401_disables_one_endpoint_and_its_call_goes_elsewhere() -> None:
    def unauthorised(_: CallRequest) -> CallResponse:
        raise status_error(401, "Authentication Fails")

    lines: list[str] = []
    a, b = endpoint("a", unauthorised), endpoint("b")
    router = Router([a, b], lines.append)
    call = ChunkCaller(router, RunStats(), max_retries=0, sleep=no_wait)
    outcomes = [await call.call(request(n), CONTEXT) for n in range(10)]
    assert all(o.endpoint == "b" and o.response is not None for o in outcomes)
    assert sent(a) == 1  # disabled at its first 401, not asked again
    assert a.disabled is not None
    assert lines == [
        "endpoint a disabled: its API key was rejected (HTTP 401); check DEEPSEEK_API_KEY; "
        "going on with b"
    ]


async def test_every_endpoint_disabled_stops_the_run() -> None:
    def unauthorised(_: CallRequest) -> CallResponse:
        raise status_error(401, "Authentication Fails")

    call = caller([endpoint("a", unauthorised), endpoint("b", unauthorised)])
    with pytest.raises(NoEndpointLeft, match="every endpoint is disabled"):
        await call.call(request(1), CONTEXT)


async def test_answers_are_stored_under_the_answering_endpoints_group(tmp_path: Path) -> None:
    with ResultCache(tmp_path / "cache", "default") as cache:
        only_b = endpoint("b", source=1)
        refused: Callable[[CallRequest], CallResponse] = _refuse
        first = caller([endpoint("a", refused, limit=1), only_b], cache)
        req = request(7, others=("f" * 64,))
        outcome = await first.call(req, CONTEXT)
        assert outcome.endpoint == "b"
        cache.flush()
        assert cache.get("f" * 64) is not None  # b's group
        assert cache.get(req.request_hash) is None  # never a's
        again = caller([endpoint("a"), endpoint("b", source=1)], cache).cached(req)
        assert again is not None
        assert again.endpoint == "b"


def _refuse(_: CallRequest) -> CallResponse:
    raise TransportError("connection refused")


def test_body_rewrite_renames_the_model_and_drops_thinking() -> None:
    rewrite = body_rewrite("deepseek-flash", "ds-local", False, True, thinking_on=False)
    assert rewrite is not None
    body = loads(rewrite(request(3)).body)
    assert body == {"model": "ds-local", "n": 3}
    assert body_rewrite("deepseek-flash", None, True, True, thinking_on=False) is None
    added = body_rewrite("deepseek-flash", None, True, False, thinking_on=True)
    assert added is not None
    assert loads(added(request(3)).body)["thinking"] == {"type": "enabled"}


async def test_in_flight_grows_with_the_limits_under_load() -> None:
    # Each endpoint starts at 2 in flight and may grow to 16: with plenty of calls waiting,
    # the calls on the wire must follow the limits up, not stay where they started.
    flying = {"now": 0, "most": 0}

    async def slow(_: CallRequest) -> CallResponse:
        flying["now"] += 1
        flying["most"] = max(flying["most"], flying["now"])
        await asyncio.sleep(0.002)
        flying["now"] -= 1
        return ANSWER

    endpoints = []
    for name in ("a", "b"):
        e = endpoint(name, slow)
        e.limits = CallLimits(2, 16)
        endpoints.append(e)
    call = caller(endpoints)
    outcomes = await asyncio.gather(*(call.call(request(n), CONTEXT) for n in range(600)))
    assert all(o.response is not None for o in outcomes)
    assert flying["most"] > 8, flying  # 4 at the start; up to 32
