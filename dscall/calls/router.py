"""Which endpoint takes the next attempt (SPEC §11), and waiting until one can.

With one endpoint, ``take`` is the gate the caller always had: wait on the breaker, wait for a
slot (and the rpm/tpm buckets), check the breaker again. With several:

- Tiers: the primaries, then the fallbacks. A tier is used while any of its endpoints is
  healthy: enabled, and its breaker closed or ready to let a probe through. So fallbacks get
  calls only while no primary can take them (every primary disabled, open or down), and the
  calls go back to the primaries as soon as a probe closes a breaker.
- Within a tier, the endpoints with a free slot under their own adaptive limit are chosen by
  smooth weighted round robin (nginx's): over any stretch the calls split by weight, and an
  endpoint at its limit is passed over, so one that throttles (its limit falls) or answers
  slowly (its slots stay taken) gets less. ``--max-concurrency`` is shared among the primaries
  by weight (calls/endpoint_setup.py), so under full load too the split follows the weights.
- A retry prefers another endpoint than the one that just failed (``avoid``), if one has a slot.
- Nobody free: the attempt waits, first come first served, for a slot to come back, a breaker
  to close, a cooldown to pass (one timer for all) or an endpoint to be disabled.
- Every enabled endpoint down past --max-outage: ``EndpointDown``; every endpoint disabled:
  ``NoEndpointLeft``. Both stop the run (exit 3).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence

from dscall.calls.backend import Backend
from dscall.calls.breaker import CircuitBreaker
from dscall.calls.endpoints import Endpoint
from dscall.calls.limits import CallLimits
from dscall.errors import EndpointDown, NoEndpointLeft, RunStopped

StopCheck = Callable[[], RunStopped | None]
Notify = Callable[[str], None]


class Router:
    def __init__(self, endpoints: Sequence[Endpoint], notify: Notify = lambda line: None) -> None:
        if not endpoints:
            raise ValueError("a run needs an endpoint")
        self.endpoints = tuple(endpoints)
        self.multi = len(self.endpoints) > 1
        self._tiers = tuple(
            tier
            for tier in (
                tuple(e for e in self.endpoints if e.priority == "primary"),
                tuple(e for e in self.endpoints if e.priority != "primary"),
            )
            if tier
        )
        self._notify = notify
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._reasons: dict[str, str] = {}
        self._spare = False  # the last pick left another slot free

    async def take(self, reserved: int, avoid: Endpoint | None, stop: StopCheck) -> Endpoint:
        """An endpoint whose slot (and ``reserved`` tpm tokens) this attempt now holds, with
        its breaker letting the request through. Raises ``stop()``'s reason, or the run's end
        when no endpoint is left."""
        if self.multi:
            return await self._take_among(reserved, avoid, stop)
        endpoint = self.endpoints[0]
        breaker, limits = endpoint.breaker, endpoint.limits
        while True:
            await breaker.before_call()
            await limits.acquire(reserved)
            reason = stop()
            if reason is not None:  # the run stopped while this request waited for its turn
                limits.cancel(reserved)
                raise reason
            if breaker.may_send():
                return endpoint
            # The breaker opened while this request waited for its slot: it must not go out
            # now. Give the slot (and any rpm/tpm reservation) back and wait on the breaker.
            limits.cancel(reserved)

    def released(self) -> None:
        """A slot came back (a call ended, or a reservation was undone): the next waiter."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def changed(self) -> None:
        """An endpoint's health changed (a breaker closed, an endpoint was disabled): every
        waiter looks again."""
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def disable(self, endpoint: Endpoint, reason: str) -> bool:
        """Take ``endpoint`` out of the run for good; True while another is left."""
        if endpoint.disabled is None:
            endpoint.disabled = endpoint.figures.disabled = reason
            self._reasons[endpoint.name] = reason
            left = [e.name for e in self.endpoints if e.disabled is None]
            going_on = f"going on with {', '.join(left)}" if left else "no endpoint is left"
            self._notify(f"endpoint {endpoint.name} disabled: {reason}; {going_on}")
            self.changed()
        return any(e.disabled is None for e in self.endpoints)

    @property
    def waiting(self) -> int:
        """Attempts waiting for a slot on any endpoint (several endpoints only)."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    def total_limit(self) -> int:
        """The adaptive limits of the enabled endpoints, together."""
        return sum(e.limits.concurrency.limit for e in self.endpoints if e.disabled is None)

    async def _take_among(self, reserved: int, avoid: Endpoint | None, stop: StopCheck) -> Endpoint:
        queued = bool(self._waiters)  # no barging past attempts already waiting
        while True:
            if not queued:
                endpoint = self._pick(avoid)
                if endpoint is not None:
                    spare = self._spare  # read now: other picks may run while rates wait
                    limits = endpoint.limits
                    try:
                        await limits.acquire_rates(reserved)  # gives the slot back on failure
                    except BaseException:
                        self.released()
                        raise
                    reason = stop()
                    if reason is not None:
                        limits.cancel(reserved)
                        self.released()
                        raise reason
                    if endpoint.breaker.may_send():
                        if self._waiters and spare:
                            # More than the one slot is free (a limit grew, a breaker closed):
                            # the next waiter too, or the calls on the wire would never
                            # follow a growing limit up.
                            self.released()
                        return endpoint
                    limits.cancel(reserved)  # its breaker opened while we waited for a rate
                    self.released()
                    continue
                self.check_alive()
            queued = False
            await self._wait()
            reason = stop()
            if reason is not None:
                raise reason

    def _pick(self, avoid: Endpoint | None) -> Endpoint | None:
        """The endpoint that takes the attempt now (its slot taken), or None to wait.

        One pass per tier: smooth weighted round robin over the healthy endpoints with a free
        slot, ``avoid`` left out unless it is the only one free."""
        for tier in self._tiers:
            healthy = False
            chosen: Endpoint | None = None
            avoided: Endpoint | None = None
            total = 0.0
            free = 0
            for endpoint in tier:
                if endpoint.disabled is not None:
                    continue
                breaker = endpoint.breaker
                if breaker.state != "closed" and not breaker.available():
                    continue
                healthy = True
                concurrency = endpoint.limits.concurrency
                if concurrency.in_flight >= concurrency.limit:
                    concurrency.try_acquire()  # refused: tells it the limit held a call back
                    continue
                free += 1
                if endpoint is avoid:
                    avoided = endpoint
                    continue
                endpoint.current += endpoint.weight
                total += endpoint.weight
                if chosen is None or endpoint.current > chosen.current:
                    chosen = endpoint
            if not healthy:
                continue  # this tier cannot take calls: the next one may
            if chosen is not None:
                chosen.current -= total
            else:
                chosen = avoided  # the endpoint that just failed is the only one free
            if chosen is None:
                return None
            if not chosen.breaker.try_probe() or not chosen.limits.try_slot():
                return None
            concurrency = chosen.limits.concurrency
            self._spare = free > 1 or concurrency.in_flight < concurrency.limit
            return chosen
        return None

    def check_alive(self) -> None:
        """Raise the run's end when no endpoint can take calls any more."""
        enabled = [e for e in self.endpoints if e.disabled is None]
        if not enabled:
            listed = "; ".join(f"{name}: {why}" for name, why in self._reasons.items())
            raise NoEndpointLeft(f"every endpoint is disabled ({listed})")
        if all(e.breaker.down for e in enabled):
            names = ", ".join(e.name for e in enabled)
            raise EndpointDown(
                f"every endpoint is down ({names}): failing for longer than --max-outage"
            )

    async def _wait(self) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        self._arm_timer(loop)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.released()  # woken just as we were cancelled: pass the turn on
            raise

    def _arm_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake everyone when the first cooldown of an open breaker ends (breakers read the
        loop's clock)."""
        due = [
            e.breaker.retry_at
            for e in self.endpoints
            if e.disabled is None and e.breaker.state == "open" and not e.breaker.down
        ]
        if not due:
            return
        when = max(min(due), loop.time())
        if self._timer is not None and not self._timer.cancelled():
            if self._timer.when() <= when:
                return
            self._timer.cancel()
        self._timer = loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.changed()


def one_endpoint(
    backend: Backend, limits: CallLimits, breaker: CircuitBreaker, name: str = "endpoint"
) -> Router:
    """The router of a run with one endpoint (tests build callers with it)."""
    return Router([Endpoint(name, backend, limits, breaker)])
