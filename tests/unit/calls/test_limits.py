from __future__ import annotations

import asyncio

import pytest

from dscall.calls.limits import AdaptiveConcurrency, CallLimits, TokenBucket
from dscall.config import AIMD_CUT_INTERVAL_S, AIMD_DECREASE_FACTOR
from dscall.errors import UsageError
from tests.unit.calls.conftest import FakeTime


async def _fill(limiter: AdaptiveConcurrency, n: int) -> None:
    for _ in range(n):
        await limiter.acquire()


# --- AdaptiveConcurrency: AIMD ----------------------------------------------------------------


async def test_burst_of_429s_cuts_once_not_to_the_floor(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(20, 64, clock=fake_time.clock)
    await _fill(limiter, 20)
    for _ in range(20):  # the whole wave comes back throttled
        limiter.release("throttled")
    assert limiter.limit == int(20 * AIMD_DECREASE_FACTOR) == 10
    assert limiter.in_flight == 0


async def test_next_wave_cuts_again_after_drain_and_interval(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(20, 64, clock=fake_time.clock)
    await _fill(limiter, 20)
    for _ in range(20):
        limiter.release("throttled")
    assert limiter.limit == 10
    fake_time.now += AIMD_CUT_INTERVAL_S
    await _fill(limiter, 10)
    for _ in range(10):
        limiter.release("throttled")
    assert limiter.limit == int(10 * AIMD_DECREASE_FACTOR) == 5


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [(0.0, 10), (AIMD_CUT_INTERVAL_S / 2, 10), (AIMD_CUT_INTERVAL_S, 5)],
)
async def test_second_cut_needs_the_time_window(
    fake_time: FakeTime, elapsed: float, expected: int
) -> None:
    limiter = AdaptiveConcurrency(20, 64, clock=fake_time.clock)
    await limiter.acquire()
    limiter.release("throttled")  # nothing else in flight: the drain is over at once
    assert limiter.limit == 10
    fake_time.now += elapsed
    await limiter.acquire()
    limiter.release("throttled")
    assert limiter.limit == expected


@pytest.mark.parametrize(("start", "expected"), [(1, 1), (2, 1), (3, 1), (10, 5), (100, 50)])
async def test_cut_table_never_below_minimum(
    fake_time: FakeTime, start: int, expected: int
) -> None:
    limiter = AdaptiveConcurrency(start, 256, clock=fake_time.clock)
    await limiter.acquire()
    limiter.release("throttled")
    assert limiter.limit == expected


async def test_minimum_is_respected(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(10, 20, minimum=6, clock=fake_time.clock)
    for _ in range(5):
        await limiter.acquire()
        limiter.release("throttled")
        fake_time.now += AIMD_CUT_INTERVAL_S
    assert limiter.limit == 6


async def test_recovers_additively_about_one_per_round_trip(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(4, 64, clock=fake_time.clock)
    history = []
    for _ in range(5):  # a saturated workload: each round fills the limit, then all succeed
        n = limiter.limit
        await _fill(limiter, n)
        for _ in range(n):
            limiter.release("ok")
        history.append(limiter.limit)
    assert history == [5, 6, 7, 8, 9]


async def test_never_exceeds_maximum(fake_time: FakeTime) -> None:
    limiter = AdaptiveConcurrency(3, 5, clock=fake_time.clock)
    for _ in range(50):
        n = limiter.limit
        await _fill(limiter, n)
        for _ in range(n):
            limiter.release("ok")
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
    limiter = AdaptiveConcurrency(4, 8, clock=fake_time.clock)
    await _fill(limiter, 4)
    limiter.release("throttled")  # limit 4 -> 2 with 3 still in flight
    assert (limiter.limit, limiter.in_flight) == (2, 3)
    waiter = asyncio.create_task(limiter.acquire())
    await fake_time.settle()
    limiter.release("error")  # 2 in flight: still not under the limit
    await fake_time.settle()
    assert not waiter.done()
    limiter.release("error")
    await fake_time.settle()
    assert waiter.done()
    assert limiter.in_flight == 2


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
    limits.release("throttled")
    assert limits.concurrency.limit == 1
    assert limits.tpm.level == pytest.approx(59_000, rel=1e-3)
