"""One endpoint of a run, as the caller uses it: its transport, limits, breaker and figures.

A run with one endpoint has one of these; a run with several has one each, and a ``Router``
(calls/router.py) to choose between them. Every endpoint keeps its own adaptive concurrency,
rpm/tpm buckets and circuit breaker, so one endpoint's 429s or outage never slow another.

The requests of a run are built once (calls/request.py), for the first endpoint's provider
profile and the run's ``--model``. An endpoint that names the model otherwise (a vLLM box
serving the HF repo id) or has the other profile (``thinking`` sent or not) gets the body
rewritten for it at send time: the cache key stays that of the logical request, so
only the cache group decides which endpoints share answers. ``calls/attempt.py`` applies
``Endpoint.rewrite`` to each attempt's request.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dscall.calls.backend import Backend
from dscall.calls.breaker import CircuitBreaker
from dscall.calls.limits import CallLimits
from dscall.jsonio import dumps_canonical, loads
from dscall.stats import EndpointFigures
from dscall.types import CallRequest


class BodyRewrite:
    """Turns a body built for the run into the body one endpoint expects."""

    __slots__ = ("_model", "_run_model", "_thinking")

    def __init__(self, run_model: str, model: str | None, thinking: dict[str, str] | None) -> None:
        self._run_model = run_model
        self._model = model  # None: the same name
        self._thinking = thinking  # the field to send; None: send none

    def __call__(self, request: CallRequest) -> CallRequest:
        params: dict[str, Any] = loads(request.body)
        if self._model is not None and params.get("model") == self._run_model:
            params["model"] = self._model
        if self._thinking is None:
            params.pop("thinking", None)
        else:
            params["thinking"] = self._thinking
        return replace(request, body=dumps_canonical(params))


def body_rewrite(
    run_model: str,
    model: str | None,
    sends_thinking: bool,
    run_sends_thinking: bool,
    thinking_on: bool,
) -> BodyRewrite | None:
    """The rewrite for an endpoint, or None when the run's bodies suit it as they are."""
    renamed = model if model is not None and model != run_model else None
    if renamed is None and sends_thinking == run_sends_thinking:
        return None
    thinking = {"type": "enabled" if thinking_on else "disabled"} if sends_thinking else None
    return BodyRewrite(run_model, renamed, thinking)


class Endpoint:
    """An endpoint's runtime state. ``source_index``: which of the run's answer sources (cache
    groups) its answers are stored under; ``weight`` and ``priority`` are for the router."""

    __slots__ = (
        "backend",
        "breaker",
        "current",
        "disabled",
        "figures",
        "key_env",
        "limits",
        "name",
        "priority",
        "rewrite",
        "source_index",
        "weight",
    )

    def __init__(
        self,
        name: str,
        backend: Backend,
        limits: CallLimits,
        breaker: CircuitBreaker,
        *,
        priority: str = "primary",
        weight: float = 1.0,
        source_index: int = 0,
        rewrite: BodyRewrite | None = None,
        key_env: str = "DEEPSEEK_API_KEY",
    ) -> None:
        self.name = name
        self.backend = backend
        self.limits = limits
        self.breaker = breaker
        self.priority = priority
        self.weight = weight
        self.source_index = source_index
        self.rewrite = rewrite
        self.key_env = key_env
        self.disabled: str | None = None  # why it takes no more calls
        self.current = 0.0  # smooth weighted round robin's running score (calls/router.py)
        self.figures = EndpointFigures(priority=priority)

    def __repr__(self) -> str:
        return f"Endpoint({self.name!r})"
