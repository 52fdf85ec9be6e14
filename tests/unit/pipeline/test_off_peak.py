"""``--off-peak wait`` with a fake clock: waiting at peak, pausing when peak begins (calls in
flight finish), resuming at the next off-peak hour, stopping while waiting."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from dscall.calls.backend import HandlerBackend
from dscall.calls.breaker import CircuitBreaker
from dscall.calls.caller import ChunkCaller, RequestContext
from dscall.calls.limits import CallLimits
from dscall.calls.router import one_endpoint
from dscall.errors import Interrupted, RunStopped, UsageError
from dscall.pipeline.off_peak import OffPeakGate
from dscall.pricing import PriceTable, load_prices
from dscall.stats import RunStats
from dscall.types import CallRequest, CallResponse, Usage

# DeepSeek's peak hours (the bundled price table): 01:00-04:00 and 06:00-10:00 UTC, Mon-Fri.
MONDAY = datetime(2026, 12, 7, tzinfo=timezone.utc)


def at(hour: int, minute: int = 0) -> float:
    return MONDAY.replace(hour=hour, minute=minute).timestamp()


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds
        await asyncio.sleep(0)


def gate(clock: FakeClock, lines: list[str], stats: RunStats | None = None) -> OffPeakGate:
    return OffPeakGate(
        load_prices(), stats or RunStats(), lines.append, clock=clock, sleep=clock.sleep
    )


def never_stop() -> RunStopped | None:
    return None


async def test_off_peak_passes_at_once() -> None:
    clock, lines = FakeClock(at(0, 30)), []
    await gate(clock, lines).wait(never_stop)
    assert clock.slept == 0
    assert lines == []


async def test_at_peak_waits_until_it_ends_and_says_until_when() -> None:
    clock, lines = FakeClock(at(2)), []
    stats = RunStats()
    opened = gate(clock, lines, stats)
    await asyncio.gather(*(opened.wait(never_stop) for _ in range(50)))
    assert clock.now == at(4)  # every waiter released when peak ended, not before
    assert len(lines) == 2
    assert "04:00 UTC" in lines[0]
    assert "local" in lines[0]
    assert lines[1] == "off-peak: sending again"
    assert stats.off_peak_wait_until is None


async def test_a_stop_ends_the_wait() -> None:
    clock, lines = FakeClock(at(7)), []
    opened = gate(clock, lines)
    stop: list[RunStopped] = []
    waiting = asyncio.ensure_future(opened.wait(lambda: stop[0] if stop else None))
    await asyncio.sleep(0)
    stop.append(Interrupted("interrupted"))
    with pytest.raises(Interrupted):
        await waiting
    assert clock.now < at(10)


async def test_calls_in_flight_finish_when_peak_begins_and_the_rest_resume_after() -> None:
    clock = FakeClock(at(0, 59))
    sent_at: list[float] = []

    async def slow(_: CallRequest) -> CallResponse:
        sent_at.append(clock.now)
        await clock.sleep(120)  # on the wire across 01:00, when peak begins
        return CallResponse("ok", "stop", "m", Usage(1, 1, 0, 1))

    lines: list[str] = []
    router = one_endpoint(
        HandlerBackend(slow), CallLimits(1, 1), CircuitBreaker(asyncio.get_running_loop().time)
    )
    caller = ChunkCaller(router, RunStats(), 0, gate=gate(clock, lines))
    requests = [CallRequest(b"%d" % n, f"{n:064x}", "m", 1, 1, False) for n in range(3)]
    outcomes = await asyncio.gather(
        *(caller.call(r, RequestContext("a.txt", n)) for n, r in enumerate(requests))
    )
    assert all(o.response is not None for o in outcomes)
    assert sent_at[0] == at(0, 59)  # went out before peak and finished during it
    assert all(when >= at(4) for when in sent_at[1:])  # the others waited for 04:00
    assert any("04:00 UTC" in line for line in lines)


def test_a_table_without_peak_hours_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="needs peak hours"):
        OffPeakGate(PriceTable({}, None), RunStats(), print)
