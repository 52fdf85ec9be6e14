"""The transport boundary: the ``Backend`` protocol, what a status means, and a test double.

``Backend`` is all the caller and the run need from a transport: one attempt per ``send``, the
endpoint's models and balance for the pre-flight checks, and the host name for messages and
the audit log. ``HttpBackend`` (calls/http.py, the only module that imports aiohttp) is the
real one; ``HandlerBackend`` answers from a function, after httpx's ``MockTransport(handler)``,
so that any stage can be tested through the real call path without a server.

``send`` returns a ``CallResponse`` or raises one of dscall's own errors, never a library's:

    RetryableCallError      transient (HTTPStatusError carries the status and Retry-After)
    PermanentCallError      this request fails, others go on (carries the status)
    RunStopped              every later request would fail too (AuthenticationFailed: 401,
                            InsufficientBalance: 402, UnsupportedParameter: a 400 naming a
                            field the endpoint does not accept)

``status_error`` is the one rule from an HTTP status to that error, used by ``HttpBackend`` and
by handlers that want to answer as a server would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from dscall.calls.providers import unsupported_hint, unsupported_parameter
from dscall.calls.retry import classify_status
from dscall.errors import (
    AuthenticationFailed,
    DscallError,
    HTTPStatusError,
    InsufficientBalance,
    PermanentCallError,
    UnsupportedParameter,
    one_line,
)
from dscall.types import CallRequest, CallResponse


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """What the pre-flight checks learn from the endpoint."""

    models: tuple[str, ...] | None  # None when GET /models is not offered
    balance_usd: float | None  # None when GET /user/balance is not offered
    balance_available: bool | None


# An endpoint that offers neither GET /models nor GET /user/balance: nothing to check.
UNKNOWN_ENDPOINT = EndpointInfo(None, None, None)


class Backend(Protocol):
    """What the caller and the run need from a transport (``HttpBackend`` is the real one)."""

    @property
    def host(self) -> str:
        """The endpoint's host name, for messages and the audit log."""
        ...

    async def send(self, request: CallRequest) -> CallResponse:
        """One attempt: the answer, or a ``CallError`` subclass or ``RunStopped``."""
        ...

    async def endpoint_info(self) -> EndpointInfo:
        """The endpoint's models and balance; ``TransportError`` when it is unreachable."""
        ...


def status_error(status: int, message: str, retry_after: float | None = None) -> DscallError:
    """The error for a non-200 answer (``message``: the server's, one line). ``retry_after``
    (the server's hint in seconds) is kept only where a retry is due."""
    kind = classify_status(status)
    if kind == "auth":
        return AuthenticationFailed(
            f"the endpoint rejected the API key (HTTP 401: {message}); check DEEPSEEK_API_KEY"
        )
    if kind == "balance":
        return InsufficientBalance(f"insufficient balance (HTTP 402: {message}); top up to go on")
    if kind == "retry":
        return HTTPStatusError(status, message, retry_after)
    parameter = unsupported_parameter(message) if status == 400 else None
    if parameter is not None:
        # Every request of the run carries the same fields: stop at the first such 400
        # rather than pay for (and fail) every chunk.
        return UnsupportedParameter(
            f"the endpoint does not accept the request parameter {parameter!r}: "
            f"{unsupported_hint(parameter)} (HTTP 400: {one_line(message, 120)})",
            parameter,
        )
    return PermanentCallError(status, message)


Handler = Callable[[CallRequest], "CallResponse | Awaitable[CallResponse]"]


class HandlerBackend:
    """A ``Backend`` whose answers come from ``handler(request)``, sync or async.

    The handler returns a ``CallResponse`` or raises a dscall error, as ``HttpBackend.send``
    does (``raise status_error(429, "slow down", retry_after=0.01)`` is a throttled answer).
    Every request sent is recorded in ``requests``, in the order sent, failed ones included.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "handler.invalid",
        info: EndpointInfo = UNKNOWN_ENDPOINT,
    ) -> None:
        self.host = host
        self.requests: list[CallRequest] = []
        self._handler = handler
        self._info = info

    async def __aenter__(self) -> HandlerBackend:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def send(self, request: CallRequest) -> CallResponse:
        self.requests.append(request)
        result = self._handler(request)
        if isinstance(result, CallResponse):
            return result
        return await result

    async def endpoint_info(self) -> EndpointInfo:
        return self._info
