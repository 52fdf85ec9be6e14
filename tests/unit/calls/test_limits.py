from __future__ import annotations

import asyncio
import heapq
import random
from dataclasses import dataclass

import pytest

from dscall.calls.concurrency import AdaptiveConcurrency, Outcome
from dscall.calls.limits import CallLimits, TokenBucket
from dscall.config import (
    AIMD_CUT_INTERVAL_S,
    AIMD_DECREASE_FACTOR,
    AIMD_RECOVERY_FRACTION,
    AIMD_SIGNAL_WINDOW,
)
from dscall.errors import UsageError
from tests.unit.calls.conftest import FakeTime


async def _fill(limiter: AdaptiveConcurrency, n: int) -> None:
    for _ in range(n):
        await limiter.acquire()


async def _rounds(limiter: AdaptiveConcurrency, rounds: int) -> list[int]:
    """A saturated workload: each round fills the limit, then every request succeeds."""
    history = []
    for _ in range(rounds):
        n = limiter.limit
        await _fill(limiter, n)
        for _ in range(n):
            limiter.release("ok")
        history.append(limiter.limit)
    return history


# --- AdaptiveConcurrency: when to cut ---------------------------------------------------------

NEED_429 = AIMD_SIGNAL_WINDOW // 8  # AIMD_THROTTLE_SHARE of the window
NEED_503 = AIMD_SIGNAL_WINDOW // 4  # AIMD_OVERLOAD_SHARE


