"""Adaptive concurrency: how many requests may be on the wire at once.


``AdaptiveConcurrency`` is congestion control applied to an HTTP endpoint. A server that caps
concurrent requests answers the excess with 429 at once, so one slot above its cap turns into
a stream of 429s; too far below it and throughput is wasted. The policy, and why:

- Cut only on signals that mean "too many in flight", judged over the last
  ``AIMD_SIGNAL_WINDOW`` answers. A 429 (or a 503 carrying Retry-After) cuts once such
  throttles are ``AIMD_THROTTLE_SHARE`` of the window; a 503 without Retry-After is as often a
  random server fault as overload, so it cuts only once all throttles together reach
  ``AIMD_OVERLOAD_SHARE``. A cap makes throttles a large share within milliseconds; random,
  load-independent faults (a few percent) almost never reach either share, so they no longer
  drag the limit down: retries deal with them.
- Cut gently: to ``AIMD_DECREASE_FACTOR`` (0.8) of the limit, or to the number of other
  requests on the wire when the throttle came back, whichever is lower (the server refused
  that many). At most one cut per round trip (until the requests in flight at the cut have
  come back) and per ``AIMD_CUT_INTERVAL_S``: a burst of 429s from one overload counts once.
  Halving saw-toothed far below a cap, and additive growth took many round trips to return.
- Remember where the cut happened. Below ``AIMD_RECOVERY_FRACTION`` of that level the limit
  grows by one per success (doubling per round trip, TCP's slow start): the level was fine a
  moment ago. Above it, by one per round trip (additive increase), so the cap is approached
  slowly and overshot by one slot, briefly. Once past the refused level without a throttle,
  the step doubles every round trip (BIC's max probing): after a storm of 429s has cut the
  limit to the floor, it is back in a few round trips, not one slot per round trip (with
  answers that take seconds, that would be minutes). Before any cut, growth is additive from
  ``--concurrency``, as the user asked for that many.
- Never below a floor of ``min(AIMD_MIN_CONCURRENCY, start)``, never above ``maximum``, and
  grow only when the limit actually held a request back (RFC 7661's idea): a limit raised while
  the engine has little work overshoots when work returns.

Under a cap of 64 this settles into a short cycle between about 0.9x and 1x of the cap with a
handful of 429s per cycle; see ``bench --only limit``.

The limiter reads a clock (the event loop's by default, like aiolimiter); its policy is plain
arithmetic over outcomes and clock readings, so tests feed it outcomes and time by hand. It is
O(1) per request and allocation-free on the fast path.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Literal

from dscall.config import (
    AIMD_CUT_INTERVAL_S,
    AIMD_DECREASE_FACTOR,
    AIMD_MIN_CONCURRENCY,
    AIMD_OVERLOAD_SHARE,
    AIMD_RECOVERY_FRACTION,
    AIMD_SIGNAL_WINDOW,
    AIMD_THROTTLE_SHARE,
)
from dscall.errors import UsageError

# "throttled": 429, or 503 with Retry-After (the server says: too many). "overloaded": 503
# without Retry-After (maybe overload, maybe a fault). "error": anything else that failed.
Outcome = Literal["ok", "throttled", "overloaded", "error"]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# Codes in the signal window.
_OK, _THROTTLED, _OVERLOADED = 0, 1, 2


def loop_time() -> float:
    return asyncio.get_running_loop().time()


class AdaptiveConcurrency:
    """A FIFO slot limiter whose limit moves between ``minimum`` and ``maximum`` (see the
    module docstring for the policy).

    A freed slot is handed straight to the oldest waiter (no barging), so a request never
    waits behind one that arrived later. When the limit drops below ``in_flight``, nobody new
    starts until enough requests finish.
    """

    __slots__ = (
        "_ceiled",
        "_clock",
        "_cut_at",
        "_drain",
        "_fast_until",
        "_in_flight",
        "_limit",
        "_need_overloaded",
        "_need_throttled",
        "_overloaded",
        "_pos",
        "_refused",
        "_ring",
        "_saturated",
        "_step",
        "_successes",
        "_throttled",
        "_waiters",
        "_waiting",
        "cuts",
        "maximum",
        "minimum",
    )

    def __init__(
        self,
        start: int,
        maximum: int,
        minimum: int | None = None,
        clock: Clock | None = None,
        window: int = AIMD_SIGNAL_WINDOW,
    ) -> None:
        if minimum is None:
            minimum = max(1, min(AIMD_MIN_CONCURRENCY, start, maximum))
        if minimum < 1 or maximum < minimum:
            raise UsageError(
                f"concurrency bounds must satisfy 1 <= minimum <= maximum, got {minimum}..{maximum}"
            )
        if window < 1:
            raise UsageError(f"the throttle window must hold at least one answer, got {window}")
        self.minimum = minimum
        self.maximum = maximum
        self._limit = min(max(start, minimum), maximum)
        self._clock = clock if clock is not None else loop_time
        self._in_flight = 0
        self._waiting = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._successes = 0
        # Set when the limit held a request back since the last increase: grow only then.
        self._saturated = False
        # Throttle signals are ignored while _drain > 0 (releases still owed by the requests
        # that were in flight at the last cut) or before _cut_at + AIMD_CUT_INTERVAL_S.
        self._drain = 0
        self._cut_at = float("-inf")
        # Set by a cut: the level the server refused, below which (times
        # AIMD_RECOVERY_FRACTION) the limit grows by one per success; 0 = no cut yet.
        self._refused = 0
        self._fast_until = 0
        # Additive step per round trip: 1, doubling once the limit has passed _refused.
        self._step = 1
        # The limit a lowered ceiling cut it from (0: none): raised again, the limit goes back
        # there at once, since the ceiling cut it, not the endpoint. A throttle's cut forgets it.
        self._ceiled = 0
        # The last `window` answers as _OK/_THROTTLED/_OVERLOADED codes, with running counts.
        self._ring = bytearray(window)
        self._pos = 0
        self._throttled = 0
        self._overloaded = 0
        self._need_throttled = max(1, math.ceil(AIMD_THROTTLE_SHARE * window))
        self._need_overloaded = max(1, math.ceil(AIMD_OVERLOAD_SHARE * window))
        self.cuts = 0  # cuts on this limiter's own throttles (a cluster tells the others)

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        return self._waiting

    async def acquire(self) -> None:
        """Wait for a slot under the current limit; cancelling the wait never leaks one."""
        if self._waiting == 0 and self._in_flight < self._limit:
            self._in_flight += 1
            if self._in_flight == self._limit:
                self._saturated = True
            return
        self._saturated = True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._waiting += 1
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                # The slot was handed over just as we were cancelled: pass it on.
                self._free_slot()
            else:
                fut.cancel()  # left in the deque; _wake skips it, keeping cancel O(1)
                self._waiting -= 1
                if self._waiting == 0:
                    self._waiters.clear()  # only cancelled ones are left
            raise

    def try_acquire(self) -> bool:
        """Take a slot if one is free now, without waiting (a router choosing among several
        endpoints). A refusal counts as the limit holding a request back."""
        if self._waiting == 0 and self._in_flight < self._limit:
            self._in_flight += 1
            if self._in_flight == self._limit:
                self._saturated = True
            return True
        self._saturated = True
        return False

    def release(self, outcome: Outcome) -> None:
        """Give the slot back and tell the limiter how the request went."""
        self._in_flight -= 1
        if self._drain > 0:
            self._drain -= 1
        if outcome == "ok":
            self._push(_OK)
            self._grow()
        elif outcome == "throttled":
            self._push(_THROTTLED)
            if self._throttled >= self._need_throttled:
                self._cut()
        elif outcome == "overloaded":
            self._push(_OVERLOADED)
            if self._throttled + self._overloaded >= self._need_overloaded:
                self._cut()
        else:
            self._push(_OK)  # an answer, but no sign of too many in flight
        if self._waiting:
            self._wake()

    def set_maximum(self, maximum: int) -> None:
        """Move the ceiling (a shard's share of a cluster-wide limit, ``dscall.executors``).
        Lowered below the limit, the limit follows it down (below ``in_flight``, nobody new
        starts until enough requests finish). Raised again, the limit returns at once to where
        the ceiling found it, no higher: the endpoint never refused that level, so it is not
        probed again one slot per round trip. Above it, growth is the policy's as before."""
        maximum = max(1, maximum)
        self.maximum = maximum
        self.minimum = min(self.minimum, maximum)
        if self._limit > maximum:
            self._ceiled = max(self._ceiled, self._limit)
            self._limit = maximum
        elif self._ceiled > self._limit:
            self._limit = min(self._ceiled, maximum)
            if self._waiting:
                self._wake()

    def peer_cut(self) -> None:
        """Another shard of the run was throttled by the same endpoint: cut as if this one
        had been (the same once-per-round-trip and interval rules hold)."""
        self._cut(own=False)

    def cancel_slot(self) -> None:
        """Give back a slot that was acquired but never used (no outcome to learn from)."""
        self._free_slot()

    def _push(self, code: int) -> None:
        ring, pos = self._ring, self._pos
        old = ring[pos]
        if old != code:
            if old == _THROTTLED:
                self._throttled -= 1
            elif old == _OVERLOADED:
                self._overloaded -= 1
            if code == _THROTTLED:
                self._throttled += 1
            elif code == _OVERLOADED:
                self._overloaded += 1
            ring[pos] = code
        self._pos = pos + 1 if pos + 1 < len(ring) else 0

    def _grow(self) -> None:
        if not self._saturated or self._limit >= self.maximum:
            return
        if self._limit < self._fast_until:
            self._limit += 1  # back towards a level that was fine a moment ago
            self._saturated = False
            return
        self._successes += 1
        if self._successes >= self._limit:
            self._successes = 0
            self._limit = min(self.maximum, self._limit + self._step)
            self._saturated = False
            if self._refused and self._limit > self._refused:
                # Clear of the level refused last time, and a whole round trip without a
                # throttle: whatever refused it has eased (a storm that passed), probe faster.
                self._step *= 2

    def _cut(self, own: bool = True) -> None:
        if self._drain > 0:
            return
        now = self._clock()
        if now < self._cut_at + AIMD_CUT_INTERVAL_S:
            return
        if own:
            self.cuts += 1
        # The throttled request has left _in_flight: what remains is what the server took.
        refused = min(self._limit, self._in_flight + 1)
        new = max(self.minimum, min(int(self._limit * AIMD_DECREASE_FACTOR), self._in_flight))
        self._cut_at = now
        self._drain = self._in_flight
        self._successes = 0
        self._limit = new
        self._ceiled = 0  # the endpoint refused: a level from before a ceiling is no guide
        self._refused = refused
        self._step = 1
        self._fast_until = max(self._limit, int(refused * AIMD_RECOVERY_FRACTION))
        # Fresh evidence for the next cut: the window starts over.
        self._ring[:] = bytes(len(self._ring))
        self._throttled = self._overloaded = 0

    def _free_slot(self) -> None:
        self._in_flight -= 1
        if self._waiting:
            self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters and self._in_flight < self._limit:
            fut = waiters.popleft()
            if fut.cancelled():
                continue
            fut.set_result(None)
            self._in_flight += 1
            self._waiting -= 1
        if self._waiting:
            self._saturated = True  # the limit is holding requests back
