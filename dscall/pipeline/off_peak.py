"""``--off-peak wait``: new attempts wait while DeepSeek's peak hours last (SPEC §11).

The gate sits before every attempt (calls/attempt.py), so nothing new goes on the wire at peak
price: requests already in flight when peak begins finish (the endpoint bills them either way),
and dispatch resumes by itself at the next off-peak instant. A run started at peak (from cron,
say) waits; it does not fail. The windows are the price table's ``peak_hours`` (data, like the
prices; ``--prices FILE`` may replace them).

Off-peak, an attempt costs one clock read and one comparison: the gate remembers until when it
is known to be open. At peak, one task sleeps until the window ends (waking every
``POLL_S`` to see whether the run was stopped) and every waiting attempt awaits it. The clock
(epoch seconds) and the sleep are injectable, so tests drive a fake week in milliseconds.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

from dscall.errors import RunStopped, UsageError
from dscall.pricing import PriceTable
from dscall.stats import RunStats

POLL_S = 1.0
StopCheck = Callable[[], RunStopped | None]


def until_label(until: datetime) -> str:
    """``10:00 UTC (11:00 local)``; the date too when it is not today (UTC)."""
    utc = until.astimezone(timezone.utc)
    local = until.astimezone()
    day = "" if utc.date() == datetime.now(timezone.utc).date() else f"{utc:%a %Y-%m-%d} "
    return f"{day}{utc:%H:%M} UTC ({local:%H:%M} local)"


class OffPeakGate:
    def __init__(
        self,
        prices: PriceTable,
        stats: RunStats,
        notify: Callable[[str], None],
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        peak = prices.peak_hours
        if peak is None:
            raise UsageError(
                "--off-peak wait needs peak hours, and the price table has none "
                '("peak_hours": null in --prices)'
            )
        now = datetime.fromtimestamp(clock(), timezone.utc)
        if peak.is_peak(now) and peak.next_change(now) is None:
            raise UsageError("--off-peak wait: the price table's peak hours never end")
        self._peak = peak
        self._stats = stats
        self._notify = notify
        self._clock = clock
        self._sleep = sleep
        self._open_until = -math.inf  # epoch seconds until which it is known to be off-peak
        self._waiting: asyncio.Future[None] | None = None
        self._stop: StopCheck = lambda: None
        self._sleeper: asyncio.Future[None] | None = None

    async def wait(self, stop: StopCheck) -> None:
        """Return at once off-peak; at peak, when it ends. Raises the run's stop reason."""
        if self._clock() < self._open_until:
            return
        while True:
            now = datetime.fromtimestamp(self._clock(), timezone.utc)
            change = self._peak.next_change(now)
            if not self._peak.is_peak(now):
                self._open_until = change.timestamp() if change is not None else math.inf
                if self._stats.off_peak_wait_until is not None:
                    self._stats.off_peak_wait_until = None
                    self._notify("off-peak: sending again")
                return
            assert change is not None  # checked at start: peak always ends
            if self._waiting is None or self._waiting.done():
                self._stop = stop
                self._waiting = asyncio.get_running_loop().create_future()
                label = until_label(change)
                self._stats.off_peak_wait_until = label
                self._notify(
                    f"off-peak wait: peak hours until {label}; new requests wait, requests in "
                    "flight finish"
                )
                self._sleeper = asyncio.ensure_future(
                    self._sleep_until(change.timestamp(), self._waiting)
                )
            await asyncio.shield(self._waiting)

    async def _sleep_until(self, until: float, done: asyncio.Future[None]) -> None:
        try:
            while (left := until - self._clock()) > 0:
                reason = self._stop()
                if reason is not None:
                    done.set_exception(reason)
                    done.exception()  # retrieved: no waiter may be left to look
                    return
                await self._sleep(min(POLL_S, left))
        except BaseException as exc:  # cancelled with the loop: release the waiters
            if not done.done():
                done.set_exception(exc if isinstance(exc, Exception) else RuntimeError("closed"))
                done.exception()
            raise
        if not done.done():
            done.set_result(None)
