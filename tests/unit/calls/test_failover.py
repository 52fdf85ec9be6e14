"""The rule from an attempt's error to what a run with several endpoints does (a table)."""

from __future__ import annotations

import pytest

from dscall.calls.backend import status_error
from dscall.calls.failover import Action, after_error, disable_reason
from dscall.errors import (
    AttemptTimeout,
    BudgetExhausted,
    EndpointDown,
    Interrupted,
    MalformedResponse,
    TransportError,
)

TABLE: list[tuple[BaseException, bool, Action]] = [
    (status_error(401, "bad key"), True, "disable"),
    (status_error(401, "bad key"), False, "stop"),
    (status_error(402, "no money"), True, "disable"),
    (status_error(402, "no money"), False, "stop"),
    (status_error(400, "Unrecognized request argument supplied: thinking"), True, "disable"),
    (status_error(400, "Unrecognized request argument supplied: thinking"), False, "stop"),
    (status_error(429, "slow down"), True, "retry"),
    (status_error(503, "busy"), False, "retry"),
    (status_error(500, "oops"), True, "retry"),
    (TransportError("connection refused"), True, "retry"),
    (AttemptTimeout("deadline"), True, "retry"),
    (MalformedResponse("not json"), False, "retry"),
    (status_error(400, "context too long"), True, "fail"),
    (status_error(404, "no such model"), True, "fail"),
    (status_error(422, "bad"), False, "fail"),
    (EndpointDown("down"), True, "stop"),
    (Interrupted("ctrl-c"), True, "stop"),
    (BudgetExhausted("spent"), True, "stop"),
]


@pytest.mark.parametrize(("error", "others_left", "action"), TABLE)
def test_after_error(error: BaseException, others_left: bool, action: Action) -> None:
    assert after_error(error, others_left) == action


def test_disable_reason_names_the_key_variable_and_never_the_key() -> None:
    reason = disable_reason(status_error(401, "Authentication Fails (sk-secret)"), "VLLM_KEY")
    assert "VLLM_KEY" in reason
    assert "sk-secret" not in reason
    assert "402" in disable_reason(status_error(402, "Insufficient Balance"), "K")
    refused = disable_reason(status_error(400, "Unknown parameter: 'thinking'."), "K")
    assert "--provider openai" in refused
