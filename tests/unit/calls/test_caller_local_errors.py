"""A machine out of file descriptors is not an endpoint failing: the breaker does not count it
(through the caller's interface, with a handler double for the transport)."""

from __future__ import annotations

import asyncio

import pytest

from dscall.calls.backend import HandlerBackend
from dscall.calls.breaker import CircuitBreaker
from dscall.calls.caller import ChunkCaller, RequestContext
from dscall.calls.limits import CallLimits
from dscall.calls.router import one_endpoint
from dscall.errors import OutOfDescriptors, TransportError
from dscall.stats import RunStats
from dscall.types import CallRequest, CallResponse

_REQUEST = CallRequest(
    body=b"{}",
    request_hash="h" * 64,
    model="deepseek-flash",
    estimated_prompt_tokens=1,
    max_tokens=None,
    stream=False,
)


@pytest.mark.parametrize(
    ("error", "opens"),
    [
        (TransportError("Connection refused"), True),
        (OutOfDescriptors("cannot connect: too many open files in dscall"), False),
    ],
)
async def test_only_endpoint_failures_open_the_breaker(error: Exception, opens: bool) -> None:
    loop = asyncio.get_running_loop()
    breaker = CircuitBreaker(loop.time, consecutive_failures=1)

    def handler(request: CallRequest) -> CallResponse:
        raise error

    backend = HandlerBackend(handler)
    caller = ChunkCaller(
        one_endpoint(backend, CallLimits(4, 4), breaker), RunStats(), max_retries=0
    )
    outcome = await caller.call(_REQUEST, RequestContext("a.txt", 0))
    assert len(backend.requests) == 1
    assert outcome.response is None
    assert outcome.error_type == type(error).__name__
    assert (breaker.state != "closed") is opens
