"""How fast requests may start, and the one gate the caller goes through.

``TokenBucket`` enforces ``--rpm`` and ``--tpm``; ``CallLimits`` puts them together with the
adaptive concurrency limit (``concurrency.AdaptiveConcurrency``) for the caller. The bucket
reads a clock (the event loop's by default, like aiolimiter) and sleeps through an injectable
``sleep``, so tests drive time instead of waiting for it.
"""

from __future__ import annotations

import asyncio

from dscall.calls.concurrency import AdaptiveConcurrency, Clock, Outcome, Sleep, loop_time
from dscall.config import DEFAULT_MAX_CONCURRENCY, RATE_LIMIT_RECHECK_S
from dscall.errors import UsageError


class TokenBucket:
    """``per_minute`` units a minute, refilled continuously; holds at most ``capacity``
    (default: one minute's worth, like the providers' own buckets). Starts full.

    ``acquire(n)`` waits, FIFO, until ``n`` units are there and takes them. A request larger
    than the whole bucket would never fit: it goes once the bucket is full and leaves it in
    debt, so later requests pay for it and the long-run rate still holds.
    """

    __slots__ = ("_clock", "_level", "_lock", "_queued", "_sleep", "_stamp", "capacity", "rate")

    def __init__(
        self,
        per_minute: float,
        capacity: float | None = None,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if per_minute <= 0:
            raise UsageError(f"a per-minute limit must be positive, got {per_minute}")
        self.rate = per_minute / 60.0  # units per second
        self.capacity = float(capacity if capacity is not None else per_minute)
        self._clock = clock if clock is not None else loop_time
        self._sleep = sleep
        self._level = self.capacity
        self._stamp: float | None = None  # first read of the clock, inside the running loop
        self._lock = asyncio.Lock()  # FIFO: only the head waiter sleeps
        self._queued = 0

    @property
    def level(self) -> float:
        """Units available now (negative while paying off an oversize request)."""
        return self._refill()

    def _refill(self) -> float:
        now = self._clock()
        if self._stamp is not None:
            self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
        self._stamp = now
        return self._level

    async def acquire(self, amount: float = 1.0) -> None:
        need = min(amount, self.capacity)
        if self._queued == 0 and self._refill() >= need:
            self._level -= amount
            return
        self._queued += 1
        try:
            async with self._lock:
                while (level := self._refill()) < need:
                    await self._sleep(min((need - level) / self.rate, RATE_LIMIT_RECHECK_S))
                self._level -= amount
        finally:
            self._queued -= 1

    def set_rate(self, per_minute: float) -> None:
        """A new rate (a shard's share of a cluster-wide one), the bucket one minute of it."""
        self._refill()
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._level = min(self._level, self.capacity)

    def correct(self, reserved: float, actual: float) -> None:
        """Settle a reservation with what was really used: refund or debit the difference."""
        self._refill()
        self._level = min(self.capacity, self._level + reserved - actual)


class CallLimits:
    """Adaptive concurrency plus the optional ``--rpm`` / ``--tpm`` buckets, as one gate.

    A slot is taken first and the buckets after it, so the rate is charged at the moment the
    request goes on the wire, not while it still waits for a slot.
    """

    __slots__ = ("concurrency", "rpm", "tpm")

    def __init__(
        self,
        concurrency: int,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        rpm: int | None = None,
        tpm: int | None = None,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.concurrency = AdaptiveConcurrency(concurrency, max_concurrency, clock=clock)
        self.rpm = TokenBucket(rpm, clock=clock, sleep=sleep) if rpm else None
        self.tpm = TokenBucket(tpm, clock=clock, sleep=sleep) if tpm else None

    async def acquire(self, tokens: int) -> None:
        """Wait for a slot, a request and ``tokens`` tokens (the estimate, settled later)."""
        await self.concurrency.acquire()
        if self.rpm is None and self.tpm is None:
            return
        await self.acquire_rates(tokens)

    def try_slot(self) -> bool:
        """A slot now, or False (``acquire_rates`` next, for the rpm/tpm part)."""
        return self.concurrency.try_acquire()

    async def acquire_rates(self, tokens: int) -> None:
        """With a slot already held: wait for a request and ``tokens`` tokens of the buckets.
        On cancellation or failure the slot is given back too."""
        if self.rpm is None and self.tpm is None:
            return
        took_request = False
        try:
            if self.rpm is not None:
                await self.rpm.acquire(1)
                took_request = True
            if self.tpm is not None:
                await self.tpm.acquire(tokens)
        except BaseException:
            if took_request and self.rpm is not None:
                self.rpm.correct(1, 0)
            self.concurrency.cancel_slot()
            raise

    def cancel(self, tokens: int) -> None:
        """Undo an ``acquire(tokens)`` whose request was never sent: the slot, the request and
        the tokens go back, and the adaptive limit learns nothing."""
        if self.rpm is not None:
            self.rpm.correct(1, 0)
        if self.tpm is not None:
            self.tpm.correct(tokens, 0)
        self.concurrency.cancel_slot()

    def release(self, outcome: Outcome) -> None:
        self.concurrency.release(outcome)

    def settle(self, reserved: int, actual: int) -> None:
        """Correct the ``--tpm`` reservation made by ``acquire`` with the real usage."""
        if self.tpm is not None:
            self.tpm.correct(reserved, actual)
