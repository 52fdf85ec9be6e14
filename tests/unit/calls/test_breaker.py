from __future__ import annotations

import asyncio

import pytest

from dscall.calls.breaker import CircuitBreaker
from dscall.errors import EndpointDown
from tests.unit.calls.conftest import FakeTime


def _breaker(fake_time: FakeTime, **kwargs: float) -> CircuitBreaker:
    options: dict[str, float] = {
        "consecutive_failures": 3,
        "window": 10,
        "min_calls": 10,
        "failure_rate": 0.8,
        "cooldown": 5.0,
        "max_cooldown": 15.0,
        "max_outage": 100.0,
    }
    options.update(kwargs)
    return CircuitBreaker(
        fake_time.clock,
        consecutive_failures=int(options["consecutive_failures"]),
        window=int(options["window"]),
        min_calls=int(options["min_calls"]),
        failure_rate=options["failure_rate"],
        cooldown=options["cooldown"],
        max_cooldown=options["max_cooldown"],
        max_outage=options["max_outage"],
        sleep=fake_time.sleep,
    )


# Calls, not the properties: mypy would narrow a property across awaits.
def _state(breaker: CircuitBreaker) -> str:
    return breaker.state


def _open_since(breaker: CircuitBreaker) -> float | None:
    return breaker.open_since


def _feed(breaker: CircuitBreaker, pattern: str) -> None:
    for mark in pattern:
        if mark == "F":
            breaker.record_failure("TransportError")
        else:
            breaker.record_success()


@pytest.mark.parametrize(
    ("pattern", "state"),
    [
        ("", "closed"),
        ("FF", "closed"),
        ("FFF", "open"),  # 3 consecutive failures
        ("SSFFF", "open"),
        ("FFSFF", "closed"),  # a success resets the run
        ("SFFSFFSFF", "closed"),  # never 3 in a row, and 9 calls: under min_calls
        ("FFSFFSFFSFF", "closed"),  # last 10: 7 failures, under 80%
    ],
)
def test_consecutive_table(fake_time: FakeTime, pattern: str, state: str) -> None:
    breaker = _breaker(fake_time)
    _feed(breaker, pattern)
    assert _state(breaker) == state


@pytest.mark.parametrize(
    ("pattern", "state"),
    [
        ("FFFFSFFFF", "closed"),  # 8/9, but only 9 calls seen: under min_calls
        ("FFFFSFFFFF", "open"),  # 9/10
        ("FFFFSFFFFS", "closed"),  # 8/10, but the rate is checked when a failure arrives
        ("FFFFSFFFFSF", "open"),  # last 10 = FFFSFFFFSF: 8/10 reaches 80%
        ("FFFSFFFSFSF", "closed"),  # last 10 = FFSFFFSFSF: 7/10
        ("SSSSSSSSSSFFFFFFF", "closed"),  # last 10 = SSSFFFFFFF: 7/10
        ("SSSSSSSSSSFFFFFFFF", "open"),  # old successes roll out of the window
    ],
)
def test_failure_rate_table(fake_time: FakeTime, pattern: str, state: str) -> None:
    breaker = _breaker(fake_time, consecutive_failures=100)
    _feed(breaker, pattern)
    assert _state(breaker) == state


async def test_closed_is_immediate(fake_time: FakeTime) -> None:
    breaker = _breaker(fake_time)
    await breaker.before_call()
    assert _state(breaker) == "closed"
    assert _open_since(breaker) is None
    assert fake_time.sleeps == []


async def _call(
    breaker: CircuitBreaker,
    log: list[tuple[str, float]],
    name: str,
    fake_time: FakeTime,
    ok: bool | None,
) -> None:
    await breaker.before_call()
    log.append((name, fake_time.now))
    if ok is True:
        breaker.record_success()
    elif ok is False:
        breaker.record_failure("HTTPStatusError")


async def test_one_probe_then_everyone(fake_time: FakeTime) -> None:
    breaker = _breaker(fake_time)
    fake_time.now = 10.0
    _feed(breaker, "FFF")
    assert _state(breaker) == "open"
    assert _open_since(breaker) == 10.0
    log: list[tuple[str, float]] = []
    probe_gate = asyncio.Event()

    async def probe() -> None:
        await breaker.before_call()
        log.append(("probe", fake_time.now))
        await probe_gate.wait()  # the probe request is on the wire
        breaker.record_success()

    tasks = [asyncio.create_task(probe())]
    tasks += [asyncio.create_task(_call(breaker, log, f"w{i}", fake_time, True)) for i in range(3)]
    await fake_time.advance(4.9)
    assert log == []
    await fake_time.advance(0.1)
    assert log == [("probe", 15.0)]  # exactly one goes through after the cooldown
    assert _state(breaker) == "half_open"
    await fake_time.advance(3.0)
    assert len(log) == 1  # the others wait for the probe's answer
    probe_gate.set()
    await fake_time.settle()
    await asyncio.gather(*tasks)
    assert _state(breaker) == "closed"
    assert _open_since(breaker) is None
    assert sorted(log[1:]) == [("w0", 18.0), ("w1", 18.0), ("w2", 18.0)]


