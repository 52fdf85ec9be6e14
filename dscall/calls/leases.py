"""Cross-process single flight (SPEC §5): a lease per request hash, kept in the result cache.

Two runs that share a cache must not pay twice for one request. A run takes a lease on a
request before its first attempt; another run that needs the same request finds the lease and
waits for the answer to appear in the store instead of sending the request again.

    key     "lease:" + request hash (a hash is 64 hex digits: no answer key starts so)
    value   JSON {"v", "pid", "host", "ns", "start", "owner", "run_id", "since"}
    expiry  diskcache's expire_time, LEASE_S after the lease was taken or last renewed

    take       diskcache's ``add``, atomic: it succeeds only when the key is absent or expired.
               The answer is looked up first in the same transaction, so an answer another run
               committed after this run's cache miss is used, never paid for again.
    renew      every LEASE_S / 3, one transaction for all the leases a cache handle holds.
    release    in the answer's own transaction (``ResultCache.put``), or when the call ends
               without an answer; deleted only while it is still ours.
    take over  at once when the holder ran on this machine (same host name and pid namespace)
               and its process is gone: killed, a zombie, or its pid reused by another process
               (the start time in /proc differs). Otherwise when the lease expires.

Takes and releases ride on the cache's one write transaction per loop iteration (see
``ResultCache``), so a request costs no transaction of its own. Waiting costs no write at all: one
poller per cache handle reads, every POLL_S, which of the awaited answers exist and which leases
are still held, one query per 500 hashes; the first read also checks whether the run stopped.

Clocks: an expiry is written with the writer's clock and compared with the reader's. Runs on one
machine share a clock. Across machines (a cache on a shared filesystem) a reader whose clock is
ahead by more than LEASE_S minus the renewal interval sees live leases as expired and may pay
again; one whose clock is behind waits that much longer for a crashed holder.

diskcache has no public way to read a range of keys or to delete or renew a row only while its
value is still ours: those few statements use its connection (``Cache._sql``, unchanged since
diskcache 4), through ``lease_store.store_sql`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from dscall import jsonio
from dscall.calls.lease_store import (
    LEASE_PREFIX,
    STORE_ERRORS,
    Claim,
    LeaseHolder,
    StopCheck,
    existing_answers,
    holder_gone,
    live_leases,
    store_sql,
    this_process,
)
from dscall.errors import one_line
from dscall.types import CallResponse

# --- the leases of one cache handle -----------------------------------------------------------
_Waiter = tuple["asyncio.Future[CallResponse | None]", StopCheck]


class Leases:
    """Takes, renews, releases and waits on leases for one ``ResultCache``.

    ``take`` and ``release`` only queue; the cache writes the queue (``batch``) inside its
    transaction of the loop iteration, then settles it, which hands the claims out. Use from the
    event loop's thread.
    """

    def __init__(
        self,
        store: Any,
        *,
        answer: Callable[[str], CallResponse | None],
        schedule: Callable[[], None],
        failed: Callable[[str, BaseException], None],
        notify: Callable[[str], None] | None,
        run_id: str | None,
        lease_s: float,
        poll_s: float,
    ) -> None:
        self.store = store
        self._answer = answer  # the stored answer of a hash, or None
        self._schedule = schedule  # asks the cache to write at the end of this iteration
        self._failed = failed
        self._notify = notify
        self._lease_s = lease_s
        self._poll_s = poll_s
        self.me = this_process(run_id)
        self._held: dict[str, bytes] = {}  # hash -> the value we stored
        self._takes: list[tuple[str, bool, asyncio.Future[Claim]]] = []
        self._drops: dict[str, bytes] = {}
        self._waiters: dict[str, list[_Waiter]] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._told = False

    @property
    def me(self) -> LeaseHolder:
        """This handle as a holder (``since`` 0)."""
        return self._me

    @me.setter
    def me(self, me: LeaseHolder) -> None:
        self._me = me
        self._mine = me.as_json()  # each lease's value: this, with its own "since"

    @property
    def held(self) -> frozenset[str]:
        return frozenset(self._held)

    def holds(self, request_hash: str) -> bool:
        return request_hash in self._held

    def take(self, request_hash: str, check_answer: bool) -> asyncio.Future[Claim]:
        """Queue taking the lease. The claim: None (ours: send it), the stored answer
        (``check_answer``), or the live holder of the lease (wait for it)."""
        claim: asyncio.Future[Claim] = asyncio.get_running_loop().create_future()
        self._takes.append((request_hash, check_answer, claim))
        self._schedule()
        return claim

    def release(self, request_hash: str) -> bool:
        """Queue deleting our lease on ``request_hash``; False if we hold none."""
        value = self._held.pop(request_hash, None)
        if value is None:
            return False
        self._drops[request_hash] = value
        return True

    def release_all(self) -> None:
        for request_hash in list(self._held):
            self.release(request_hash)

    # --- inside the cache's transaction -------------------------------------------------------
    def batch(self) -> LeaseBatch | None:
        """The releases and takes queued this iteration, for the cache to write in its
        transaction (None: nothing queued)."""
        if not self._takes and not self._drops:
            return None
        takes, self._takes = self._takes, []
        drops, self._drops = self._drops, {}
        return LeaseBatch(self, drops, takes)

    def take_now(
        self, request_hash: str, check_answer: bool, now: float
    ) -> tuple[Claim, bytes | None]:
        if check_answer:
            response = self._answer(request_hash)
            if response is not None:
                return response, None
        store = self.store
        key = LEASE_PREFIX + request_hash
        value = jsonio.dumps({**self._mine, "since": now})
        if store.add(key, value, expire=self._lease_s):
            return None, value
        holder = LeaseHolder.decode(live_leases(store, [request_hash], now).get(request_hash))
        if holder is None or holder.owner == self.me.owner or holder_gone(holder, self.me):
            store.set(key, value, expire=self._lease_s)  # taken over, in this transaction
            return None, value
        return holder, None

    def hold(self, request_hash: str, value: bytes) -> None:
        self._held[request_hash] = value

    def start_renewer(self) -> None:
        if not self._held or self._renewer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # leases are only taken inside a loop: it has ended
            return
        self._renewer = loop.create_task(self._renew_every())

    def tell(self, holder: LeaseHolder) -> None:
        if self._told or self._notify is None:
            return
        self._told = True
        self._notify(
            one_line(
                f"another dscall run ({holder.describe()}) is sending requests this run needs: "
                "waiting for its answers instead of paying twice"
            )
        )

    # --- renewal ------------------------------------------------------------------------------
    async def _renew_every(self) -> None:
        try:
            while self._held:
                await asyncio.sleep(self._lease_s / 3)
                self.renew()
        finally:
            self._renewer = None

    def renew(self) -> None:
        """Push back the expiry of every lease we hold, in one transaction; a lease that
        expired meanwhile is taken again if nobody else took it."""
        held = dict(self._held)
        if not held:
            return
        store = self.store
        sql = store_sql(store)
        lost = []
        try:
            with store.transact():
                now = time.time()
                for request_hash, value in held.items():
                    key = LEASE_PREFIX + request_hash
                    renewed = sql(
                        "UPDATE Cache SET expire_time = ?"
                        " WHERE key = ? AND raw = 1 AND value = ? AND expire_time > ?",
                        (now + self._lease_s, key, value, now),
                    ).rowcount
                    if not renewed and not store.add(key, value, expire=self._lease_s):
                        lost.append(request_hash)
        except STORE_ERRORS as exc:
            self._failed("lease renewal", exc)
            return
        for request_hash in lost:  # another run took it over: it sends too, nothing to undo
            if self._held.get(request_hash) == held[request_hash]:
                del self._held[request_hash]

    # --- waiting for another run's answer -----------------------------------------------------
    def wait(self, request_hash: str, stop: StopCheck) -> asyncio.Future[CallResponse | None]:
        """The answer once another run stored it, or None once the lease is free to take (its
        holder ended without an answer, died or let it expire). Fails with ``stop()``'s reason
        when the run stops; cancel it to stop waiting."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[CallResponse | None] = loop.create_future()
        self._waiters.setdefault(request_hash, []).append((done, stop))
        if self._poller is None:
            self._poller = loop.create_task(self._poll_every())
        return done

    async def _poll_every(self) -> None:
        try:
            while self._waiters:
                await asyncio.sleep(self._poll_s)
                self.poll()
        finally:
            self._poller = None

    def poll(self) -> None:
        """One look for every request waited on."""
        waiters = self._waiters
        reasons: dict[int, BaseException | None] = {}
        for request_hash in list(waiters):
            alive = []
            for done, stop in waiters[request_hash]:
                if done.done():  # cancelled
                    continue
                if id(stop) not in reasons:
                    reasons[id(stop)] = stop()
                reason = reasons[id(stop)]
                if reason is not None:
                    done.set_exception(reason)
                else:
                    alive.append((done, stop))
            if alive:
                waiters[request_hash] = alive
            else:
                del waiters[request_hash]
        if not waiters:
            return
        store = self.store
        try:
            for request_hash in existing_answers(store, list(waiters)):
                response = self._answer(request_hash)
                if response is not None:  # None: unreadable, dropped; the lease decides
                    self._resolve(request_hash, response)
            rest = list(waiters)
            leases = live_leases(store, rest, time.time())
        except STORE_ERRORS as exc:
            # A store that cannot be read cannot say when to stop waiting: send instead.
            self._failed("read", exc)
            for request_hash in list(waiters):
                self._resolve(request_hash, None)
            return
        for request_hash in rest:
            holder = LeaseHolder.decode(leases.get(request_hash))
            if holder is None or holder_gone(holder, self.me):
                self._resolve(request_hash, None)

    def _resolve(self, request_hash: str, result: CallResponse | None) -> None:
        for done, _ in self._waiters.pop(request_hash, ()):
            if not done.done():
                done.set_result(result)

    def close(self) -> None:
        """Stop the background tasks; pending takes and waits are cancelled (the leases still
        held stay so: ``release_all`` and a write of the cache give them back)."""
        for task in (self._renewer, self._poller):
            if task is not None:
                with contextlib.suppress(RuntimeError):  # its loop is already closed
                    task.cancel()
        self._renewer = self._poller = None
        pending: list[asyncio.Future[Any]] = [claim for _, _, claim in self._takes]
        pending += [done for waiters in self._waiters.values() for done, _ in waiters]
        self._takes.clear()
        self._waiters.clear()
        for future in pending:
            with contextlib.suppress(RuntimeError):
                future.cancel()


