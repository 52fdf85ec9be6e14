"""Leases of cross-process single flight: take, wait, renew, expire, take over a dead holder,
release in the answer's transaction, and what `cache stats|clear` make of them."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dscall.calls.cache import ResultCache
from dscall.calls.cache_maintenance import cache_stats, clear_cache
from dscall.calls.lease_store import LeaseHolder, holder_gone, live_leases, this_process
from dscall.errors import Interrupted
from dscall.types import CallResponse, Usage

RESPONSE = CallResponse("the answer", "stop", "m", Usage(10, 5, 0, 10), status=200)
REPO = Path(__file__).resolve().parents[2]
POLL_S = 0.05


def key(i: int) -> str:
    return f"{i:064x}"


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def handles(cache_dir: Path) -> Iterator[Callable[..., ResultCache]]:
    """Open handles on one store (each is a holder of its own, as another run would be)."""
    opened: list[ResultCache] = []

    def open_one(**kwargs: Any) -> ResultCache:
        cache = ResultCache(cache_dir, "default", lease_poll_s=POLL_S, **kwargs)
        opened.append(cache)
        return cache

    yield open_one
    for cache in opened:
        cache.close()


def count_transactions(cache: ResultCache) -> list[int]:
    """Wrap the store's ``transact`` so that each write transaction is counted."""
    store: Any = cache._store
    real = store.transact
    counter = [0]

    @contextlib.contextmanager
    def counted(*args: Any, **kwargs: Any) -> Iterator[None]:
        counter[0] += 1
        with real(*args, **kwargs):
            yield

    store.transact = counted
    return counter


HOLDER = """
import asyncio, dataclasses, sys
from pathlib import Path
from dscall.calls.cache import ResultCache

async def main():
    cache = ResultCache(Path(sys.argv[1]), "default", lease_s=float(sys.argv[3]))
    if sys.argv[4] != "-":  # pretend to run on another machine
        cache.leases.me = dataclasses.replace(cache.leases.me, host=sys.argv[4])
    claim = await cache.acquire(sys.argv[2])
    assert claim is None, claim
    print("held", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


@contextlib.contextmanager
def holder_process(
    cache_dir: Path, request_hash: str, lease_s: float = 30.0, host: str = "-"
) -> Iterator[subprocess.Popen[bytes]]:
    """Another process holding the lease on ``request_hash`` (SIGKILLed on exit)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(HOLDER),
            str(cache_dir),
            request_hash,
            str(lease_s),
            host,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == b"held\n", (line, proc.stderr.read() if proc.stderr else b"")
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)


def never_stop() -> BaseException | None:
    return None


async def test_take_wait_answer_and_release_with_it(
    handles: Callable[..., ResultCache], cache_dir: Path
) -> None:
    first, second = handles(run_id="run-1"), handles()
    assert await first.acquire(key(1)) is None  # ours: send it
    holder = await second.acquire(key(1))
    assert isinstance(holder, LeaseHolder)
    assert (holder.pid, holder.run_id) == (os.getpid(), "run-1")
    waiting = asyncio.ensure_future(second.wait(key(1), never_stop))
    await asyncio.sleep(3 * POLL_S)
    assert not waiting.done()

    transactions = count_transactions(first)
    first.put(key(1), RESPONSE)
    # Not committed before the iteration ends: others see the lease and no answer yet.
    assert live_leases(second._store, [key(1)], time.time())
    assert second.get(key(1)) is None
    await asyncio.sleep(0)
    assert transactions == [1]  # the answer and the release of its lease: one transaction
    assert not live_leases(second._store, [key(1)], time.time())
    assert await asyncio.wait_for(waiting, 5) == RESPONSE
    assert first.leases.held == frozenset()
    # Once answered, taking the lease gives the answer: nothing is sent again.
    assert await handles().acquire(key(1)) == RESPONSE


async def test_takes_of_one_iteration_share_one_transaction(
    handles: Callable[..., ResultCache],
) -> None:
    cache = handles()
    transactions = count_transactions(cache)
    claims = await asyncio.gather(*(cache.acquire(key(i)) for i in range(50)))
    assert claims == [None] * 50
    assert transactions == [1]
    for i in range(50):
        cache.put(key(i), RESPONSE)
    await asyncio.sleep(0)
    assert transactions == [2]
    assert len(cache) == 50  # answers only: the leases are gone, and never entries


async def test_a_lease_released_without_answer_is_taken_by_the_waiter(
    handles: Callable[..., ResultCache],
) -> None:
    first, second = handles(), handles()
    assert await first.acquire(key(1)) is None
    assert isinstance(await second.acquire(key(1)), LeaseHolder)
    waiting = asyncio.ensure_future(second.wait(key(1), never_stop))
    first.release(key(1))  # its call failed
    assert await asyncio.wait_for(waiting, 5) is None  # free: take it
    assert await second.acquire(key(1)) is None
    assert isinstance(await first.acquire(key(1)), LeaseHolder)


