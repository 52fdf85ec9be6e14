"""The result cache: one diskcache store per namespace, and the run's checkpoint (SPEC §5).

Every successful answer is written the moment it arrives, in its own sqlite transaction (WAL
journal, ``synchronous=NORMAL``): a committed entry survives kill -9 of the process, so rerunning
the same command pays only for chunks that never finished. Failures are never stored.

How a store lives on disk (folders, permissions, JSON-only values) is ``cache_store``; how an
answer is stored is ``cache_entry``; ``dscall cache stats|clear`` is ``cache_maintenance``.

Once the run is going, a failed read is a miss and a failed write loses only that checkpoint:
the answer still reaches the output, so neither stops the run; they are counted in ``errors``
and the first one is reported through ``on_error``.

With a shared tier (``cache_url``, ``redis_tier``), a local miss asks Redis too, inside
``acquire``: Redis's answer, else the local lease, then Redis's lease (or an answer stored
meanwhile). An answer found there is copied
into the local store; ``put`` writes both. That tier needs the cache opened with ``async with``
(its client lives in the event loop); ``get`` stays a local read.

The store also holds the leases of cross-process single flight (``dscall.calls.leases``): keys
``lease:<hash>``, which are not answers: never counted as entries, and kept by ``clear_cache``
while they are live.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from dscall.calls.cache_entry import CorruptEntry, decode_entry, encode_entry
from dscall.calls.cache_store import UnsafeEntry, namespace_path, open_store, store_reason
from dscall.calls.lease_store import STORE_ERRORS, Claim, StopCheck, count_leases
from dscall.calls.leases import Leases
from dscall.calls.redis_tier import RedisTier
from dscall.config import CACHE_LEASE_POLL_S, CACHE_LEASE_S, CACHE_LOCK_TIMEOUT_S
from dscall.errors import one_line
from dscall.types import CallResponse


class ResultCache:
    """The answers of one namespace, keyed by ``CallRequest.request_hash``.

    Synchronous by design: a read is a ~10 µs indexed sqlite lookup and a write one short
    transaction, cheaper than handing either to a thread. Use from one thread (the event loop's).

    Inside a running event loop, answers that arrive in the same loop iteration are committed
    together, in one transaction, at the end of that iteration (``loop.call_soon``): the
    transaction's BEGIN/COMMIT is most of a put's cost, and the answers are on disk before the
    loop does anything else. Outside a loop, ``put`` commits before it returns. Leases
    (``acquire``, ``release``) are written in that same transaction: an answer and the release
    of its lease commit together, and taking a lease costs no transaction of its own.
    """

    def __init__(
        self,
        directory: Path,
        namespace: str,
        *,
        on_error: Callable[[str], None] | None = None,
        timeout_s: float = CACHE_LOCK_TIMEOUT_S,
        run_id: str | None = None,
        on_notice: Callable[[str], None] | None = None,
        lease_s: float = CACHE_LEASE_S,
        lease_poll_s: float = CACHE_LEASE_POLL_S,
        cache_url: str | None = None,
    ) -> None:
        self.path = namespace_path(directory, namespace)
        self.namespace = namespace
        self.errors = 0  # reads and writes that failed (misses and lost checkpoints)
        self._on_error = on_error
        self._store = open_store(self.path, namespace, timeout_s)
        self._pending: dict[str, bytes] = {}  # answers waiting for this iteration's commit
        self._flush_scheduled = False
        self.leases = Leases(
            self._store,
            answer=self.get,
            schedule=self._schedule,
            failed=self._failed,
            notify=on_notice,
            run_id=run_id,
            lease_s=lease_s,
            poll_s=lease_poll_s,
        )
        self.shared: RedisTier | None = None
        if cache_url:
            try:
                self.shared = RedisTier(
                    cache_url, lease_s=lease_s, on_warning=on_notice or on_error
                )
            except BaseException:
                self._store.close()
                raise

    def get(self, request_hash: str) -> CallResponse | None:
        """The stored answer, or None. A corrupt entry is deleted and counts as a miss."""
        try:
            data = self._pending.get(request_hash) or self._store.get(request_hash)
        except UnsafeEntry:
            self._discard(request_hash)
            return None
        except STORE_ERRORS as exc:
            self._failed("read", exc)
            return None
        if data is None:
            return None
        try:
            return decode_entry(data)
        except CorruptEntry:
            self._discard(request_hash)
            return None

    def put(self, request_hash: str, response: CallResponse) -> None:
        """Store ``response`` and release our lease on it, in one transaction: committed before
        this returns, or, inside an event loop, at the end of the current loop iteration
        together with everything else written in that iteration."""
        data = encode_entry(response)
        self._store_local(request_hash, data)
        if self.shared is not None:
            self.shared.put(request_hash, data)

    def _store_local(self, request_hash: str, data: bytes) -> None:
        self._pending[request_hash] = data
        self.leases.release(request_hash)
        self._schedule()

    async def acquire(self, request_hash: str, *, check_answer: bool = True) -> Claim:
        """Take the cross-process lease on ``request_hash``, at the end of this loop iteration.
        None: ours, send the request. A response: another run stored the answer meanwhile
        (looked for only with ``check_answer``). A ``LeaseHolder``: another live process has
        the request in flight; ``wait`` for it."""
        shared = self.shared
        if shared is not None and check_answer:
            # Another host's answer is the common case of a rerun on a fresh local cache: read
            # first, so that a hit costs neither a local nor a shared lease.
            data = await shared.read(request_hash)
            response = None if data is None else self._copy_shared(request_hash, data)
            if response is not None:
                return response
        claim = await self.leases.take(request_hash, check_answer)
        if claim is not None or shared is None:
            return claim
        taken = await shared.take(request_hash, check_answer, self.leases.me)
        if isinstance(taken, bytes):  # another host's answer: ours now too
            return self._copy_shared(request_hash, taken)
        if taken is not None:  # another host has it in flight
            self.leases.tell(taken)
        return taken  # None: both leases ours

    def _copy_shared(self, request_hash: str, data: bytes) -> CallResponse | None:
        """The answer ``data`` found in the shared tier, stored locally (giving back our local
        lease in that write); None for one that does not decode: send it again."""
        try:
            response = decode_entry(data)
        except CorruptEntry:
            return None
        if response is not None:
            self._store_local(request_hash, data)
        return response

    def release(self, request_hash: str) -> None:
        """Give up our lease on ``request_hash`` (its call ended without an answer), if held."""
        if self.shared is not None:
            self.shared.release(request_hash)
        if self.leases.release(request_hash):
            self._schedule()

    async def wait(self, request_hash: str, stop: StopCheck) -> CallResponse | None:
        """Wait while another process holds the lease: the answer it stored, or None once the
        lease is free to ``acquire`` again. Raises ``stop()``'s reason once it gives one."""
        shared = self.shared
        if shared is not None and self.leases.holds(request_hash):  # held on another host
            data = await shared.wait(request_hash, stop)
            return None if data is None else self._copy_shared(request_hash, data)
        return await self.leases.wait(request_hash, stop)

    def _schedule(self) -> None:
        """Write at the end of this loop iteration; outside a loop, now."""
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Commit what waits for the end of this loop iteration (answers, lease releases and
        takes) in one transaction."""
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        batch = self.leases.batch()
        if not pending and batch is None:
            return
        store = self._store
        committed = False
        try:
            with store.transact():
                for request_hash, data in pending.items():
                    store.set(request_hash, data)
                if batch is not None:
                    batch.write()
            committed = True
        except STORE_ERRORS as exc:
            self._failed("write", exc)
        if batch is not None:
            batch.settle(committed)  # every claim is answered, written or not

    def __len__(self) -> int:
        """Stored answers (leases are not entries)."""
        self.flush()
        return len(self._store) - count_leases(self._store)

    def _discard(self, request_hash: str) -> None:
        try:
            self._store.delete(request_hash)
        except STORE_ERRORS as exc:
            self._failed("cleanup", exc)

    def _failed(self, action: str, exc: BaseException) -> None:
        self.errors += 1
        if self.errors == 1 and self._on_error is not None:
            self._on_error(
                one_line(
                    f"result cache {action} failed at {self.path} ({type(exc).__name__}: "
                    f"{store_reason(exc)}); answers are still written to the output, but this "
                    "run may not be fully checkpointed"
                )
            )

    def close(self) -> None:
        """Commit what is pending, give back every lease still held, and close the store."""
        self.leases.close()  # takes still queued are cancelled: they take nothing
        self.leases.release_all()  # none after a normal run: each call released its own
        self.flush()
        self._store.close()

    def __enter__(self) -> ResultCache:
        return self

    async def __aenter__(self) -> ResultCache:
        """Enter with the shared tier open: a ``UsageError`` if it cannot be reached."""
        if self.shared is not None:
            try:
                await self.shared.open()
            except BaseException:
                self.close()
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.shared is not None:
                await self.shared.close()  # stores what is queued there, gives back its leases
        finally:
            self.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
