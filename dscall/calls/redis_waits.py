"""Waiting for requests another host has in flight, for the shared cache tier (``redis_tier``).

One poller per tier looks, in one MGET per batch, at the answer and the lease of every request
whose turn has come: an answer ends the wait with it; a lease gone (released without an answer,
or expired: its holder died) or held by a process of this machine that is gone ends it with
None, "free to take". Otherwise that request is looked at again later, soon at first
(``first_s``) and then twice as late each time up to ``max_s``: a short answer is seen at once,
and a long wait costs Redis little.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from dscall.calls import redis_scripts as rs
from dscall.calls.lease_store import LeaseHolder, StopCheck, holder_gone, this_process

Fetch = Callable[[list[str]], Awaitable[list[bytes | None]]]  # MGET, with its timeout
_Waiter = tuple["asyncio.Future[bytes | None]", StopCheck]


class SharedWaits:
    """The waits of one tier. ``poll_every`` runs while there are any; the tier runs it as a
    task and, should Redis fail, ends every wait with ``resolve_all``."""

    def __init__(self, fetch: Fetch, *, batch: int, first_s: float, max_s: float) -> None:
        self._fetch = fetch
        self._batch = batch
        self._first_s = first_s
        self._max_s = max_s
        self._here = this_process()  # to tell a holder on this machine whose process is gone
        self.answers = 0  # waits ended by an answer
        self._waiters: dict[str, list[_Waiter]] = {}
        self._due: dict[str, tuple[float, float]] = {}  # hash -> (next look, interval)

    def __bool__(self) -> bool:
        return bool(self._waiters)

    def add(self, request_hash: str, stop: StopCheck) -> asyncio.Future[bytes | None]:
        done: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(request_hash, []).append((done, stop))
        self._due.setdefault(request_hash, (time.monotonic() + self._first_s, self._first_s))
        return done

    async def poll_every(self, down: Callable[[], bool]) -> None:
        while self._waiters and not down():
            await asyncio.sleep(self._first_s)
            now = time.monotonic()
            due = [h for h in list(self._waiters) if self._due[h][0] <= now and self._alive(h)]
            for start in range(0, len(due), self._batch):
                part = due[start : start + self._batch]
                keys = [rs.answer_key(h) for h in part] + [rs.lease_key(h) for h in part]
                found = await self._fetch(keys)
                for index, request_hash in enumerate(part):
                    self._looked(request_hash, found[index], found[len(part) + index])

    def _alive(self, request_hash: str) -> bool:
        """Drop the cancelled waits on ``request_hash``; fail those whose run stopped."""
        alive = []
        for done, stop in self._waiters[request_hash]:
            if done.done():
                continue
            reason = stop()
            if reason is not None:
                done.set_exception(reason)
            else:
                alive.append((done, stop))
        if alive:
            self._waiters[request_hash] = alive
            return True
        self._resolve(request_hash, None)
        return False

    def _looked(self, request_hash: str, answer: bytes | None, lease: bytes | None) -> None:
        if request_hash not in self._waiters:  # ended while we looked (the tier failed)
            return
        if answer is not None:
            self.answers += 1
            self._resolve(request_hash, answer)
            return
        holder = LeaseHolder.decode(lease)
        if holder is None or holder_gone(holder, self._here):
            self._resolve(request_hash, None)
            return
        _, interval = self._due[request_hash]
        interval = min(interval * 2, self._max_s)
        self._due[request_hash] = (time.monotonic() + interval, interval)

    def _resolve(self, request_hash: str, result: bytes | None) -> None:
        self._due.pop(request_hash, None)
        for done, _ in self._waiters.pop(request_hash, ()):
            if not done.done():
                done.set_result(result)

    def resolve_all(self) -> None:
        """End every wait with None: send, as without the tier."""
        for request_hash in list(self._waiters):
            self._resolve(request_hash, None)