async def test_a_stopped_run_stops_waiting(handles: Callable[..., ResultCache]) -> None:
    first, second = handles(), handles()
    assert await first.acquire(key(1)) is None
    assert isinstance(await second.acquire(key(1)), LeaseHolder)
    reason: list[BaseException] = []
    waiting = asyncio.ensure_future(second.wait(key(1), lambda: reason[0] if reason else None))
    await asyncio.sleep(2 * POLL_S)
    assert not waiting.done()
    reason.append(Interrupted("interrupted"))
    with pytest.raises(Interrupted):
        await asyncio.wait_for(waiting, 5)
    # Cancelling a wait is quiet, and the poller forgets it.
    cancelled = asyncio.ensure_future(second.wait(key(1), never_stop))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(3 * POLL_S)
    assert second.leases._waiters == {}


async def test_leases_are_renewed_while_held(handles: Callable[..., ResultCache]) -> None:
    holder, other = handles(lease_s=0.6), handles()
    assert await holder.acquire(key(1)) is None
    await asyncio.sleep(1.5)  # 2.5 lease lifetimes: renewed every 0.2 s
    assert isinstance(await other.acquire(key(1)), LeaseHolder)
    holder.release(key(1))
    await asyncio.sleep(0)
    assert await other.acquire(key(1)) is None


async def test_a_killed_holder_is_taken_over_at_once(
    handles: Callable[..., ResultCache], cache_dir: Path
) -> None:
    cache = handles()
    with holder_process(cache_dir, key(1)) as proc:
        holder = await cache.acquire(key(1))
        assert isinstance(holder, LeaseHolder)
        assert holder.pid == proc.pid
        waiting = asyncio.ensure_future(cache.wait(key(1), never_stop))
        await asyncio.sleep(2 * POLL_S)
        assert not waiting.done()
        proc.send_signal(signal.SIGKILL)  # no release: its lease stays in the store
        proc.wait(timeout=30)
        began = time.monotonic()
        assert await asyncio.wait_for(waiting, 5) is None
        assert time.monotonic() - began < 1.0  # the next poll, not the 30 s expiry
    assert await cache.acquire(key(1)) is None
    # ... and with no wait before: the take itself sees the dead holder, even while it is a
    # zombie nobody reaped yet (its pid still answers kill(0)).
    with holder_process(cache_dir, key(2)) as proc:
        proc.send_signal(signal.SIGKILL)
        stat = Path(f"/proc/{proc.pid}/stat")
        deadline = time.monotonic() + 10
        while stat.exists() and b") Z " not in stat.read_bytes() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert await cache.acquire(key(2)) is None


async def test_a_holder_on_another_host_expires(
    handles: Callable[..., ResultCache], cache_dir: Path
) -> None:
    cache = handles()
    with holder_process(cache_dir, key(1), lease_s=1.0, host="elsewhere") as proc:
        proc.send_signal(signal.SIGKILL)  # dead, but this host cannot know it
        proc.wait(timeout=30)
        holder = await cache.acquire(key(1))
        assert isinstance(holder, LeaseHolder)
        assert holder.host == "elsewhere"
        began = time.monotonic()
        assert await asyncio.wait_for(cache.wait(key(1), never_stop), 5) is None
        assert 0.2 < time.monotonic() - began < 1.5
        assert await cache.acquire(key(1)) is None


def test_reused_pid_and_foreign_holders() -> None:
    me = this_process()
    assert not holder_gone(me, me)
    assert not holder_gone(dataclasses.replace(me, host="elsewhere", pid=2**22 + 7), me)
    if me.start is not None:  # Linux: a live pid started at another time is another process
        assert holder_gone(dataclasses.replace(me, start=str(int(me.start) + 1)), me)
    for garbage in (b"", b"not json", b"[1]", b'{"v": 1, "pid": "1"}', "text", None):
        assert LeaseHolder.decode(garbage) is None
    assert LeaseHolder.decode(me.encode()) == me


async def test_stats_do_not_count_leases_and_clear_keeps_live_ones(
    handles: Callable[..., ResultCache], cache_dir: Path
) -> None:
    runner, other = handles(), handles()
    assert await runner.acquire(key(1)) is None
    runner.put(key(2), RESPONSE)
    with holder_process(cache_dir, key(3), lease_s=0.2, host="elsewhere") as proc:
        proc.send_signal(signal.SIGKILL)
    await asyncio.sleep(0.3)  # key(3)'s lease expired: left behind by a killed run
    assert [s.entries for s in cache_stats(cache_dir)] == [1]
    assert clear_cache(cache_dir) == 1  # the answer; not the leases
    assert len(runner) == 0
    # The run in progress keeps its single flight: the other handle still has to wait.
    assert isinstance(await other.acquire(key(1)), LeaseHolder)
    assert not live_leases(runner._store, [key(3)], time.time())
    raw = runner._store
    assert raw.get("lease:" + key(3)) is None
    runner.put(key(1), RESPONSE)  # the run goes on after the clear
    await asyncio.sleep(0)
    assert await other.acquire(key(1)) == RESPONSE
