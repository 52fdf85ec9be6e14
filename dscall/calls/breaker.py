"""Circuit breaker for one endpoint: stop sending while it is down, probe, resume.

    closed ──(N consecutive failures, or failure rate over the window)──> open
    open ──(cooldown passed; one caller becomes the probe)──> half_open
    half_open ──probe ok──> closed (waiters released)
    half_open ──probe failed──> open, cooldown doubled (capped)
    a probe sent at the max_outage deadline (or later) failed ──> every before_call() raises
                                                                EndpointDown

The next probe is never scheduled after the deadline (open_since + max_outage): the cooldown is
cut to the time left, so an endpoint that came back before the deadline is always found, and
the run gives up only once a probe sent at the deadline has failed too. Past the deadline the
waiters wait for that last probe's outcome (its attempt has its own wall-clock deadline).

Only failures that say "the endpoint is unhealthy" are recorded (transport errors, timeouts,
5xx, empty or malformed bodies); the caller decides which. A 429 is a limits matter, not a
breaker one. Any success closes the breaker: whoever got an answer proved the endpoint works.

The probe is the asyncio task that was let through, so no token has to travel through the
caller: outcomes recorded from other tasks (requests sent before the breaker opened) never
pass for the probe's. Closed is the common state and costs a few attribute reads per call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal

from dscall.config import (
    BREAKER_CONSECUTIVE_FAILURES,
    BREAKER_COOLDOWN_S,
    BREAKER_FAILURE_RATE,
    BREAKER_MAX_COOLDOWN_S,
    BREAKER_MIN_CALLS,
    BREAKER_WINDOW,
    DEFAULT_MAX_OUTAGE_S,
)
from dscall.errors import EndpointDown

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        clock: Callable[[], float],
        consecutive_failures: int = BREAKER_CONSECUTIVE_FAILURES,
        window: int = BREAKER_WINDOW,
        min_calls: int = BREAKER_MIN_CALLS,
        failure_rate: float = BREAKER_FAILURE_RATE,
        cooldown: float = BREAKER_COOLDOWN_S,
        max_cooldown: float = BREAKER_MAX_COOLDOWN_S,
        max_outage: float = DEFAULT_MAX_OUTAGE_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._threshold = consecutive_failures
        self._min_calls = min(min_calls, window)
        self._failure_rate = failure_rate
        self._base_cooldown = cooldown
        self._max_cooldown = max_cooldown
        self._max_outage = max_outage
        self._state: State = "closed"
        self._consecutive = 0
        # Ring of the last `window` outcomes (1 = failure), with a running sum: O(1) per call.
        self._ring = bytearray(window)
        self._pos = 0
        self._seen = 0
        self._failures = 0
        self._open_since: float | None = None
        self._retry_at = 0.0
        self._cooldown = cooldown
        self._probe: asyncio.Task[object] | None = None
        self._changed: asyncio.Future[None] | None = None
        self._last_kind = "unknown"
        self._down: str | None = None  # the EndpointDown message, once given up

    @property
    def state(self) -> State:
        return self._state

    @property
    def open_since(self) -> float | None:
        """Clock time at which the current outage began (None while closed)."""
        return self._open_since

    @property
    def last_failure_kind(self) -> str:
        return self._last_kind

    @property
    def down(self) -> bool:
        """Given up: failing past --max-outage (no probe will be let through again)."""
        return self._down is not None

    @property
    def retry_at(self) -> float:
        """Clock time from which an open breaker lets a probe through."""
        return self._retry_at

    def available(self) -> bool:
        """Whether a request may be sent now without waiting: closed, or open with its
        cooldown passed (the caller then becomes the probe through ``try_probe``)."""
        state = self._state
        if state == "closed":
            return True
        return state == "open" and self._down is None and self._clock() >= self._retry_at

    def try_probe(self) -> bool:
        """Become the probe of an open breaker whose cooldown passed, without waiting (a
        router choosing among endpoints); True also when closed."""
        if self._state == "closed":
            return True
        if not self.available():
            return False
        task = asyncio.current_task()
        self._state = "half_open"
        self._probe = task
        if task is not None:
            task.add_done_callback(self._probe_gone)
        return True

    def abandon_probe(self) -> None:
        """The calling task probed and got no verdict (a 429, a bad request) and goes to
        another endpoint: the next caller may probe at once, with no cooldown penalty."""
        if self._state == "half_open" and self._probe is asyncio.current_task():
            self._state = "open"
            self._probe = None
            self._notify()

    async def before_call(self) -> None:
        """Return when a request may be sent; wait while the endpoint is down.

        Raises ``EndpointDown`` once the breaker has not been closed for ``max_outage``.
        """
        if self._state != "closed":
            await self._admit()

    def may_send(self) -> bool:
        """Whether the calling task may put a request on the wire now: the breaker is closed,
        or this task is the half-open probe. A request that passed ``before_call`` and then
        waited (for a concurrency slot, say) checks again with this before it is sent."""
        return self._state == "closed" or self._probe is asyncio.current_task()

    async def _admit(self) -> None:
        task = asyncio.current_task()
        while self._state != "closed":
            if self._down is not None:
                # A fresh exception per caller: one instance raised in many tasks would
                # collect all their tracebacks.
                raise EndpointDown(self._down)
            now = self._clock()
            if self._probe is not None and self._probe is task:
                return  # the probe retrying (after a 429, say) stays the probe
            if self._state == "open" and now >= self._retry_at:
                self._state = "half_open"
                self._probe = task
                if task is not None:
                    task.add_done_callback(self._probe_gone)
                return
            await self._wait(now)

    def record_success(self) -> None:
        if self._state == "closed":
            self._consecutive = 0
            self._push(0)
            return
        self._close()

    def record_failure(self, kind: str) -> None:
        self._last_kind = kind
        if self._state == "closed":
            self._consecutive += 1
            self._push(1)
            if self._consecutive >= self._threshold or (
                self._seen >= self._min_calls and self._failures >= self._failure_rate * self._seen
            ):
                self._open(self._clock(), self._base_cooldown)
        elif self._state == "half_open" and self._probe is asyncio.current_task():
            now = self._clock()
            if self._open_since is not None and now >= self._open_since + self._max_outage:
                self._give_up(now)
            else:
                self._open(now, min(self._cooldown * 2, self._max_cooldown))
        # Other failures while open come from requests sent before it opened: already counted.

    def _push(self, failed: int) -> None:
        ring = self._ring
        pos = self._pos
        self._failures += failed - ring[pos]
        ring[pos] = failed
        self._pos = pos + 1 if pos + 1 < len(ring) else 0
        if self._seen < len(ring):
            self._seen += 1

    def _open(self, now: float, cooldown: float) -> None:
        self._state = "open"
        self._probe = None
        if self._open_since is None:
            self._open_since = now
        self._cooldown = cooldown
        # Never later than the deadline: the last probe goes out at it, not after it.
        self._retry_at = min(now + cooldown, self._open_since + self._max_outage)
        self._notify()

    def _close(self) -> None:
        self._state = "closed"
        self._probe = None
        self._open_since = None
        self._down = None
        self._cooldown = self._base_cooldown
        self._consecutive = 0
        self._failures = self._seen = self._pos = 0
        self._ring[:] = bytes(len(self._ring))
        self._notify()

    def _probe_gone(self, task: asyncio.Task[object]) -> None:
        # The probe's task ended without an outcome (cancelled, or stopped by a 401): let
        # another caller probe at once, with no cooldown penalty.
        if self._probe is task and self._state == "half_open":
            self._state = "open"
            self._probe = None
            self._notify()

    def _notify(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    def _give_up(self, now: float) -> None:
        assert self._open_since is not None
        self._state = "open"
        self._probe = None
        self._down = (
            f"the endpoint has been failing for {now - self._open_since:.0f} s "
            f"(last error: {self._last_kind}); giving up after --max-outage "
            f"{self._max_outage:.0f} s"
        )
        self._notify()

    async def _wait(self, now: float) -> None:
        """Sleep until the cooldown ends (while open) or the state changes: the probe's
        outcome, or its task ending without one, is a change."""
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        changed = self._changed
        if self._state != "open":
            await asyncio.shield(changed)  # shared by every waiter: one cancel must not spoil it
            return
        timer = asyncio.ensure_future(self._sleep(max(0.0, self._retry_at - now)))
        try:
            await asyncio.wait((changed, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
