"""The shared cache tier (SPEC §14, ``--cache-url``): Redis behind the local result cache, so
that runs on several hosts, each with its own local cache, never pay twice for one request.

``ResultCache`` reads its local store first and asks this tier only on a miss; it writes both.
A local miss first ``read``s the answer (a hit then costs no lease anywhere). Single flight
across hosts: on a miss, after taking its local lease, a run takes the request's lease in Redis
too (``take``: one atomic script that returns the answer instead if one was stored meanwhile).
A lease has a TTL (``lease_s``), renewed every ``lease_s / 3`` while its holder lives; a holder
that dies stops renewing and loses it when the TTL passes (at once when it ran on this machine
and its process is gone, as with local leases). A run that finds the lease held ``wait``s: it
polls for the answer and the lease, soon at first, then less and less often (``redis_waits``).

Requests queued in one loop iteration share one round trip (see ``redis_scripts``), the way
local leases share one sqlite transaction. Every call to Redis gives up after ``timeout_s``:
Redis failing mid-run costs one warning line, then the run goes on with its local cache only
(a take is answered "ours, send it", a wait "the lease is free"); nothing waits on Redis again.
Redis unreachable at the start is a ``UsageError``, before anything is paid for.

The URL's password is a secret: registered for ``redact`` and never shown (``public_url``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from dscall import jsonio
from dscall.calls import redis_scripts as rs
from dscall.calls.lease_store import LeaseHolder, StopCheck, holder_gone
from dscall.calls.redis_waits import SharedWaits
from dscall.config import (
    REDIS_BATCH,
    REDIS_POLL_FIRST_S,
    REDIS_POLL_MAX_S,
    REDIS_TIMEOUT_S,
)
from dscall.errors import UsageError, one_line, register_secret
from dscall.secret_urls import public_url, url_secrets

Taken = bytes | LeaseHolder | None  # the stored answer, the live holder, or None: ours, send it
_Take = tuple[str, bool, LeaseHolder, "asyncio.Future[Taken]"]
_Write = tuple[str, bytes | None, bytes | None]  # hash, answer to store, our lease to give back
_T = TypeVar("_T")


def _batches(items: list[_T]) -> list[list[_T]]:
    return [items[i : i + REDIS_BATCH] for i in range(0, len(items), REDIS_BATCH)]


class RedisTier:
    """One run's connection to the shared tier. ``open`` it, use it from the event loop's
    thread, and ``close`` it in the same loop."""

    def __init__(
        self,
        url: str,
        *,
        lease_s: float,
        on_warning: Callable[[str], None] | None = None,
        timeout_s: float = REDIS_TIMEOUT_S,
        poll_first_s: float = REDIS_POLL_FIRST_S,
        poll_max_s: float = REDIS_POLL_MAX_S,
    ) -> None:
        for secret in url_secrets(url):
            register_secret(secret)
        self.url = public_url(url)
        try:
            import redis
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
        except ImportError as exc:
            raise UsageError(
                "--cache-url needs the redis client: pip install 'dscall[redis]'"
            ) from exc
        # asyncio.TimeoutError is TimeoutError only from Python 3.11.
        self._errors: tuple[type[BaseException], ...] = (
            redis.RedisError,
            OSError,
            TimeoutError,
            asyncio.TimeoutError,
        )
        try:
            # No retries inside the client: a call that fails takes the tier down, at once.
            self._client: Any = aioredis.from_url(
                url,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as exc:
            raise UsageError(f"--cache-url {self.url}: {one_line(str(exc))}") from exc
        self._script = {
            name: self._client.register_script(source)
            for name, source in (
                ("take", rs.TAKE),
                ("swap", rs.SWAP),
                ("renew", rs.RENEW),
                ("write", rs.WRITE),
            )
        }
        self._timeout_s = timeout_s
        self._lease_ms = max(1, round(lease_s * 1000))
        self._renew_s = lease_s / 3
        self._on_warning = on_warning
        self.down = False
        self.hits = 0  # local misses answered from here (waits: ``SharedWaits.answers``)
        self.written = 0  # answers stored here
        self._held: dict[str, bytes] = {}  # request hash -> our lease value
        self._reads: list[tuple[str, asyncio.Future[bytes | None]]] = []
        self._takes: list[_Take] = []
        self._writes: list[_Write] = []
        self._waits = SharedWaits(
            self._mget, batch=REDIS_BATCH, first_s=poll_first_s, max_s=poll_max_s
        )
        self._tasks: dict[str, asyncio.Task[None] | None] = dict.fromkeys(
            ("flush", "renew", "poll")
        )

    async def _call(self, awaitable: Awaitable[_T]) -> _T:
        return await asyncio.wait_for(awaitable, self._timeout_s)

    async def open(self) -> None:
        """Check that Redis answers: a ``UsageError`` naming the URL (no password) if not."""
        try:
            await self._call(self._client.ping())
        except self._errors as exc:
            await self._disconnect()
            raise UsageError(
                f"cannot reach the shared cache at {self.url}: {self._reason(exc)}"
            ) from exc

    @staticmethod
    def _reason(exc: BaseException) -> str:
        return one_line(str(exc) or type(exc).__name__, 160)

    # --- reading and taking ---------------------------------------------------------------
    def read(self, request_hash: str) -> asyncio.Future[bytes | None]:
        """Queue reading the stored answer, for the end of this loop iteration (None: none,
        or the tier is down)."""
        found: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        if self.down:
            found.set_result(None)
        else:
            self._reads.append((request_hash, found))
            self._start("flush", self._flush_every)
        return found

    def take(self, request_hash: str, check_answer: bool, me: LeaseHolder) -> asyncio.Future[Taken]:
        """Queue taking the request's lease (after looking for its answer with
        ``check_answer``), for the end of this loop iteration."""
        taken: asyncio.Future[Taken] = asyncio.get_running_loop().create_future()
        if self.down:
            taken.set_result(None)
        else:
            self._takes.append((request_hash, check_answer, me, taken))
            self._start("flush", self._flush_every)
        return taken

    def put(self, request_hash: str, answer: bytes) -> None:
        """Queue storing ``answer`` and giving back our lease on it."""
        self._queue_write(request_hash, answer, self._held.pop(request_hash, None))

    def release(self, request_hash: str) -> None:
        """Queue giving back our lease on ``request_hash``, if we hold one."""
        value = self._held.pop(request_hash, None)
        if value is not None:
            self._queue_write(request_hash, None, value)

    def _queue_write(self, request_hash: str, answer: bytes | None, lease: bytes | None) -> None:
        if self.down:
            return
        self._writes.append((request_hash, answer, lease))
        with contextlib.suppress(RuntimeError):  # no loop: closing; it is in the local cache
            self._start("flush", self._flush_every)

    def _start(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        if self._tasks[name] is None:
            self._tasks[name] = asyncio.get_running_loop().create_task(self._task(name, run))

    async def _task(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        try:
            await run()
        except Exception as exc:  # Redis's, or a surprise: never a hang
            self._fail(exc)
        finally:
            self._tasks[name] = None

    async def _flush_every(self) -> None:
        while (self._reads or self._takes or self._writes) and not self.down:
            await asyncio.sleep(0)  # what the rest of this iteration queues joins the batch
            writes, self._writes = self._writes, []
            reads, self._reads = self._reads, []
            takes, self._takes = self._takes, []
            try:
                for lookups in _batches(reads):
                    await self._read_batch(lookups)
                for part in _batches(writes):
                    args = [v or b"" for _, answer, lease in part for v in (answer, lease)]
                    keys = rs.pair_keys([h for h, _, _ in part])
                    await self._call(self._script["write"](keys=keys, args=args))
                    self.written += sum(1 for _, answer, _ in part if answer is not None)
                for batch in _batches(takes):
                    await self._take_batch(batch)
            finally:  # on failure: none found, send, as without the tier
                pending: list[asyncio.Future[Any]] = [found for _, found in reads]
                for future in pending + [taken for *_, taken in takes]:
                    if not future.done():
                        future.set_result(None)

    async def _read_batch(self, lookups: list[tuple[str, asyncio.Future[bytes | None]]]) -> None:
        stored = await self._mget([rs.answer_key(h) for h, _ in lookups])
        for (_, found), data in zip(lookups, stored, strict=True):
            self.hits += data is not None
            if not found.done():
                found.set_result(data)

    async def _take_batch(self, batch: list[_Take]) -> None:
        values = [jsonio.dumps({**me.as_json(), "since": time.time()}) for *_, me, _ in batch]
        args: list[Any] = [self._lease_ms]
        for (_, check_answer, _, _), value in zip(batch, values, strict=True):
            args += [b"1" if check_answer else b"0", value]
        keys = rs.pair_keys([h for h, *_ in batch])
        replies = await self._call(self._script["take"](keys=keys, args=args))
        stale: list[tuple[_Take, bytes, bytes]] = []  # leases to take over: (take, seen, ours)
        for take, value, (kind, data) in zip(batch, values, replies, strict=True):
            request_hash, _, me, taken = take
            if kind == rs.ANSWERED:
                self.hits += 1
                self._settle(taken, data)
            elif kind == rs.TOOK:
                self._held[request_hash] = value
                self._settle(taken, None, request_hash)
            else:
                holder = LeaseHolder.decode(data)
                if holder is None or holder.owner == me.owner or holder_gone(holder, me):
                    stale.append((take, data, value))
                else:
                    self._settle(taken, holder)
        if not stale:
            return
        args = [self._lease_ms] + [v for _, seen, ours in stale for v in (seen, ours)]
        keys = [rs.lease_key(take[0]) for take, _, _ in stale]
        swapped = await self._call(self._script["swap"](keys=keys, args=args))
        for (take, _, value), ok in zip(stale, swapped, strict=True):
            if ok:
                self._held[take[0]] = value
                self._settle(take[3], None, take[0])
            else:  # another run was quicker: look again, in the next batch
                self._takes.append(take)

    def _settle(self, taken: asyncio.Future[Taken], result: Taken, held: str = "") -> None:
        if not taken.done():
            taken.set_result(result)
            if held:
                self._start("renew", self._renew_every)
        elif held:  # the call was cancelled meanwhile: never keep a lease nobody uses
            self.release(held)

    # --- holding --------------------------------------------------------------------------
    async def _renew_every(self) -> None:
        while self._held and not self.down:
            await asyncio.sleep(self._renew_s)
            held = list(self._held.items())
            for part in _batches(held):
                args = [self._lease_ms] + [value for _, value in part]
                keys = [rs.lease_key(h) for h, _ in part]
                renewed = await self._call(self._script["renew"](keys=keys, args=args))
                for (request_hash, value), ok in zip(part, renewed, strict=True):
                    # Lost: another run took it over and sends too; nothing to undo.
                    if not ok and self._held.get(request_hash) == value:
                        del self._held[request_hash]

    # --- waiting --------------------------------------------------------------------------
    def wait(self, request_hash: str, stop: StopCheck) -> asyncio.Future[bytes | None]:
        """The answer once another run stored it, or None once the lease is free (or the tier
        is down). Fails with ``stop()``'s reason when the run stops."""
        if self.down:
            done: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        done = self._waits.add(request_hash, stop)
        self._start("poll", lambda: self._waits.poll_every(lambda: self.down))
        return done

    async def _mget(self, keys: list[str]) -> list[bytes | None]:
        found: list[bytes | None] = await self._call(self._client.mget(keys))
        return found

    # --- failing and closing --------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        """Redis failed: warn once, answer everything pending, and go on without it."""
        if self.down:
            return
        self.down = True
        if self._on_warning is not None:
            self._on_warning(
                f"warning: the shared cache at {self.url} failed ({type(exc).__name__}: "
                f"{self._reason(exc)}); going on with the local cache only"
            )
        self._held.clear()
        self._writes.clear()
        reads, self._reads = self._reads, []
        takes, self._takes = self._takes, []
        pending: list[asyncio.Future[Any]] = [found for _, found in reads]
        for future in pending + [taken for *_, taken in takes]:
            if not future.done():
                future.set_result(None)
        self._waits.resolve_all()

    async def close(self) -> None:
        """Store what is queued, give back the leases we hold, and disconnect."""
        for request_hash in list(self._held):
            self.release(request_hash)
        flush = self._tasks["flush"]
        if flush is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await flush  # each of its calls is bounded by the timeout
        for name in ("renew", "poll"):
            task = self._tasks[name]
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._waits.resolve_all()
        self.down = True
        await self._disconnect()

    async def _disconnect(self) -> None:
        with contextlib.suppress(*self._errors):
            await self._call(self._client.aclose())
