"""The shared cache tier against a real redis-server: answers and leases across cache dirs
("hosts"), a dead holder losing its lease by TTL, and Redis failing at the start or mid-use."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from dscall.calls.cache import ResultCache
from dscall.calls.lease_store import LeaseHolder
from dscall.calls.redis_scripts import answer_key, lease_key
from dscall.calls.redis_tier import RedisTier
from dscall.errors import UsageError
from dscall.types import CallResponse, Usage
from tests.redis_server import RedisServer, running_redis

RESPONSE = CallResponse("the answer", "stop", "m", Usage(10, 5, 0, 10), status=200)
REPO = Path(__file__).resolve().parents[3]


def key(i: int) -> str:
    return f"{i:064x}"


def never_stop() -> BaseException | None:
    return None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@contextlib.asynccontextmanager
async def host(
    root: Path, name: str, url: str, notes: list[str] | None = None, **kwargs: float
) -> AsyncIterator[ResultCache]:
    """A cache with its own local folder (another host's) over the shared ``url``."""
    on_notice = notes.append if notes is not None else None
    async with ResultCache(
        root / name, "default", cache_url=url, on_notice=on_notice, **kwargs
    ) as cache:
        yield cache


async def test_an_answer_stored_on_one_host_serves_another_and_fills_its_local_cache(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    async with host(tmp_path, "a", redis_server.url) as first:
        assert await first.acquire(key(1)) is None
        first.put(key(1), RESPONSE)
    async with host(tmp_path, "b", redis_server.url) as second:
        assert second.get(key(1)) is None  # a local read only
        assert await second.acquire(key(1)) == RESPONSE
        assert second.shared is not None
        assert second.shared.hits == 1
    # Copied into b's local store: read there without Redis.
    with ResultCache(tmp_path / "b", "default") as local:
        assert local.get(key(1)) == RESPONSE
    assert not [k for k in redis_server.items() if k.startswith(b"dscall:v1:lease:")]


async def test_a_waiter_on_another_host_gets_the_answer_or_the_freed_lease(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    async with (
        host(tmp_path, "a", redis_server.url, run_id="run-a") as first,
        host(tmp_path, "b", redis_server.url) as second,
    ):
        assert await first.acquire(key(1)) is None
        assert await first.acquire(key(2)) is None
        holder = await second.acquire(key(1))
        assert isinstance(holder, LeaseHolder)
        assert holder.run_id == "run-a"
        assert isinstance(await second.acquire(key(2)), LeaseHolder)
        answered = asyncio.ensure_future(second.wait(key(1), never_stop))
        freed = asyncio.ensure_future(second.wait(key(2), never_stop))
        await asyncio.sleep(0.1)
        assert not answered.done()
        assert not freed.done()
        first.put(key(1), RESPONSE)
        first.release(key(2))  # its call failed: no answer
        assert await answered == RESPONSE
        assert await freed is None
        assert await second.acquire(key(2)) is None  # free: ours now
        assert second.get(key(1)) == RESPONSE


async def test_a_stopped_run_stops_waiting(redis_server: RedisServer, tmp_path: Path) -> None:
    async with (
        host(tmp_path, "a", redis_server.url) as first,
        host(tmp_path, "b", redis_server.url) as second,
    ):
        assert await first.acquire(key(1)) is None
        assert isinstance(await second.acquire(key(1)), LeaseHolder)
        with pytest.raises(UsageError, match="stopped"):
            await second.wait(key(1), lambda: UsageError("stopped"))


async def test_refresh_takes_without_reading_the_shared_answer(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    async with host(tmp_path, "a", redis_server.url) as first:
        assert await first.acquire(key(1)) is None
        first.put(key(1), RESPONSE)
    async with host(tmp_path, "b", redis_server.url) as second:
        assert await second.acquire(key(1), check_answer=False) is None


async def test_a_lease_is_renewed_while_its_holder_lives(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    async with (
        host(tmp_path, "a", redis_server.url, lease_s=0.3) as first,
        host(tmp_path, "b", redis_server.url) as second,
    ):
        assert await first.acquire(key(1)) is None
        await asyncio.sleep(1.0)  # several TTLs: only renewal keeps it
        assert isinstance(await second.acquire(key(1)), LeaseHolder)
    assert redis_server.items() == {}  # given back on close


HOLDER = """
import asyncio, dataclasses, sys
from pathlib import Path
from dscall.calls.cache import ResultCache

async def main():
    async with ResultCache(
        Path(sys.argv[1]), "default", lease_s=float(sys.argv[4]), cache_url=sys.argv[2]
    ) as cache:
        if sys.argv[5] != "-":  # pretend to run on another machine
            cache.leases.me = dataclasses.replace(cache.leases.me, host=sys.argv[5])
        assert await cache.acquire(sys.argv[3]) is None
        print("held", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


@contextlib.contextmanager
def holder_process(
    cache_dir: Path, url: str, request_hash: str, lease_s: float, host_name: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Another process holding the shared lease on ``request_hash`` (SIGKILLed on exit)."""
    args = [sys.executable, "-c", textwrap.dedent(HOLDER), str(cache_dir), url, request_hash]
    proc = subprocess.Popen(
        [*args, str(lease_s), host_name], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        line = proc.stdout.readline()
        assert line == b"held\n", (line, proc.stderr.read())
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)


@pytest.mark.parametrize("host_name", ["elsewhere", "-"])
async def test_a_killed_holder_loses_its_lease(
    redis_server: RedisServer, tmp_path: Path, host_name: str
) -> None:
    """On another host: when its TTL passes, as nobody renews it. On this one: at once."""
    with holder_process(tmp_path / "a", redis_server.url, key(1), 1.0, host_name) as proc:
        async with host(tmp_path, "b", redis_server.url) as second:
            holder = await second.acquire(key(1))
            assert isinstance(holder, LeaseHolder)
            assert holder.pid == proc.pid
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            assert await asyncio.wait_for(second.wait(key(1), never_stop), 10) is None
            assert await second.acquire(key(1)) is None
            assert second.shared is not None
            assert not second.shared.down


async def test_unreachable_at_the_start_is_a_usage_error_without_the_password(
    tmp_path: Path,
) -> None:
    with running_redis() as server:
        port = server.port
    url = f"redis://:hunter2-secret@127.0.0.1:{port}/0"
    with pytest.raises(UsageError) as raised:
        async with host(tmp_path, "a", url):
            pass
    message = str(raised.value)
    assert f"redis://:***@127.0.0.1:{port}/0" in message
    assert "hunter2" not in message
    assert "\n" not in message


def test_a_url_that_is_not_redis_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--cache-url"):
        ResultCache(tmp_path / "a", "default", cache_url="http://127.0.0.1:1/0")


async def test_redis_killed_mid_use_warns_once_and_the_local_cache_goes_on(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    notes: list[str] = []
    async with (
        host(tmp_path, "a", redis_server.url, notes) as first,
        host(tmp_path, "b", redis_server.url) as second,
    ):
        assert await first.acquire(key(1)) is None
        assert isinstance(await second.acquire(key(1)), LeaseHolder)
        waiting = asyncio.ensure_future(second.wait(key(1), never_stop))
        redis_server.kill()
        assert await first.acquire(key(2)) is None  # ours: send it, as without the tier
        first.put(key(1), RESPONSE)
        first.put(key(2), RESPONSE)
        assert await asyncio.wait_for(waiting, 10) is None  # free, as far as b can tell
        assert first.get(key(1)) == first.get(key(2)) == RESPONSE
        await asyncio.sleep(0.05)
    assert len(notes) == 1, notes
    assert notes[0].startswith("warning: the shared cache at redis://127.0.0.1:")
    assert "going on with the local cache only" in notes[0]


async def test_a_hung_redis_times_out(redis_server: RedisServer, tmp_path: Path) -> None:
    notes: list[str] = []
    tier = RedisTier(redis_server.url, lease_s=30, on_warning=notes.append, timeout_s=0.2)
    await tier.open()
    me = LeaseHolder(1, "h", None, None, "owner", None, 0.0)
    assert await tier.take(key(1), True, me) is None
    redis_server.freeze()
    try:
        assert await asyncio.wait_for(tier.take(key(2), True, me), 10) is None
        assert tier.down
        assert len(notes) == 1
        assert "TimeoutError" in notes[0]
        assert await tier.wait(key(3), never_stop) is None  # down: nothing waits on it
    finally:
        redis_server.thaw()
        await tier.close()


async def test_entries_hold_answers_and_holders_only(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    async with host(tmp_path, "a", redis_server.url) as first:
        assert await first.acquire(key(1)) is None
        assert await first.acquire(key(2)) is None
        first.put(key(1), RESPONSE)
        await asyncio.sleep(0.05)
        stored = redis_server.items()
        assert set(stored) == {answer_key(key(1)).encode(), lease_key(key(2)).encode()}
        assert b"the answer" in stored[answer_key(key(1)).encode()]
        assert b'"pid"' in stored[lease_key(key(2)).encode()]


async def test_a_wrong_password_is_a_usage_error_that_does_not_show_it(tmp_path: Path) -> None:
    with running_redis(password="the-right-one") as server:
        url = f"redis://:the-wrong-one@127.0.0.1:{server.port}/0"
        with pytest.raises(UsageError) as raised:
            async with host(tmp_path, "a", url):
                pass
    assert "the-wrong-one" not in str(raised.value)
    assert "cannot reach the shared cache at redis://:***@" in str(raised.value)


async def test_a_full_redis_costs_one_warning_and_the_local_cache_goes_on(
    tmp_path: Path,
) -> None:
    notes: list[str] = []
    big = CallResponse("x" * 100_000, "stop", "m", Usage(10, 5, 0, 10), status=200)
    with running_redis(None, "--maxmemory", "2mb", "--maxmemory-policy", "noeviction") as server:
        async with host(tmp_path, "a", server.url, notes) as cache:
            for i in range(100):  # 10 MB of answers
                assert await cache.acquire(key(i)) is None
                cache.put(key(i), big)
            assert cache.shared is not None
            assert cache.shared.down
        with ResultCache(tmp_path / "a", "default") as local:
            assert len(local) == 100
    assert len(notes) == 1
    assert "OutOfMemoryError" in notes[0]


def test_without_the_redis_extra_the_url_is_a_usage_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # as if redis-py were not installed
    with pytest.raises(UsageError, match=r"pip install 'dscall\[redis\]'"):
        ResultCache(tmp_path / "a", "default", cache_url="redis://127.0.0.1:6379/0")