async def test_probe_failure_backs_off_exponentially_capped(fake_time: FakeTime) -> None:
    breaker = _breaker(fake_time, max_outage=1000.0)
    _feed(breaker, "FFF")
    probe_times: list[float] = []
    for _ in range(4):
        log: list[tuple[str, float]] = []
        task = asyncio.create_task(_call(breaker, log, "p", fake_time, False))
        while not task.done():
            await fake_time.advance(0.5)
        probe_times.append(log[0][1])
    # cooldown 5, then 10, then 15 (capped), then 15
    assert probe_times == [5.0, 15.0, 30.0, 45.0]
    assert _state(breaker) == "open"
    assert _open_since(breaker) == 0.0  # one outage, however many re-opens


async def test_stray_failures_do_not_count_as_the_probe(fake_time: FakeTime) -> None:
    breaker = _breaker(fake_time)
    _feed(breaker, "FFF")
    gate = asyncio.Event()

    async def probe() -> None:
        await breaker.before_call()
        await gate.wait()
        breaker.record_success()

    task = asyncio.create_task(probe())
    await fake_time.advance(5.0)
    assert _state(breaker) == "half_open"
    breaker.record_failure("AttemptTimeout")  # an old request, sent before it opened
    assert _state(breaker) == "half_open"
    assert breaker.last_failure_kind == "AttemptTimeout"
    gate.set()
    await task
    assert _state(breaker) == "closed"


async def test_any_success_closes(fake_time: FakeTime) -> None:
    breaker = _breaker(fake_time)
    _feed(breaker, "FFF")
    waiter = asyncio.create_task(breaker.before_call())
    await fake_time.advance(1.0)
    assert not waiter.done()
    breaker.record_success()  # an old request got an answer: the endpoint works
    await fake_time.settle()
    assert waiter.done()
    assert _state(breaker) == "closed"
    _feed(breaker, "FF")  # counters were reset on closing
    assert _state(breaker) == "closed"


async def test_cancelled_probe_hands_over_without_penalty(fake_time: FakeTime) -> None:
    breaker = _breaker(fake_time)
    _feed(breaker, "FFF")
    gate = asyncio.Event()
    log: list[tuple[str, float]] = []

    async def probe(name: str) -> None:
        await breaker.before_call()
        log.append((name, fake_time.now))
        await gate.wait()  # on the wire
        breaker.record_success()

    first = asyncio.create_task(probe("first"))
    second = asyncio.create_task(probe("second"))
    await fake_time.advance(6.0)
    assert _state(breaker) == "half_open"
    assert log == [("first", 5.0)]
    first.cancel()  # the probe never reports (Ctrl-C, a 401 stopping the run...)
    await fake_time.settle()
    assert log == [("first", 5.0), ("second", 6.0)]  # it probes at once: no new cooldown
    assert _state(breaker) == "half_open"
    gate.set()
    await second
    assert _state(breaker) == "closed"


async def test_throttled_probe_stays_the_probe(fake_time: FakeTime) -> None:
    breaker = _breaker(fake_time)
    _feed(breaker, "FFF")
    passes: list[float] = []

    async def probe() -> None:
        await breaker.before_call()
        passes.append(fake_time.now)
        # a 429 is not a breaker outcome: the same task retries after its backoff
        await fake_time.sleep(2.0)
        await breaker.before_call()
        passes.append(fake_time.now)
        breaker.record_success()

    task = asyncio.create_task(probe())
    await fake_time.advance(10.0)
    await task
    assert passes == [5.0, 7.0]
    assert _state(breaker) == "closed"


async def test_outage_past_max_raises_endpoint_down_for_all(fake_time: FakeTime) -> None:
    breaker = _breaker(fake_time, max_outage=30.0)
    _feed(breaker, "FFF")

    async def caller() -> None:
        while True:  # every request fails: probes at 5, 15 and 30 s
            await breaker.before_call()
            breaker.record_failure("HTTPStatusError")

    callers = [asyncio.create_task(caller()) for _ in range(4)]
    await fake_time.advance(29.0)
    assert not any(task.done() for task in callers)
    assert _state(breaker) == "open"
    await fake_time.advance(1.0)
    for task in callers:
        assert task.done()
        with pytest.raises(EndpointDown) as info:
            task.result()
        assert "failing for 30 s" in str(info.value)
        assert "last error: HTTPStatusError" in str(info.value)
    with pytest.raises(EndpointDown):
        await breaker.before_call()  # later callers too, at once
    assert _open_since(breaker) == 0.0


