"""A clock and a sleep that tests drive by hand: timing is asserted, never waited for."""

from __future__ import annotations

import asyncio
import heapq
import itertools

import pytest


class FakeTime:
    """``clock()`` and ``sleep()`` over virtual time. ``advance(dt)`` moves time forward,
    waking sleepers in deadline order and letting the woken tasks run before going on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(delay, 0.0), next(self._seq), fut))
        await fut

    @property
    def next_deadline(self) -> float | None:
        live = [when for when, _, fut in self._timers if not fut.done()]
        return min(live) if live else None

    async def settle(self) -> None:
        """Let every runnable task run until all are blocked again."""
        for _ in range(50):
            await asyncio.sleep(0)

    async def advance(self, delta: float) -> None:
        target = self.now + delta
        await self.settle()
        while self._timers and self._timers[0][0] <= target:
            when, _, fut = heapq.heappop(self._timers)
            if fut.done():
                continue
            self.now = max(self.now, when)
            fut.set_result(None)
            await self.settle()
        self.now = target
        await self.settle()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()
