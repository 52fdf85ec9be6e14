"""What an attempt's error means when a run has several endpoints: a pure rule, table-tested.

The transport reports what the server said (``calls/backend.status_error`` turns a status into
a dscall error); this decides what the run does about it:

    error                                   endpoints left   action
    AuthenticationFailed (401)              some             disable: the endpoint takes no
    InsufficientBalance (402)                                more calls; this one goes to
    UnsupportedParameter (400 naming a field)                another, not counted as an attempt
    the same                                none             stop the run (exit 3)
    RetryableCallError (429, 5xx, timeout,  -                retry, preferring another endpoint
      connection, empty or malformed body)
    PermanentCallError (other 4xx)          -                fail this request (an error row)
    any other RunStopped (outage, interrupt, budget)  -      stop

With one endpoint "endpoints left" is always none: 401 and 402 stop the run at once, as before.
"""

from __future__ import annotations

from typing import Literal

from dscall.errors import (
    AuthenticationFailed,
    InsufficientBalance,
    PermanentCallError,
    RetryableCallError,
    RunStopped,
    UnsupportedParameter,
)

Action = Literal["disable", "retry", "fail", "stop"]

# Errors that say "this endpoint will refuse every request", not "this request failed".
ENDPOINT_ERRORS = (AuthenticationFailed, InsufficientBalance, UnsupportedParameter)


def after_error(exc: BaseException, others_left: bool) -> Action:
    """The action for an attempt that ended in ``exc``; ``others_left``: another endpoint of
    the run is still enabled."""
    if isinstance(exc, ENDPOINT_ERRORS):
        return "disable" if others_left else "stop"
    if isinstance(exc, RetryableCallError):
        return "retry"
    if isinstance(exc, PermanentCallError):
        return "fail"
    return "stop"


def disable_reason(exc: BaseException, key_env: str) -> str:
    """Why an endpoint was disabled, in a few words for the one line that says so."""
    if isinstance(exc, AuthenticationFailed):
        return f"its API key was rejected (HTTP 401); check {key_env}"
    if isinstance(exc, InsufficientBalance):
        return "insufficient balance (HTTP 402)"
    if isinstance(exc, UnsupportedParameter):
        return str(exc)
    return str(exc) if isinstance(exc, RunStopped) else type(exc).__name__