async def test_success_after_giving_up_recovers(fake_time: FakeTime) -> None:
    breaker = _breaker(fake_time, max_outage=10.0)
    _feed(breaker, "FFF")
    fake_time.now = 11.0
    await breaker.before_call()  # nobody probed at the deadline: this caller is the last probe
    breaker.record_failure("HTTPStatusError")
    with pytest.raises(EndpointDown):
        await breaker.before_call()
    breaker.record_success()
    await breaker.before_call()
    assert _state(breaker) == "closed"


async def test_cancelled_waiter_leaves_breaker_usable(fake_time: FakeTime) -> None:
    breaker = _breaker(fake_time)
    _feed(breaker, "FFF")
    waiter = asyncio.create_task(breaker.before_call())
    await fake_time.advance(1.0)
    waiter.cancel()
    await fake_time.settle()
    assert waiter.cancelled()
    log: list[tuple[str, float]] = []
    task = asyncio.create_task(_call(breaker, log, "probe", fake_time, True))
    await fake_time.advance(5.0)
    await task
    assert log == [("probe", 5.0)]
    assert _state(breaker) == "closed"


async def test_last_probe_is_at_the_deadline_not_after_it(fake_time: FakeTime) -> None:
    # cooldown 5 then 10: the second probe would be at 15, after the deadline (12).
    breaker = _breaker(fake_time, max_outage=12.0)
    _feed(breaker, "FFF")
    probe_times: list[float] = []
    for _ in range(2):
        log: list[tuple[str, float]] = []
        task = asyncio.create_task(_call(breaker, log, "p", fake_time, False))
        while not task.done():
            await fake_time.advance(0.5)
        if log:
            probe_times.append(log[0][1])
        if task.exception() is not None:
            break
    assert probe_times == [5.0, 12.0]
    with pytest.raises(EndpointDown) as info:
        await breaker.before_call()  # the probe at the deadline failed: now it gives up
    assert "failing for 12 s" in str(info.value)


async def test_endpoint_back_before_the_deadline_is_found_by_the_last_probe(
    fake_time: FakeTime,
) -> None:
    breaker = _breaker(fake_time, max_outage=3.0)  # shorter than the 5 s cooldown
    _feed(breaker, "FFF")
    log: list[tuple[str, float]] = []
    task = asyncio.create_task(_call(breaker, log, "probe", fake_time, True))
    await fake_time.advance(3.0)
    await task
    assert log == [("probe", 3.0)]
    assert _state(breaker) == "closed"


async def test_waiters_wait_for_a_last_probe_still_on_the_wire(fake_time: FakeTime) -> None:
    breaker = _breaker(fake_time, max_outage=5.0)
    _feed(breaker, "FFF")
    gate = asyncio.Event()
    ok = [True]

    async def probe() -> None:
        await breaker.before_call()
        await gate.wait()  # on the wire past the deadline
        if ok[0]:
            breaker.record_success()
        else:
            breaker.record_failure("AttemptTimeout")

    for outcome in (True, False):
        ok[0] = outcome
        prober = asyncio.create_task(probe())
        await fake_time.advance(5.0)
        assert _state(breaker) == "half_open"
        waiters = [asyncio.create_task(breaker.before_call()) for _ in range(3)]
        await fake_time.advance(20.0)
        assert not any(w.done() for w in waiters)  # no giving up while the probe is out
        gate.set()
        await prober
        await fake_time.settle()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        if outcome:
            assert results == [None, None, None]
            assert _state(breaker) == "closed"
            gate.clear()
            fake_time.now = 0.0
            _feed(breaker, "FFF")
        else:
            assert all(isinstance(r, EndpointDown) for r in results)


async def test_may_send_only_when_closed_or_the_probe(fake_time: FakeTime) -> None:
    breaker = _breaker(fake_time)
    assert breaker.may_send()
    _feed(breaker, "FFF")
    assert not breaker.may_send()  # open: a request that passed before must not go out
    seen: list[bool] = []
    gate = asyncio.Event()

    async def probe() -> None:
        await breaker.before_call()
        seen.append(breaker.may_send())
        await gate.wait()  # on the wire
        breaker.record_success()

    task = asyncio.create_task(probe())
    await fake_time.advance(5.0)
    assert seen == [True]
    assert _state(breaker) == "half_open"
    assert not breaker.may_send()  # another task, while the probe is out
    gate.set()
    await task
    assert breaker.may_send()