async def test_a_429_storm_cuts_once_per_round_trip(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(100, 256, clock=fake_time.clock)
    await _fill(limiter, 100)
    for _ in range(NEED_429 - 1):
        limiter.release("throttled")
    assert limiter.limit == 100  # not yet a sizeable share of the window
    limiter.release("throttled")
    # 0.8 x 100 = 80, and 100 - NEED_429 = 92 others on the wire: the lower, 80.
    assert limiter.limit == int(100 * AIMD_DECREASE_FACTOR) == 80
    for _ in range(100 - NEED_429):  # the rest of the wave: the same overload, counted once
        limiter.release("throttled")
    assert (limiter.limit, limiter.in_flight) == (80, 0)


async def test_cut_to_the_requests_on_the_wire_when_fewer(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(100, 256, clock=fake_time.clock)
    await _fill(limiter, 30)  # the limit was not in use: 30 on the wire
    for _ in range(NEED_429):
        limiter.release("throttled")
    assert limiter.limit == 30 - NEED_429  # what the server still holds, not 0.8 x 100


async def test_next_wave_cuts_again_after_drain_and_interval(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(100, 256, clock=fake_time.clock)
    await _fill(limiter, 100)
    for _ in range(100):
        limiter.release("throttled")
    assert limiter.limit == 80
    fake_time.now += AIMD_CUT_INTERVAL_S
    await _fill(limiter, 80)
    for _ in range(80):
        limiter.release("throttled")
    assert limiter.limit == int(80 * AIMD_DECREASE_FACTOR) == 64


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [(0.0, 16), (AIMD_CUT_INTERVAL_S / 2, 16), (AIMD_CUT_INTERVAL_S, 12)],
)
async def test_second_cut_needs_the_time_window(
    fake_time: FakeTime, elapsed: float, expected: int
) -> None:
    limiter = AdaptiveConcurrency(20, 64, clock=fake_time.clock, window=8)  # 1 throttle cuts
    await _fill(limiter, 20)
    limiter.release("throttled")
    for _ in range(19):  # the drain is over
        limiter.release("error")
    assert limiter.limit == 16
    fake_time.now += elapsed
    await _fill(limiter, 16)
    limiter.release("throttled")
    assert limiter.limit == expected


@pytest.mark.parametrize(
    ("start", "expected"), [(1, 1), (2, 2), (3, 3), (4, 4), (5, 4), (10, 8), (100, 80)]
)
async def test_cut_table_never_below_the_floor(
    fake_time: FakeTime, start: int, expected: int
) -> None:
    # The floor is min(4, start): a limit the user set low is never cut further.
    limiter = AdaptiveConcurrency(start, 256, clock=fake_time.clock, window=8)
    await _fill(limiter, start)
    limiter.release("throttled")
    assert limiter.limit == expected


async def test_explicit_minimum_is_respected(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(10, 20, minimum=6, clock=fake_time.clock, window=8)
    for _ in range(5):
        await _fill(limiter, limiter.limit)
        limiter.release("throttled")
        for _ in range(limiter.in_flight):
            limiter.release("error")
        fake_time.now += AIMD_CUT_INTERVAL_S
    assert limiter.limit == 6


async def test_isolated_429s_and_503s_do_not_cut(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(40, 256, clock=fake_time.clock)
    # One 429 and one 503 (no Retry-After) in every 16 answers: 12.5% faults, spread evenly.
    for _ in range(40):
        await _fill(limiter, limiter.limit - limiter.in_flight)
        for i in range(16):
            outcome: Outcome = "throttled" if i == 0 else "overloaded" if i == 8 else "ok"
            limiter.release(outcome)
            await limiter.acquire()
        fake_time.now += 0.25
    assert limiter.limit >= 40


async def test_a_503_storm_without_retry_after_cuts(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(100, 256, clock=fake_time.clock)
    await _fill(limiter, 100)
    for _ in range(NEED_503 - 1):
        limiter.release("overloaded")
    assert limiter.limit == 100
    limiter.release("overloaded")
    assert limiter.limit == 80


async def test_after_a_cut_grows_fast_back_then_additively(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(50, 256, clock=fake_time.clock, window=8)  # 1 throttle cuts
    await _fill(limiter, 50)
    limiter.release("throttled")  # refused at 50 on the wire
    assert (limiter.limit, limiter.in_flight) == (40, 49)
    backlog = [asyncio.create_task(limiter.acquire()) for _ in range(200)]
    await fake_time.settle()
    history = []
    for _ in range(10):  # the endpoint is fine again; work is waiting
        limiter.release("ok")
        history.append(limiter.limit)
    fast_until = int(50 * AIMD_RECOVERY_FRACTION)  # 45
    assert history == [41, 42, 43, 44, 45, 45, 45, 45, 45, 45]  # one per success, up to 45
    for _ in range(40):  # then one per round trip (45 successes at 45)
        limiter.release("ok")
    assert limiter.limit == fast_until + 1
    for task in backlog:
        task.cancel()
    await asyncio.gather(*backlog, return_exceptions=True)


async def test_recovers_additively_about_one_per_round_trip(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(4, 64, clock=fake_time.clock)
    assert await _rounds(limiter, 5) == [5, 6, 7, 8, 9]  # no cut yet: additive from the start


async def test_never_exceeds_maximum(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(3, 5, clock=fake_time.clock)
    await _rounds(limiter, 50)
    assert limiter.limit == 5


async def test_does_not_grow_while_underused(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(10, 64, clock=fake_time.clock)
    for _ in range(200):  # one request at a time: the limit is not what holds us back
        await limiter.acquire()
        limiter.release("ok")
    assert limiter.limit == 10


async def test_error_outcome_changes_nothing(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(8, 64, clock=fake_time.clock)
    await _fill(limiter, 8)
    for _ in range(8):
        limiter.release("error")
    assert (limiter.limit, limiter.in_flight) == (8, 0)


@pytest.mark.parametrize(("start", "maximum", "expected"), [(0, 5, 1), (9, 5, 5), (3, 5, 3)])
def test_start_is_clamped(start: int, maximum: int, expected: int) -> None:
    assert AdaptiveConcurrency(start, maximum, clock=lambda: 0.0).limit == expected


@pytest.mark.parametrize(("maximum", "minimum"), [(0, 1), (4, 5), (4, 0)])
def test_bad_bounds_are_a_usage_error(maximum: int, minimum: int) -> None:
    with pytest.raises(UsageError):
        AdaptiveConcurrency(1, maximum, minimum=minimum, clock=lambda: 0.0)


# --- AdaptiveConcurrency: whole runs, simulated -------------------------------------------------


@dataclass
class Run:
    rps: float  # answers 200 per second after the warm-up
    share_429: float  # of all answers after the warm-up
    limits: list[tuple[float, int]]  # (time, limit) at every answer after the warm-up


async def _simulate(
    fake_time: FakeTime,
    *,
    start: int,
    requests: int,
    cap: int | None = None,
    p429: float = 0.0,
    p503: float = 0.0,
    latency: float = 0.25,
    warmup: float = 10.0,
    storm: tuple[float, float] | None = None,
) -> Run:
    """Event-driven: a server that answers 429 at once beyond ``cap`` requests in flight, and
    to every request during ``storm``, and 429 / 503 at random with ``p429`` / ``p503``. A 429
    comes back after Retry-After 1 s, a 503 after a backoff under 1 s. There is always more
    work than the limit allows."""
    rng = random.Random(7)
    limiter = AdaptiveConcurrency(start, 256, clock=fake_time.clock)
    events: list[tuple[float, int, str]] = []
    seq = 0
    ready, done, on_server = requests, 0, 0
    ok = throttled = answered = 0
    limits: list[tuple[float, int]] = []
    while done < requests:
        while ready and limiter.in_flight < limiter.limit:
            ready -= 1
            await limiter.acquire()  # under the limit, nobody waiting: at once
            draw = rng.random()
            stormy = storm is not None and storm[0] <= fake_time.now < storm[1]
            if stormy or (cap is not None and on_server >= cap):
                kind, delay = "429", 0.002
            elif draw < p429:
                kind, delay = "429", latency
            elif draw < p429 + p503:
                kind, delay = "503", latency
            else:
                kind, delay = "200", latency * rng.uniform(0.9, 1.1)
                on_server += 1
            heapq.heappush(events, (fake_time.now + delay, seq, kind))
            seq += 1
        when, _, kind = heapq.heappop(events)
        fake_time.now = when
        if kind == "retry":
            ready += 1
            continue
        after = when >= warmup
        answered += after
        limits += [(when, limiter.limit)] if after else []
        if kind == "200":
            on_server -= 1
            done += 1
            ok += after
            limiter.release("ok")
            continue
        throttled += after and kind == "429"
        limiter.release("throttled" if kind == "429" else "overloaded")
        backoff = rng.uniform(1.0, 1.1) if kind == "429" else rng.uniform(0.0, 1.0)
        heapq.heappush(events, (when + backoff, seq, "retry"))
        seq += 1
    return Run(ok / (fake_time.now - warmup), throttled / answered, limits)


async def test_a_persistent_cap_converges_near_it(fake_time: FakeTime) -> None:
    run = await _simulate(fake_time, start=256, requests=6000, cap=64)
    capacity = 64 / 0.25
    assert run.rps >= 0.9 * capacity
    assert run.share_429 < 0.05
    limits = [limit for _, limit in run.limits]
    assert min(limits) >= 0.8 * 64
    assert max(limits) <= 64 + 2
    assert sum(limits) / len(limits) >= 0.9 * 64


async def test_random_faults_do_not_collapse_the_limit(fake_time: FakeTime) -> None:
    # Load-independent faults: 3% 429, 5% 503 without Retry-After, no cap at all.
    run = await _simulate(
        fake_time, start=32, requests=20_000, p429=0.03, p503=0.05, latency=0.05, warmup=1.0
    )
    assert min(limit for _, limit in run.limits) >= 32
    assert run.limits[-1][1] > 32  # the work kept it busy: it grew


async def test_recovers_after_a_429_storm(fake_time: FakeTime) -> None:
    run = await _simulate(fake_time, start=64, requests=8000, storm=(5.0, 8.0), warmup=5.0)
    during = [limit for t, limit in run.limits if t < 8.0]
    after = [limit for t, limit in run.limits if t >= 12.0]
    assert min(during) <= 8  # every answer a 429: cut, round trip after round trip
    assert min(after) >= 64  # 4 s later it is back where it was, and beyond


# --- AdaptiveConcurrency: queueing -----------------------------------------------------------


async def test_fifo_and_no_barging(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(1, 1, clock=fake_time.clock)
    await limiter.acquire()
    order: list[str] = []

    async def worker(name: str) -> None:
        await limiter.acquire()
        order.append(name)

    tasks = [asyncio.create_task(worker(name)) for name in "abcd"]
    await fake_time.settle()
    assert limiter.waiting == 4
    for expected in (["a"], ["a", "b"], ["a", "b", "c"]):
        limiter.release("error")
        # a newcomer arriving right after a release queues behind the woken waiter
        late = asyncio.create_task(worker("late"))
        await fake_time.settle()
        assert order == expected
        late.cancel()
        await asyncio.gather(late, return_exceptions=True)
    limiter.release("error")
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c", "d"]
    assert (limiter.in_flight, limiter.waiting) == (1, 0)


async def test_limit_below_in_flight_blocks_new_starts(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(10, 16, clock=fake_time.clock, window=8)  # 1 throttle cuts
    await _fill(limiter, 10)
    limiter.release("throttled")  # limit 10 -> 8 with 9 still in flight
    assert (limiter.limit, limiter.in_flight) == (8, 9)
    waiter = asyncio.create_task(limiter.acquire())
    await fake_time.settle()
    limiter.release("error")  # 8 in flight: still not under the limit
    await fake_time.settle()
    assert not waiter.done()
    limiter.release("error")
    await fake_time.settle()
    assert waiter.done()
    assert limiter.in_flight == 8


async def test_cancelled_waiter_leaks_nothing(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(1, 1, clock=fake_time.clock)
    await limiter.acquire()
    doomed = asyncio.create_task(limiter.acquire())
    survivor = asyncio.create_task(limiter.acquire())
    await fake_time.settle()
    assert limiter.waiting == 2
    doomed.cancel()
    await fake_time.settle()
    assert limiter.waiting == 1
    limiter.release("ok")
    await survivor
    assert (limiter.in_flight, limiter.waiting) == (1, 0)
    limiter.release("ok")
    assert limiter.in_flight == 0


async def test_sole_waiter_cancelled_then_fast_path(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(1, 1, clock=fake_time.clock)
    await limiter.acquire()
    for _ in range(3):
        doomed = asyncio.create_task(limiter.acquire())
        await fake_time.settle()
        doomed.cancel()
        await fake_time.settle()
    assert limiter.waiting == 0
    limiter.release("ok")
    await limiter.acquire()  # no stale waiter stands in the way
    assert (limiter.in_flight, limiter.waiting) == (1, 0)


async def test_cancel_after_handoff_passes_the_slot_on(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(1, 1, clock=fake_time.clock)
    await limiter.acquire()
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await fake_time.settle()
    limiter.release("ok")  # hands the slot to `first`...
    first.cancel()  # ...which is cancelled before it gets to run
    await fake_time.settle()
    assert first.cancelled()
    assert second.done()  # the slot went on to the next in line
    assert (limiter.in_flight, limiter.waiting) == (1, 0)


async def test_raised_limit_wakes_extra_waiters(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(2, 4, clock=fake_time.clock)
    await _fill(limiter, 2)
    waiters = [asyncio.create_task(limiter.acquire()) for _ in range(3)]
    await fake_time.settle()
    limiter.release("ok")
    limiter.release("ok")  # 2 successes at limit 2: limit 3, so three waiters may start
    await fake_time.settle()
    assert limiter.limit == 3
    assert sum(w.done() for w in waiters) == 3
    assert limiter.in_flight == 3


# --- TokenBucket -----------------------------------------------------------------------------


async def _acquire_times(
    fake_time: FakeTime, bucket: TokenBucket, amounts: list[float], horizon: float
) -> list[float]:
    times: list[float] = []

    async def one(amount: float) -> None:
        await bucket.acquire(amount)
        times.append(fake_time.now)

    tasks = [asyncio.create_task(one(a)) for a in amounts]
    await fake_time.advance(horizon)
    assert all(t.done() for t in tasks)
    return times


async def test_rpm_burst_then_even_spacing(fake_time: FakeTime) -> None:
    bucket = TokenBucket(60, clock=fake_time.clock, sleep=fake_time.sleep)
    times = await _acquire_times(fake_time, bucket, [1] * 63, horizon=10)
    assert times[:60] == [0.0] * 60  # a full minute's bucket to start with
    assert times[60:] == pytest.approx([1.0, 2.0, 3.0])


async def test_rpm_with_small_capacity_spaces_every_request(fake_time: FakeTime) -> None:
    bucket = TokenBucket(120, capacity=1, clock=fake_time.clock, sleep=fake_time.sleep)
    times = await _acquire_times(fake_time, bucket, [1] * 5, horizon=10)
    assert times == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])


async def test_tpm_correction_refunds_and_debits(fake_time: FakeTime) -> None:
    bucket = TokenBucket(1000, clock=fake_time.clock, sleep=fake_time.sleep)
    await bucket.acquire(800)
    assert bucket.level == pytest.approx(200)
    bucket.correct(800, 300)  # used less than reserved
    assert bucket.level == pytest.approx(700)
    bucket.correct(100, 400)  # used more than reserved
    assert bucket.level == pytest.approx(400)
    bucket.correct(5000, 0)  # a refund cannot overfill the bucket
    assert bucket.level == pytest.approx(1000)


async def test_refund_lets_a_waiter_go_early(fake_time: FakeTime) -> None:
    bucket = TokenBucket(60, clock=fake_time.clock, sleep=fake_time.sleep)
    await bucket.acquire(60)
    waiter = asyncio.create_task(bucket.acquire(30))  # would need 30 s of refill
    await fake_time.advance(0.5)
    bucket.correct(60, 20)  # the first request used 20, not 60
    await fake_time.advance(1.0)
    assert waiter.done()
    assert bucket.level == pytest.approx(60 - 20 + 1.5 - 30)


async def test_oversize_request_goes_when_full_and_leaves_debt(fake_time: FakeTime) -> None:
    bucket = TokenBucket(600, clock=fake_time.clock, sleep=fake_time.sleep)  # 10 tokens/s
    await bucket.acquire(100)
    times = await _acquire_times(fake_time, bucket, [2000, 100], horizon=400)
    # 2000 > the whole bucket: it waits until the bucket is full again (10 s), then goes,
    # and the next request waits out the debt: 1400 + 100 tokens at 10/s = 150 s.
    assert times == pytest.approx([10.0, 160.0])


async def test_bucket_is_fifo(fake_time: FakeTime) -> None:
    bucket = TokenBucket(60, clock=fake_time.clock, sleep=fake_time.sleep)
    await bucket.acquire(60)
    order: list[str] = []

    async def one(name: str, amount: float) -> None:
        await bucket.acquire(amount)
        order.append(name)

    big = asyncio.create_task(one("big", 10))
    await fake_time.settle()
    small = asyncio.create_task(one("small", 1))
    await fake_time.advance(1.0)  # 1 token: enough for `small`, but it must not overtake
    assert order == []
    await fake_time.advance(30.0)
    await asyncio.gather(big, small)
    assert order == ["big", "small"]


async def test_cancelled_bucket_wait_takes_nothing(fake_time: FakeTime) -> None:
    bucket = TokenBucket(60, clock=fake_time.clock, sleep=fake_time.sleep)
    await bucket.acquire(60)
    waiter = asyncio.create_task(bucket.acquire(30))
    await fake_time.advance(5.0)
    waiter.cancel()
    await fake_time.settle()
    assert bucket.level == pytest.approx(5.0)
    await bucket.acquire(5)  # the fast path works again: nobody is queued
    assert bucket.level == pytest.approx(0.0)


def test_bucket_rejects_non_positive_rate() -> None:
    with pytest.raises(UsageError):
        TokenBucket(0, clock=lambda: 0.0)


# --- CallLimits ------------------------------------------------------------------------------


async def test_call_limits_without_buckets(fake_time: FakeTime) -> None:
    limits = CallLimits(2, 4, clock=fake_time.clock, sleep=fake_time.sleep)
    await limits.acquire(10_000)
    limits.settle(10_000, 5)  # no --tpm: nothing to settle, and no error
    assert limits.concurrency.in_flight == 1
    limits.release("ok")
    assert limits.concurrency.in_flight == 0
    assert limits.rpm is None
    assert limits.tpm is None


async def test_call_limits_charges_rpm_and_tpm(fake_time: FakeTime) -> None:
    limits = CallLimits(8, 8, rpm=60, tpm=6000, clock=fake_time.clock, sleep=fake_time.sleep)
    assert limits.rpm is not None
    assert limits.tpm is not None
    await limits.acquire(1000)
    assert limits.rpm.level == pytest.approx(59)
    assert limits.tpm.level == pytest.approx(5000)
    limits.settle(1000, 400)
    assert limits.tpm.level == pytest.approx(5600)


async def test_call_limits_cancelled_in_bucket_returns_slot_and_request(
    fake_time: FakeTime,
) -> None:
    limits = CallLimits(8, 8, rpm=60, tpm=600, clock=fake_time.clock, sleep=fake_time.sleep)
    assert limits.rpm is not None
    assert limits.tpm is not None
    await limits.acquire(600)  # empties the tpm bucket
    waiter = asyncio.create_task(limits.acquire(300))
    await fake_time.advance(0.5)
    assert limits.concurrency.in_flight == 2  # the waiter holds a slot while the tpm refills
    assert limits.rpm.level == pytest.approx(58.5)
    waiter.cancel()
    await fake_time.settle()
    assert limits.concurrency.in_flight == 1
    assert limits.rpm.level == pytest.approx(59.5)  # its request was given back


async def test_default_clock_is_the_running_loop() -> None:
    limits = CallLimits(2, 4, rpm=600, tpm=60_000)
    assert limits.rpm is not None
    assert limits.tpm is not None
    await limits.acquire(1000)  # full buckets: no waiting, and the loop's clock is readable
    limits.release("throttled")  # one 429 alone is no sign of overload
    assert limits.concurrency.limit == 2
    assert limits.tpm.level == pytest.approx(59_000, rel=1e-3)


async def test_call_limits_cancel_gives_everything_back(fake_time: FakeTime) -> None:
    limits = CallLimits(8, 8, rpm=60, tpm=6000, clock=fake_time.clock, sleep=fake_time.sleep)
    assert limits.rpm is not None
    assert limits.tpm is not None
    await limits.acquire(1000)
    limits.cancel(1000)  # never sent (the breaker opened while it waited for its slot)
    assert limits.concurrency.in_flight == 0
    assert limits.rpm.level == pytest.approx(60)
    assert limits.tpm.level == pytest.approx(6000)
    assert limits.concurrency.limit == 8


# --- moved by a cluster's limit board (dscall.executors.limit_board) --------------------------


async def test_a_lowered_maximum_holds_new_requests_until_the_wire_drains(
    fake_time: FakeTime,
) -> None:
    limiter = AdaptiveConcurrency(8, 8, clock=fake_time.clock)
    await _fill(limiter, 8)
    limiter.set_maximum(3)
    assert (limiter.limit, limiter.maximum) == (3, 3)
    assert not limiter.try_acquire()
    for _ in range(6):
        limiter.release("ok")
    assert limiter.in_flight == 2
    assert limiter.try_acquire()
    assert not limiter.try_acquire()
    limiter.set_maximum(16)  # raised: back at once to where the ceiling found it, no higher
    assert (limiter.limit, limiter.maximum) == (8, 16)


async def test_a_raised_maximum_gives_back_what_the_ceiling_took_and_wakes_the_waiters(
    fake_time: FakeTime,
) -> None:
    # A shard whose share the board cut while its input was ramping up, then gave back: it
    # runs at its old level at once, not one slot per round trip (that took a 5,000-call run
    # of two shards from 4.7 s to 10 s).
    limiter = AdaptiveConcurrency(128, 256, clock=fake_time.clock)
    limiter.set_maximum(25)
    assert limiter.limit == 25
    await _fill(limiter, 25)
    waiting = [asyncio.ensure_future(limiter.acquire()) for _ in range(50)]
    await asyncio.sleep(0)
    assert limiter.waiting == 50
    limiter.set_maximum(100)
    await asyncio.sleep(0)
    assert (limiter.limit, limiter.in_flight, limiter.waiting) == (100, 75, 0)
    assert all(task.done() for task in waiting)
    limiter.set_maximum(200)  # above the old level: only the policy's growth goes there
    assert limiter.limit == 128


async def test_a_throttle_after_a_lowered_maximum_forgets_the_level_before_it(
    fake_time: FakeTime,
) -> None:
    limiter = AdaptiveConcurrency(100, 256, clock=fake_time.clock)
    limiter.set_maximum(50)
    await _fill(limiter, 50)
    for _ in range(NEED_429):
        limiter.release("throttled")
    cut = limiter.limit
    assert cut < 50
    assert limiter.cuts == 1
    limiter.set_maximum(256)  # the endpoint refused: the level from before the ceiling is gone
    assert limiter.limit == cut


async def test_a_peer_cut_cuts_once_and_is_not_counted_as_its_own(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(100, 256, clock=fake_time.clock)
    await _fill(limiter, 100)
    limiter.peer_cut()
    assert limiter.limit == 80
    limiter.peer_cut()  # the same round trip: no second cut
    assert (limiter.limit, limiter.cuts) == (80, 0)
    for _ in range(100):
        limiter.release("ok")
    fake_time.now += 60
    await _fill(limiter, 80)
    for _ in range(NEED_429):
        limiter.release("throttled")
    assert limiter.cuts == 1


async def test_a_bucket_takes_a_new_rate(fake_time: FakeTime) -> None:
    bucket = TokenBucket(600, clock=fake_time.clock, sleep=fake_time.sleep)
    await bucket.acquire(100)
    bucket.set_rate(60)
    assert (bucket.capacity, bucket.level) == (60.0, 60.0)  # never more than a minute of it
    await bucket.acquire(60)
    fake_time.now += 30
    assert bucket.level == pytest.approx(30.0)
