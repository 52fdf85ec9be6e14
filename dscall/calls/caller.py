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
    for each attempt (tenacity, policy in calls.retry), calls/attempt.py:
        router.take()              an endpoint: its breaker lets the request through, a slot
                                   under its adaptive limit, its rpm/tpm buckets; a retry
                                   prefers another endpoint (calls/router.py)
        backend.send()             one HTTP attempt
        limits.release(), breaker.record_*(), audit line
    cache.put()                    the moment the answer arrives: the cache is the checkpoint,
                                   under the answering endpoint's answer source; the lease goes
                                   in the same transaction (or with the last failure, or
                                   cancellation, through cache.release())

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
from typing import TYPE_CHECKING

from dscall.calls.attempt import AttemptSender, Gate, Trail
from dscall.calls.attempt import RequestContext as RequestContext  # re-exported: plans use it
from dscall.calls.cache import ResultCache
from dscall.calls.retry import build_retrying, call_with_retries
from dscall.calls.router import Router
from dscall.errors import CallError, Interrupted, Rerouted, RunStopped, one_line
from dscall.output.audit import AuditLog
from dscall.stats import RunStats
from dscall.types import CallRequest, CallResponse

if TYPE_CHECKING:
    from dscall.traces.spans import RunTraces


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
    endpoint: str | None = None  # the endpoint that answered (or whose cache group did)


def internal_error_outcome(exc: BaseException) -> CallOutcome:
    """The outcome of a chunk whose call broke on an unexpected error (a bug of ours)."""
    now = time.time()
    message = f"internal error: {type(exc).__name__}: {exc}"
    return CallOutcome(None, "InternalError", one_line(message), 0, False, 0.0, now, now)


class ChunkCaller:
    """Turns ``CallRequest``s into ``CallOutcome``s; one instance per run."""

    def __init__(
        self,
        router: Router,
        stats: RunStats,
        max_retries: int,
        cache: ResultCache | None = None,
        refresh: bool = False,
        audit: AuditLog | None = None,
        stop_requested: Callable[[], RunStopped | None] = lambda: None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        gate: Gate | None = None,
        traces: RunTraces | None = None,
    ) -> None:
        self.router = router
        self._stats = stats
        self._cache = cache
        self._read_cache = cache is not None and not refresh
        self._stop_requested = stop_requested
        self._sender = AttemptSender(router, stats, audit, stop_requested, gate, traces)
        # ``sleep`` waits between attempts (tests pass one that returns at once).
        self._retrying = build_retrying(max_retries, sleep=sleep, before_sleep=self._count_retry)
        self._in_flight: dict[str, asyncio.Future[CallOutcome]] = {}
        # Answer source index -> the name rows give an answer cached under it.
        names: dict[int, str] = {}
        for endpoint in router.endpoints:
            names.setdefault(endpoint.source_index, endpoint.name)
        self._source_names = tuple(names.get(i, "") for i in range(max(names) + 1))

    def _count_retry(self, *_: object) -> None:
        self._stats.retries += 1

    def cached(self, request: CallRequest) -> CallOutcome | None:
        """The stored answer for ``request``, if any (synchronous: a local sqlite read)."""
        cache = self._cache
        if not self._read_cache or cache is None:
            return None
        response = cache.get(request.request_hash)
        source = 0
        if response is None:
            if not request.other_hashes:
                return None
            response, source = self._other_source(cache, request)
            if response is None:
                return None
        now = time.time()
        name = self._source_names[source]
        return CallOutcome(response, None, None, 0, True, 0.0, now, now, name)

    @staticmethod
    def _other_source(cache: ResultCache, request: CallRequest) -> tuple[CallResponse | None, int]:
        """An answer stored under another of the run's answer sources, and which one."""
        for index, key in enumerate(request.other_hashes, start=1):
            response = cache.get(key)
            if response is not None:
                return response, index
        return None, 0

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
            outcome.endpoint,
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
        trail = Trail()
        sender = self._sender

        async def attempt() -> CallResponse:
            nonlocal attempts, latency_ms
            while True:
                attempts += 1
                try:
                    response, latency_ms = await sender.send(request, context, attempts, trail)
                except Rerouted:
                    continue  # its endpoint was disabled: to another one, not a retry
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
                    trail.endpoint.name if trail.endpoint is not None else None,
                )
            else:
                if reused is not None:  # another run paid for it
                    outcome = CallOutcome(
                        reused,
                        None,
                        None,
                        0,
                        True,
                        0.0,
                        started,
                        time.time(),
                        self._source_names[0],
                    )
                else:
                    answered = trail.endpoint
                    assert answered is not None
                    if cache is not None:
                        self._store(cache, request, answered.source_index, response)
                    outcome = CallOutcome(
                        response,
                        None,
                        None,
                        attempts,
                        False,
                        latency_ms,
                        started,
                        time.time(),
                        answered.name,
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

    @staticmethod
    def _store(cache: ResultCache, request: CallRequest, source: int, answer: CallResponse) -> None:
        """Store ``answer`` under the answering endpoint's answer source; the lease (on the
        request's first key) goes in the same transaction."""
        if source == 0:
            cache.put(request.request_hash, answer)
            return
        cache.put(request.hash_for(source), answer)
        cache.release(request.request_hash)

    async def _lead(self, request: CallRequest) -> CallResponse | None:
        """Take the cross-process lease on ``request``: None when this run is to send it, or
        the answer another run stored. Raises the stop reason if the run stops meanwhile."""
        cache = self._cache
        assert cache is not None
        request_hash = request.request_hash
        while True:
            claim = await cache.acquire(request_hash, check_answer=self._read_cache)
            if claim is None and request.other_hashes and self._read_cache:
                # Another run may have stored it under another endpoint's answer source.
                answer, _ = self._other_source(cache, request)
                if answer is not None:
                    cache.release(request_hash)
                    return answer
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
