"""A shard's side of the cluster's limits (``executors.limit_board``): the ``ClusterHook`` a
Ray shard hands to ``run_process``.

On entry it joins the board (its cap and budget lease, before the first call), then syncs
about five times a second from the run's event loop: it reports its calls in flight, those
waiting, its own throttle cuts and the money it has committed, and applies the answer: a new
ceiling for its limiter, its share of ``--rpm``/``--tpm``, a cut another shard's 429s called
for, or the run's budget being reached (the engine stops dispatching, as a local run does).
A hold that would pass its lease asks the board for more, there and then. On exit it tells
the board it is done, so its slots, rates and unspent lease go to the other shards.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from dscall.calls.limits import CallLimits
from dscall.errors import BudgetExhausted, UsageError
from dscall.executors.limit_board import BoardReply, ShardReport
from dscall.executors.slot_pool import EndpointState
from dscall.pipeline.budget import Budget
from dscall.pipeline.engine import Engine

SYNC_INTERVAL_S = 0.2
BOARD_TIMEOUT_S = 30.0  # a board that does not answer a top-up in this long: out of budget

KEY_POLL_S = 0.02  # a shard that asks for the key before the driver's call reached the board
Notify = Callable[[str], None]


def board_api_key(board: Any) -> str:
    """The run's explicit API key, which the driver handed to the board (never in a task's
    arguments). Asked once, before the shard's run is built; no error here shows it. The
    driver does not wait for the board to hold it before sending the shards (that would put
    the actor's start before theirs), so a shard that asks first asks again, briefly."""
    ray = importlib.import_module("ray")
    deadline = time.monotonic() + BOARD_TIMEOUT_S
    while True:
        try:
            key = ray.get(board.api_key.remote(), timeout=BOARD_TIMEOUT_S)
        except Exception as exc:  # the board gone or slow: its type only, no message
            raise RuntimeError(
                f"the run's limit board did not hand over the API key ({type(exc).__name__})"
            ) from None
        if isinstance(key, str) and key:
            return key
        if time.monotonic() >= deadline:
            raise UsageError("the driver said it gave the limit board an API key; it holds none")
        time.sleep(KEY_POLL_S)


class ClusterLink:
    def __init__(self, board: Any, rank: int, notify: Notify) -> None:
        self._board = board
        self._rank = rank
        self._notify = notify
        self._limits: Sequence[CallLimits] = ()  # each endpoint's, in the run's order
        self._budget: Budget | None = None
        self._engine: Engine | None = None
        self._granted = 0.0  # top-ups since the report on the way (its reply does not know them)

    @contextlib.asynccontextmanager
    async def attached(
        self, engine: Engine, limits: Sequence[CallLimits], budget: Budget | None
    ) -> AsyncIterator[None]:
        self._engine = engine
        self._limits = limits
        self._budget = budget
        joined: BoardReply = await self._board.join.remote(self._rank)
        if budget is not None:
            budget.top_up = self._top_up
        self._apply(joined)
        task = asyncio.ensure_future(self._syncing())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(Exception):  # the driver gone: nothing to give back to
                await asyncio.wait_for(self._sync(done=True), BOARD_TIMEOUT_S)

    async def _syncing(self) -> None:
        failed = False
        while True:
            await asyncio.sleep(SYNC_INTERVAL_S)
            try:
                self._apply(await self._sync(done=False))
                failed = False
            except Exception as exc:  # the board is unreachable: keep the last limits
                if not failed:
                    self._notify(f"warning: the cluster's limit board did not answer: {exc}")
                failed = True

    async def _sync(self, done: bool) -> BoardReply:
        report = self._report(done)
        self._granted = 0.0
        reply: BoardReply = await self._board.sync.remote(report)
        return reply

    def _report(self, done: bool) -> ShardReport:
        budget = self._budget
        committed = 0.0 if budget is None else budget.spent_usd + budget.reserved_usd
        # With several endpoints the router holds the waiting requests: any endpoint may take
        # them, so each counts them as its demand.
        queued = 0 if self._engine is None else self._engine.waiting
        states = tuple(
            EndpointState(
                limits.concurrency.maximum,
                limits.concurrency.in_flight,
                limits.concurrency.waiting + queued,
                limits.concurrency.cuts,
            )
            for limits in self._limits
        )
        return ShardReport(self._rank, states, committed, done, self._lease())

    def _lease(self) -> float:
        return 0.0 if self._budget is None else self._budget.limit_usd

    def _apply(self, reply: BoardReply) -> None:
        for limits, share in zip(self._limits, reply.endpoints, strict=False):  # () when done
            limits.concurrency.set_maximum(share.cap)
            if share.peer_cuts:
                limits.concurrency.peer_cut()
            if share.rpm is not None and limits.rpm is not None:
                limits.rpm.set_rate(share.rpm)
            if share.tpm is not None and limits.tpm is not None:
                limits.tpm.set_rate(share.tpm)
        if reply.budget_usd is not None and self._budget is not None:
            self._budget.limit_usd = reply.budget_usd + self._granted
        if reply.stop is not None and self._engine is not None:
            self._engine.request_stop(BudgetExhausted(reply.stop))  # once: it keeps the first

    def _top_up(self, need_usd: float) -> float:
        """More lease, asked there and then (the event loop waits: this is rare, near the end
        of the budget)."""
        ray = importlib.import_module("ray")
        try:
            granted = float(
                ray.get(self._board.top_up.remote(self._rank, need_usd), timeout=BOARD_TIMEOUT_S)
            )
            if granted > 0:
                self._granted += granted
                return granted
            reason = ray.get(self._board.stop_reason.remote(), timeout=BOARD_TIMEOUT_S)
        except Exception as exc:
            reason = f"the cluster's budget board did not answer ({type(exc).__name__})"
        raise BudgetExhausted(str(reason or "the run's budget is reached"))
