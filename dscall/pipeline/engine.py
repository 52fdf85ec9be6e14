"""The async core of ``dscall process``: jobs in, outcomes to their plan, in bounded memory.

    inputs (documents, ──> plan.start(doc) ──> job ──> cache hit?          ──> job.done now
    extracted ahead)       (waits for room          identical one
                            before each job)        in flight?          ──> follower task
                                                    otherwise           ──> call task
                                                          │
                          further jobs (a reduce, <── job.done(outcome, cost) <──┘
                          the next refine step)

The engine knows calls and their dependencies, not chunks or reduces: a plan (``plans/``)
turns documents into jobs and outcomes into rows or further jobs. Every job, whatever its
step, goes through the same path: cache, single flight, budget, limits, retries, audit.

Taking input waits while the plan's output window is full, so the number of requests built,
tasks alive and rows held is bounded whatever the corpus size. Stopping (interrupt, 401, 402,
outage, budget, a failed output) ends dispatch; what is on the wire finishes and is written
(to the cache, at least: an output that failed takes no more rows).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from dscall.calls.caller import CallOutcome, ChunkCaller, internal_error_outcome
from dscall.errors import BudgetExhausted, RunStopped
from dscall.pipeline.budget import BalanceWatch, Budget
from dscall.pipeline.ledger import Ledger
from dscall.plans.base import NO_JOBS, Job, Plan
from dscall.types import ExtractOutcome

if TYPE_CHECKING:
    from dscall.calls.endpoints import Endpoint
    from dscall.traces.spans import RunTraces


class Engine:
    def __init__(
        self,
        caller: ChunkCaller,
        plan: Plan,
        ledger: Ledger,
        budget: Budget | None = None,
        balance: BalanceWatch | None = None,
        notify: Callable[[str], None] = lambda message: None,
        traces: RunTraces | None = None,
    ) -> None:
        self._caller = caller
        self._traces = traces
        self._plan = plan if traces is None else traces.plan(plan)
        self._ledger = ledger
        self._budget = budget
        self._balance = balance
        self._notify = notify
        self._tasks: set[asyncio.Task[None]] = set()
        self._feeder: asyncio.Future[None] | None = None
        self.stop_reason: RunStopped | None = None

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """The endpoints the calls go to (a cluster executor moves their limits)."""
        return self._caller.router.endpoints

    @property
    def waiting(self) -> int:
        """Attempts waiting for any endpoint to have a slot (several endpoints)."""
        return self._caller.router.waiting

    def request_stop(self, reason: RunStopped) -> None:
        """Stop dispatching; requests already sent finish and are written."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self._notify(f"stopping: {reason}")
            # Waiting for extraction or for room in the window is safe to abandon.
            if self._feeder is not None and not self._feeder.done():
                self._feeder.cancel()

    def halts_attempts(self) -> RunStopped | None:
        """The reason no new attempt may start, if any. Running out of budget stops new
        dispatch only: requests already dispatched hold a reservation and may go ahead."""
        if isinstance(self.stop_reason, BudgetExhausted):
            return None
        return self.stop_reason

    def cancel_in_flight(self) -> None:
        """Abandon requests on the wire too (a second interrupt)."""
        for task in self._tasks:
            task.cancel()

    async def run(self, inputs: AsyncIterator[ExtractOutcome]) -> None:
        """Start every job of ``inputs`` and of what they lead to; return when all finished."""
        self._feeder = asyncio.ensure_future(self._feed(inputs))
        try:
            await self._feeder
        except asyncio.CancelledError:
            if self.stop_reason is None:  # cancelled from outside, not by request_stop
                raise
        finally:
            # Tasks started by finishing tasks (further jobs) are waited for too.
            while self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _feed(self, inputs: AsyncIterator[ExtractOutcome]) -> None:
        plan = self._plan
        try:
            async for document in inputs:
                jobs = plan.start(document)
                while True:
                    if plan.full:
                        await plan.wait_for_room()
                    try:
                        job = next(jobs, None)
                    except RunStopped as exc:  # the plan cannot start it (the budget)
                        self.request_stop(exc)
                        return
                    if job is None:
                        break
                    self.submit(job)
                    if self.stop_reason is not None:
                        return
        finally:
            aclose = getattr(inputs, "aclose", None)
            if aclose is not None:
                await aclose()

    def submit(self, job: Job) -> None:
        """Dispatch ``job`` and the further jobs its outcome leads to at once (cache hits)."""
        further = self._dispatch(job)
        if not further:  # the common case: a call task, or a cache hit that ends there
            return
        pending = deque(further)
        while pending:
            further = self._dispatch(pending.popleft())
            if further:
                pending.extend(further)

    def _dispatch(self, job: Job) -> Iterable[Job]:
        """Dispatch one job: its outcome now (a cache hit: the jobs that follow from it), or
        a task that will have it."""
        if self.stop_reason is not None and not isinstance(self.stop_reason, BudgetExhausted):
            job.dropped()
            return NO_JOBS
        caller = self._caller
        request = job.request
        cached = caller.cached(request)
        if cached is not None:
            if self._traces is not None:
                self._traces.reused(job, cached)
            return self._settle(job, cached)
        leader = caller.in_flight(request)
        if leader is not None:
            self._spawn(self._follow(job, leader))
            return NO_JOBS
        reserved = 0.0
        if self._budget is not None:
            try:
                reserved = self._budget.reserve(request)
            except RunStopped as exc:
                job.dropped()
                self.request_stop(exc)
                return NO_JOBS
        if self._balance is not None:
            self._balance.add(request)
        leader = caller.claim(request)
        self._spawn(self._call(job, reserved, leader))
        return NO_JOBS

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, job: Job, reserved: float, leader: asyncio.Future[CallOutcome]) -> None:
        try:
            call = self._caller.call(job.request, job.context, leader)
            outcome = await (call if self._traces is None else self._traces.call(job, call))
        except RunStopped as exc:
            job.dropped()
            self.request_stop(exc)
            return
        except asyncio.CancelledError:
            job.dropped()
            raise
        except Exception as exc:  # a bug of ours must cost one row, not the run or the order
            outcome = internal_error_outcome(exc)
        finally:
            if self._budget is not None:
                self._budget.release(reserved)
        self._done(job, outcome)

    async def _follow(self, job: Job, leader: asyncio.Future[CallOutcome]) -> None:
        try:
            wait = self._caller.follow(leader)
            outcome = await (wait if self._traces is None else self._traces.call(job, wait))
        except (RunStopped, asyncio.CancelledError):
            job.dropped()
            return
        except Exception as exc:
            outcome = internal_error_outcome(exc)
        self._done(job, outcome)

    def _settle(self, job: Job, outcome: CallOutcome) -> Iterable[Job]:
        cost = self._ledger.settle(job.request, outcome, job.context.step)
        return job.done(outcome, cost)

    def _done(self, job: Job, outcome: CallOutcome) -> None:
        for further in self._settle(job, outcome):
            self.submit(further)
