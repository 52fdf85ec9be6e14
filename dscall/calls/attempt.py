"""One HTTP attempt of a request: its turn, its endpoint, what the answer teaches the limits and
the breaker, its figures and its audit line.

    off-peak gate (--off-peak wait)   waits while peak hours last
    router.take()                     an endpoint with a slot and a breaker that lets it through
                                      (calls/router.py; with one endpoint: breaker, limits)
    endpoint.backend.send()           the body as that endpoint takes it (calls/endpoints.py)
    limits.release(), breaker.record_*(), figures, audit line
    401/402/refused parameter with another endpoint left: that endpoint is disabled and the
    request goes to another one (``Rerouted``; calls/failover.py has the rule)

A ``RunStopped`` error (401, 402, outage, interrupt) with no endpoint left is not retried: it
propagates to the engine, which stops dispatching.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from dscall.calls.endpoints import Endpoint
from dscall.calls.failover import ENDPOINT_ERRORS, after_error, disable_reason
from dscall.calls.router import Router
from dscall.errors import (
    HTTPStatusError,
    OutOfDescriptors,
    PermanentCallError,
    Rerouted,
    RetryableCallError,
    RunStopped,
)
from dscall.output.audit import AuditLog
from dscall.stats import RunStats
from dscall.types import CallRequest, CallResponse

if TYPE_CHECKING:
    from dscall.traces.spans import RunTraces

# Statuses that mean "slow down" to the adaptive limit rather than "the endpoint is broken".
_THROTTLE_STATUSES = frozenset({429, 503})

StopCheck = Callable[[], RunStopped | None]


@dataclass(slots=True)  # built for every job, cached or not: a plain __init__ is cheaper
class RequestContext:
    """Where a request comes from, for the audit log."""

    doc_path: str
    chunk_index: int | None  # None for a document-level call (a reduce, a document step)
    step: str = "map"
    reask: int = 0  # structured output: how many times this answer was asked again


class Gate(Protocol):
    """What holds attempts back before they look for an endpoint (--off-peak wait)."""

    async def wait(self, stop: StopCheck) -> None: ...


@dataclass(slots=True)
class Trail:
    """One request's attempts so far: the endpoint of the last one (a retry avoids it)."""

    endpoint: Endpoint | None = None


