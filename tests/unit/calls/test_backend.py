"""The transport boundary: the status rule (table-tested), the HTTP backend's use of it, and
the handler double that other stages' tests send through."""

from __future__ import annotations

import pytest

from dscall.calls.backend import (
    UNKNOWN_ENDPOINT,
    Backend,
    EndpointInfo,
    HandlerBackend,
    status_error,
)
from dscall.calls.http import raise_for_status
from dscall.errors import (
    EXIT_STOPPED,
    AuthenticationFailed,
    DscallError,
    EmptyResponse,
    HTTPStatusError,
    InsufficientBalance,
    PermanentCallError,
    RunStopped,
)
from dscall.types import CallRequest, CallResponse, Usage

ANSWER = CallResponse("ok", "stop", "deepseek-flash", Usage(3, 1, 0, 3))


def make_request(n: int) -> CallRequest:
    return CallRequest(b"{}", f"{n:064x}", "deepseek-flash", 1, None, False)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, AuthenticationFailed),
        (402, InsufficientBalance),
        (408, HTTPStatusError),
        (409, HTTPStatusError),
        (429, HTTPStatusError),
        (500, HTTPStatusError),
        (503, HTTPStatusError),
        (524, HTTPStatusError),
        (400, PermanentCallError),
        (403, PermanentCallError),
        (404, PermanentCallError),
        (422, PermanentCallError),
        (501, PermanentCallError),
        (505, PermanentCallError),
        (302, PermanentCallError),
    ],
)
def test_each_status_maps_to_the_error_that_says_what_to_do(
    status: int, kind: type[DscallError]
) -> None:
    error = status_error(status, "server says no", retry_after=1.5)
    assert type(error) is kind
    assert "server says no" in error.message
    assert f"HTTP {status}" in error.message
    if isinstance(error, (HTTPStatusError, PermanentCallError)):
        assert error.status == status
    if isinstance(error, HTTPStatusError):
        assert error.retry_after == 1.5


@pytest.mark.parametrize(
    ("status", "kind"), [(401, AuthenticationFailed), (402, InsufficientBalance)]
)
def test_401_and_402_stop_the_run_and_carry_their_status(
    status: int, kind: type[RunStopped]
) -> None:
    error = status_error(status, "no")
    assert isinstance(error, RunStopped)
    assert error.exit_code == EXIT_STOPPED
    assert kind.status == status


def test_the_http_backend_raises_what_the_rule_says() -> None:
    body = b'\n\n{"error": {"message": "Rate limit reached"}}'
    with pytest.raises(HTTPStatusError) as throttled:
        raise_for_status(429, body, {"Retry-After": "2"})
    assert (throttled.value.status, throttled.value.retry_after) == (429, 2.0)
    assert throttled.value.message == "HTTP 429: Rate limit reached"
    with pytest.raises(PermanentCallError) as permanent:
        raise_for_status(400, b"", {"Retry-After": "2"})
    assert permanent.value.message == "HTTP 400: (empty body)"
    with pytest.raises(AuthenticationFailed, match="HTTP 401: bad key"):
        raise_for_status(401, b'{"error": {"message": "bad key"}}', {})


async def test_the_handler_answers_and_every_request_is_recorded() -> None:
    def handler(request: CallRequest) -> CallResponse:
        if request.request_hash.endswith("2"):
            raise EmptyResponse("HTTP 200 with an empty body")
        return ANSWER

    backend = HandlerBackend(handler)
    assert await backend.send(make_request(1)) == ANSWER
    with pytest.raises(EmptyResponse):
        await backend.send(make_request(2))
    assert backend.requests == [make_request(1), make_request(2)]


async def test_an_async_handler_is_awaited() -> None:
    async def handler(request: CallRequest) -> CallResponse:
        raise status_error(503, "busy", retry_after=0.5)

    async with HandlerBackend(handler) as backend:
        with pytest.raises(HTTPStatusError) as raised:
            await backend.send(make_request(1))
    assert raised.value.retry_after == 0.5
    assert len(backend.requests) == 1


async def test_the_double_is_a_backend_with_a_host_and_endpoint_info() -> None:
    info = EndpointInfo(("deepseek-flash",), 12.5, True)
    backend: Backend = HandlerBackend(lambda request: ANSWER, host="api.example.test", info=info)
    assert backend.host == "api.example.test"
    assert await backend.endpoint_info() == info
    assert await HandlerBackend(lambda request: ANSWER).endpoint_info() == UNKNOWN_ENDPOINT
