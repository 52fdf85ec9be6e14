"""The call path of one request: single flight, circuit breaker, limits, retries, cache.

    cache hit? ──yes──> outcome (cached)
        │no
    same request already in flight? ──yes──> wait for it (single flight)
        │no
    cache.acquire(): the cross-process lease on the request (calls.leases)
        answer stored meanwhile ──> outcome (cached)
        another live run has it ──> wait for its answer (outcome, cached) or for the lease to
                                    come free (its call failed, its process died): take it
        ours (or no cache) ──┐
    for each attempt (tenacity, policy in calls.retry):
        breaker.before_call()      waits while the endpoint is down; EndpointDown past max outage
        limits.acquire()           adaptive concurrency + optional rpm/tpm buckets
        breaker.may_send()?        no (it opened while we waited for a slot): give the slot
                                   back, wait on the breaker again
        backend.send()             one HTTP attempt
        limits.release(), breaker.record_*(), audit line
    cache.put()                    the moment the answer arrives: the cache is the checkpoint;
                                   the lease goes in the same transaction (or with the last
                                   failure, or cancellation, through cache.release())

A ``RunStopped`` error (401, 402, outage, interrupt) is not retried: it propagates to the
engine, which stops dispatching. Requests already on the wire are allowed to finish, since the
endpoint bills them either way; a request waiting for another run's answer stops waiting.

An answer another run paid for is this run's row like a cache hit (``cached``, 0 attempts, cost
0) and writes no audit line: the audit log records attempts, and the attempt is the other run's
line. ``--refresh`` takes leases, so that other runs wait for its answers, but waits for nobody:
it is asked to pay again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dscall.calls.backend import Backend
from dscall.calls.breaker import CircuitBreaker
from dscall.calls.cache import ResultCache
from dscall.calls.limits import CallLimits
from dscall.calls.retry import build_retrying, call_with_retries
from dscall.errors import (
    CallError,
    HTTPStatusError,
    Interrupted,
    OutOfDescriptors,
    PermanentCallError,
    RetryableCallError,
    RunStopped,
    one_line,
)
from dscall.output.audit import AuditLog
from dscall.stats import RunStats
from dscall.types import CallRequest, CallResponse

# Statuses that mean "slow down" to the adaptive limit rather than "the endpoint is broken".
_THROTTLE_STATUSES = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """How one request ended: a response, or the error of its last attempt."""

    response: CallResponse | None
    error_type: str | None
    error_message: str | None
    attempts: int  # attempts sent this run (0 for a cache hit or a single-flight follower)
    cached: bool  # the answer was reused, not paid for in this run
    latency_ms: float  # the last attempt's round trip
    started_at: float  # epoch seconds
    finished_at: float


def internal_error_outcome(exc: BaseException) -> CallOutcome:
    """The outcome of a chunk whose call broke on an unexpected error (a bug of ours)."""
    now = time.time()
    message = f"internal error: {type(exc).__name__}: {exc}"
    return CallOutcome(None, "InternalError", one_line(message), 0, False, 0.0, now, now)


@dataclass(slots=True)  # built for every job, cached or not: a plain __init__ is cheaper
class RequestContext:
    """Where a request comes from, for the audit log."""

    doc_path: str
    chunk_index: int | None  # None for a document-level call (a reduce, a document step)
    step: str = "map"
    reask: int = 0  # structured output: how many times this answer was asked again


class ChunkCaller:
    """Turns ``CallRequest``s into ``CallOutcome``s; one instance per run."""

    def __init__(
        self,
        backend: Backend,
        limits: CallLimits,
        breaker: CircuitBreaker,
        stats: RunStats,
        max_retries: int,
        cache: ResultCache | None = None,
        refresh: bool = False,
        audit: AuditLog | None = None,
        stop_requested: Callable[[], RunStopped | None] = lambda: None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._backend = backend
        self._limits = limits
        self._breaker = breaker
        self._stats = stats
        self._cache = cache
        self._read_cache = cache is not None and not refresh
        self._audit = audit
        self._stop_requested = stop_requested
        # ``sleep`` waits between attempts (tests pass one that returns at once).
        self._retrying = build_retrying(max_retries, sleep=sleep, before_sleep=self._count_retry)
        self._in_flight: dict[str, asyncio.Future[CallOutcome]] = {}

    def _count_retry(self, *_: object) -> None:
        self._stats.retries += 1

    def cached(self, request: CallRequest) -> CallOutcome | None:
        """The stored answer for ``request``, if any (synchronous: a local sqlite read)."""
        if not self._read_cache or self._cache is None:
            return None
        response = self._cache.get(request.request_hash)
        if response is None:
            return None
        now = time.time()
        return CallOutcome(response, None, None, 0, True, 0.0, now, now)

    def in_flight(self, request: CallRequest) -> asyncio.Future[CallOutcome] | None:
        """The pending outcome of an identical request already dispatched, if any."""
        return self._in_flight.get(request.request_hash)

    def claim(self, request: CallRequest) -> asyncio.Future[CallOutcome]:
        """Register ``request`` as in flight before its task even starts, so that an identical
        request dispatched right after it (same loop iteration) follows instead of leading."""
        leader: asyncio.Future[CallOutcome] = asyncio.get_running_loop().create_future()
        self._in_flight[request.request_hash] = leader
        return leader

    async def follow(self, leader: asyncio.Future[CallOutcome]) -> CallOutcome:
        """Wait for an identical request's outcome and reuse it without paying again."""
        outcome = await asyncio.shield(leader)
        now = time.time()
        return CallOutcome(
            outcome.response,
            outcome.error_type,
            outcome.error_message,
            0,
            outcome.response is not None,
            0.0,
            now,
            now,
        )

    async def call(
        self,
        request: CallRequest,
        context: RequestContext,
        leader: asyncio.Future[CallOutcome] | None = None,
    ) -> CallOutcome:
        """Send ``request`` with retries; the result is cached on success and handed to any
        identical request waiting on ``leader`` (from ``claim``).

        Raises ``RunStopped`` when the whole run must stop; every other failure is returned as
        an error outcome.
        """
        if leader is None:
            leader = self.claim(request)
        started = time.time()
        attempts = 0
        latency_ms = 0.0
        cache = self._cache

        async def attempt() -> CallResponse:
            nonlocal attempts, latency_ms
            attempts += 1
            response, latency_ms = await self._attempt(request, context, attempts)
            return response

        try:
            try:
                reused = await self._lead(request) if cache is not None else None
                if reused is None:
                    response = await call_with_retries(self._retrying, attempt)
            except CallError as exc:
                if cache is not None:
                    cache.release(request.request_hash)
                outcome = CallOutcome(
                    None,
                    exc.error_type,
                    exc.message,
                    attempts,
                    False,
                    latency_ms,
                    started,
                    time.time(),
                )
            else:
                if reused is not None:  # another run paid for it
                    outcome = CallOutcome(reused, None, None, 0, True, 0.0, started, time.time())
                else:
                    if cache is not None:  # releases the lease in the answer's transaction
                        cache.put(request.request_hash, response)
                    outcome = CallOutcome(
                        response, None, None, attempts, False, latency_ms, started, time.time()
                    )
        except BaseException as exc:
            if cache is not None:
                cache.release(request.request_hash)
            # Followers must not wait forever for a leader that stopped, was cancelled or broke:
            # they get its stop reason, or its error (an internal error row of their own), or
            # (cancelled) an interruption.
            leader.set_exception(exc if isinstance(exc, Exception) else Interrupted("cancelled"))
            leader.exception()  # mark retrieved: followers may never look
            raise
        finally:
            if self._in_flight.get(request.request_hash) is leader:
                del self._in_flight[request.request_hash]
        leader.set_result(outcome)
        return outcome

    async def _lead(self, request: CallRequest) -> CallResponse | None:
        """Take the cross-process lease on ``request``: None when this run is to send it, or
        the answer another run stored. Raises the stop reason if the run stops meanwhile."""
        cache = self._cache
        assert cache is not None
        request_hash = request.request_hash
        while True:
            claim = await cache.acquire(request_hash, check_answer=self._read_cache)
            if claim is None or isinstance(claim, CallResponse):
                return claim
            if not self._read_cache:  # --refresh: sent again by design, whoever has it
                return None
            stop = self._stop_requested()
            if stop is not None:
                raise stop
            response = await cache.wait(request_hash, self._stop_requested)
            if response is not None:
                return response
            # The lease came free without an answer (the other run's call failed, or its
            # process is gone): take it, unless yet another run was quicker.

    async def _attempt(
        self, request: CallRequest, context: RequestContext, attempt: int
    ) -> tuple[CallResponse, float]:
        stop = self._stop_requested()
        if stop is not None:
            raise stop
        reserved = request.estimated_prompt_tokens + (request.max_tokens or 0)
        while True:
            await self._breaker.before_call()
            await self._limits.acquire(reserved)
            stop = self._stop_requested()
            if stop is not None:  # the run stopped while this request waited for its turn
                self._limits.cancel(reserved)
                raise stop
            if self._breaker.may_send():
                break
            # The breaker opened while this request waited for its slot: it must not go out
            # now. Give the slot (and any rpm/tpm reservation) back and wait on the breaker.
            self._limits.cancel(reserved)
        stats = self._stats
        stats.in_flight += 1
        stats.requests_sent += 1
        began = time.perf_counter()
        status: int | None = None
        error_type: str | None = None
        response: CallResponse | None = None
        try:
            response = await self._backend.send(request)
            status = response.status
        except HTTPStatusError as exc:
            status, error_type = exc.status, exc.error_type
            if exc.status in _THROTTLE_STATUSES:
                stats.throttled += 1
                # A 503 without Retry-After is as often a fault as overload: the limiter
                # weighs it less (dscall/calls/limits.py).
                explicit = exc.status == 429 or exc.retry_after is not None
                self._limits.release("throttled" if explicit else "overloaded")
                if exc.status != 429:
                    self._breaker.record_failure(error_type)
            else:
                self._limits.release("error")
                self._breaker.record_failure(error_type)
            raise
        except OutOfDescriptors as exc:
            # This machine's limit, not the endpoint's health: no breaker failure; fewer in
            # flight is what frees descriptors.
            error_type = exc.error_type
            self._limits.release("overloaded")
            raise
        except RetryableCallError as exc:
            error_type = exc.error_type
            self._limits.release("error")
            self._breaker.record_failure(error_type)
            raise
        except PermanentCallError as exc:
            status, error_type = exc.status, exc.error_type
            self._limits.release("ok")  # the endpoint is healthy; the request was not
            self._breaker.record_success()
            raise
        except BaseException as exc:  # RunStopped (401/402 carry their status), cancellation
            status, error_type = getattr(exc, "status", None), type(exc).__name__
            self._limits.release("error")
            raise
        else:
            self._limits.release("ok")
            self._breaker.record_success()
            elapsed_ms = (time.perf_counter() - began) * 1000.0
            stats.latency.record(elapsed_ms)
            return response, elapsed_ms
        finally:
            latency_ms = (time.perf_counter() - began) * 1000.0
            stats.in_flight -= 1
            limit = stats.concurrency_limit = self._limits.concurrency.limit
            if limit < stats.concurrency_min:
                stats.concurrency_min = limit
            elif limit > stats.concurrency_max:
                stats.concurrency_max = limit
            if status is not None:
                stats.status_counts[status] = stats.status_counts.get(status, 0) + 1
            usage = response.usage if response is not None else None
            # Give back the --tpm reservation: the real usage, or nothing for a failed attempt.
            self._limits.settle(
                request.estimated_prompt_tokens + (request.max_tokens or 0),
                usage.prompt_tokens + usage.completion_tokens if usage else 0,
            )
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
                )