class LeaseBatch:
    """One iteration's lease writes: ``write()`` inside the cache's transaction, then
    ``settle(committed)`` once it ended, whichever way (every claim is answered either way)."""

    def __init__(
        self,
        leases: Leases,
        drops: dict[str, bytes],
        takes: list[tuple[str, bool, asyncio.Future[Claim]]],
    ) -> None:
        self._leases = leases
        self._drops = drops
        self._takes = takes
        self._results: dict[int, tuple[Claim, bytes | None]] = {}

    def write(self) -> None:
        leases = self._leases
        sql = store_sql(leases.store)
        for request_hash, value in self._drops.items():
            sql(
                "DELETE FROM Cache WHERE key = ? AND raw = 1 AND value = ?",
                (LEASE_PREFIX + request_hash, value),
            )
        now = time.time()
        for index, (request_hash, check_answer, claim) in enumerate(self._takes):
            if not claim.done():  # its call was cancelled before its turn
                self._results[index] = leases.take_now(request_hash, check_answer, now)

    def settle(self, committed: bool) -> None:
        leases = self._leases
        for index, (request_hash, _, claim) in enumerate(self._takes):
            got, value = self._results.get(index, (None, None))
            if not committed:  # no lease could be written: send, as a run without a cache does
                got, value = None, None
            if value is not None:
                leases.hold(request_hash, value)
            if claim.done():  # cancelled before its turn
                if value is not None:  # (not possible: no await since write) never leak one
                    leases.release(request_hash)
                continue
            claim.set_result(got)
            if isinstance(got, LeaseHolder):
                leases.tell(got)
        leases.start_renewer()