class AttemptSender:
    def __init__(
        self,
        router: Router,
        stats: RunStats,
        audit: AuditLog | None,
        stop_requested: StopCheck,
        gate: Gate | None = None,
        traces: RunTraces | None = None,
    ) -> None:
        self.router = router
        self._traces = traces  # None: tracing is off (dscall.traces)
        self._stats = stats
        self._audit = audit
        self._stop_requested = stop_requested
        self._gate = gate
        self._multi = router.multi

    async def send(
        self, request: CallRequest, context: RequestContext, attempt: int, trail: Trail
    ) -> tuple[CallResponse, float]:
        """One attempt; the endpoint it went to is left in ``trail``."""
        stop = self._stop_requested()
        if stop is not None:
            raise stop
        if self._gate is not None:
            await self._gate.wait(self._stop_requested)
        reserved = request.estimated_prompt_tokens + (request.max_tokens or 0)
        router = self.router
        endpoint = await router.take(reserved, trail.endpoint, self._stop_requested)
        trail.endpoint = endpoint
        limits, breaker = endpoint.limits, endpoint.breaker
        multi = self._multi
        before = breaker.state
        stats = self._stats
        stats.in_flight += 1
        stats.requests_sent += 1
        figures = endpoint.figures
        if multi:
            figures.requests += 1
            figures.in_flight += 1
        began = time.perf_counter()
        status: int | None = None
        error_type: str | None = None
        response: CallResponse | None = None
        try:
            response = await endpoint.backend.send(
                request if endpoint.rewrite is None else endpoint.rewrite(request)
            )
            status = response.status
        except HTTPStatusError as exc:
            status, error_type = exc.status, exc.error_type
            if exc.status in _THROTTLE_STATUSES:
                stats.throttled += 1
                figures.throttled += 1
                # A 503 without Retry-After is as often a fault as overload: the limiter
                # weighs it less (dscall/calls/limits.py).
                explicit = exc.status == 429 or exc.retry_after is not None
                limits.release("throttled" if explicit else "overloaded")
                if exc.status != 429:
                    breaker.record_failure(error_type)
            else:
                limits.release("error")
                breaker.record_failure(error_type)
            raise
        except OutOfDescriptors as exc:
            # This machine's limit, not the endpoint's health: no breaker failure; fewer in
            # flight is what frees descriptors.
            error_type = exc.error_type
            limits.release("overloaded")
            raise
        except RetryableCallError as exc:
            error_type = exc.error_type
            limits.release("error")
            breaker.record_failure(error_type)
            raise
        except PermanentCallError as exc:
            status, error_type = exc.status, exc.error_type
            limits.release("ok")  # the endpoint is healthy; the request was not
            breaker.record_success()
            raise
        except ENDPOINT_ERRORS as exc:  # 401, 402, a refused parameter: the endpoint's fault
            status, error_type = exc.status, type(exc).__name__
            limits.release("error")
            if not multi:
                raise  # one endpoint: the run stops (after_error's "stop")
            left = router.disable(endpoint, disable_reason(exc, endpoint.key_env))
            if after_error(exc, others_left=left) == "disable":
                raise Rerouted(endpoint.name) from exc
            router.check_alive()  # none left: NoEndpointLeft, naming every endpoint's reason
            raise
        except BaseException as exc:  # RunStopped (an interrupt), cancellation
            status, error_type = getattr(exc, "status", None), type(exc).__name__
            limits.release("error")
            raise
        else:
            limits.release("ok")
            breaker.record_success()
            elapsed_ms = (time.perf_counter() - began) * 1000.0
            stats.latency.record(elapsed_ms)
            if multi:
                figures.ok += 1
                figures.latency.record(elapsed_ms)
            return response, elapsed_ms
        finally:
            latency_ms = (time.perf_counter() - began) * 1000.0
            stats.in_flight -= 1
            if multi:
                if status is not None:
                    counts = figures.status_counts
                    counts[status] = counts.get(status, 0) + 1
                self._after_multi(endpoint, before)
            else:
                stats.breaker_state = breaker.state
                limit = stats.concurrency_limit = limits.concurrency.limit
                if limit < stats.concurrency_min:
                    stats.concurrency_min = limit
                elif limit > stats.concurrency_max:
                    stats.concurrency_max = limit
            if status is not None:
                stats.status_counts[status] = stats.status_counts.get(status, 0) + 1
            usage = response.usage if response is not None else None
            if self._traces is not None:
                self._traces.attempt(
                    request, endpoint, attempt, status, error_type, usage, latency_ms
                )
            # Give back the --tpm reservation: the real usage, or nothing for a failed attempt.
            limits.settle(reserved, usage.prompt_tokens + usage.completion_tokens if usage else 0)
            if self._audit is not None:
                self._audit.record(
                    request_hash=request.request_hash,
                    doc_path=context.doc_path,
                    chunk_index=context.chunk_index,
                    step=context.step,
                    reask=context.reask,
                    model=request.model,
                    status=status,
                    attempt=attempt,
                    latency_ms=latency_ms,
                    prompt_tokens=usage.prompt_tokens if usage else 0,
                    completion_tokens=usage.completion_tokens if usage else 0,
                    cached=False,
                    error_type=error_type,
                    endpoint=endpoint.name,
                    endpoint_host=endpoint.backend.host,
                )

    def _after_multi(self, endpoint: Endpoint, before: str) -> None:
        """Figures of a run with several endpoints, and the router told what changed."""
        figures = endpoint.figures
        figures.in_flight -= 1
        breaker = endpoint.breaker
        if breaker.state == "half_open":
            breaker.abandon_probe()  # a probe with no verdict (a 429): someone else may probe
        figures.breaker = breaker.state
        router = self.router
        now = endpoint.limits.concurrency.limit
        if now != figures.concurrency_limit:  # the run's total limit moves by the difference
            stats = self._stats
            limit = stats.concurrency_limit + now - figures.concurrency_limit
            stats.concurrency_limit = limit
            figures.concurrency_limit = now
            if limit < stats.concurrency_min:
                stats.concurrency_min = limit
            elif limit > stats.concurrency_max:
                stats.concurrency_max = limit
        if breaker.state != before or breaker.down:
            # Capacity came back (closed), or went (open, given up): every waiter looks again.
            router.changed()
        else:
            router.released()
