"""The async pipeline of ``dscall process``: ordered outcomes in, ordered rows out.

    extract_in_order ──> for each chunk: build request ──> cache hit?      ──> row now
    (worker processes,                                     identical one
     running ahead)                                        in flight?     ──> follower task
                                                           otherwise      ──> call task
                                                                  │
                                      ReorderBuffer (window) <────┘──> writers (in order)

Dispatch waits while the reorder window is full, so the number of requests built, tasks alive
and rows held is bounded whatever the corpus size. Stopping (interrupt, 401, 402, outage,
budget, a failed output) ends dispatch; what is on the wire finishes and is written (to the
cache, at least: an output that failed takes no more rows).

A document whose file changes or vanishes while its chunks are being read (streamed text files
are read again as their chunks are dispatched) ends with a ``FileChanged`` error row after the
rows of the chunks already sent; later documents go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Coroutine
from contextlib import aclosing
from typing import Any

from dscall.calls.caller import CallOutcome, ChunkCaller, RequestContext, internal_error_outcome
from dscall.calls.request import RequestBuilder
from dscall.errors import BudgetExhausted, DocumentError, RunStopped
from dscall.output.rows import ReorderBuffer, RowBuilder
from dscall.pipeline.budget import BalanceWatch, Budget
from dscall.stats import RunStats
from dscall.types import CallRequest, Chunk, ChunkedDocument, ExtractOutcome, FailedDocument


class Engine:
    def __init__(
        self,
        caller: ChunkCaller,
        requests: RequestBuilder,
        rows: RowBuilder,
        reorder: ReorderBuffer,
        stats: RunStats,
        budget: Budget | None = None,
        balance: BalanceWatch | None = None,
        notify: Callable[[str], None] = lambda message: None,
    ) -> None:
        self._caller = caller
        self._requests = requests
        self._rows = rows
        self._reorder = reorder
        self._stats = stats
        self._budget = budget
        self._balance = balance
        self._notify = notify
        self._tasks: set[asyncio.Task[None]] = set()
        self._feeder: asyncio.Future[None] | None = None
        self.stop_reason: RunStopped | None = None

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

    async def run(self, outcomes: AsyncGenerator[ExtractOutcome, None]) -> None:
        """Dispatch every chunk of ``outcomes``; return when all dispatched calls finished."""
        self._feeder = asyncio.ensure_future(self._feed(outcomes))
        try:
            await self._feeder
        except asyncio.CancelledError:
            if self.stop_reason is None:  # cancelled from outside, not by request_stop
                raise
        finally:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _feed(self, outcomes: AsyncGenerator[ExtractOutcome, None]) -> None:
        async with aclosing(outcomes):
            await self._feed_from(outcomes)

    async def _feed_from(self, outcomes: AsyncGenerator[ExtractOutcome, None]) -> None:
        async for outcome in outcomes:
            self._stats.documents_seen += 1
            if isinstance(outcome, FailedDocument):
                await self._document_failed(outcome)
                continue
            if not outcome.chunks:
                await self._document_failed(self._rows.no_text(outcome))
                continue
            chunks = iter(outcome.chunks)
            sent = 0
            while True:
                try:
                    # A streamed text file is read again as its chunks are taken: a file that
                    # changed or vanished since it was chunked fails here, mid-document.
                    chunk = next(chunks, None)
                except DocumentError as exc:
                    await self._document_changed(outcome, sent, exc)
                    break
                if chunk is None:
                    break
                if self._reorder.full:
                    await self._reorder.wait_for_room()
                self._dispatch(outcome, chunk)
                sent += 1
                if self.stop_reason is not None:
                    return

    async def _document_failed(self, failed: FailedDocument) -> None:
        await self._document_error_row(
            f"{failed.source.rel_path}: {failed.error_type}: {failed.message}",
            self._rows.failed_document_row(failed),
        )

    async def _document_changed(self, doc: ChunkedDocument, sent: int, exc: DocumentError) -> None:
        """The rest of ``doc`` cannot be read as it was chunked: one error row for the
        document after the rows of the chunks already sent; the run goes on."""
        message = f"{exc.message} (after {sent} of {len(doc.chunks)} chunks were sent)"
        await self._document_error_row(
            f"{doc.source.rel_path}: FileChanged: {message}",
            self._rows.changed_document_row(doc, message),
        )

    async def _document_error_row(self, note: str, row: dict[str, Any]) -> None:
        """Count, tell and write (in order) the error row of a document."""
        self._stats.documents_failed += 1
        self._notify(note)
        if self._reorder.full:
            await self._reorder.wait_for_room()
        self._reorder.put(self._reorder.assign(), row)

    def _dispatch(self, doc: ChunkedDocument, chunk: Chunk) -> None:
        request = self._requests.build(chunk, doc.source.rel_path)
        seq = self._reorder.assign()
        cached = self._caller.cached(request)
        if cached is not None:
            self._reorder.put(seq, self._rows.chunk_row(doc, chunk, request, cached))
            return
        leader = self._caller.in_flight(request)
        if leader is not None:
            self._spawn(self._follow(seq, doc, chunk, request, leader))
            return
        reserved = 0.0
        if self._budget is not None:
            try:
                reserved = self._budget.reserve(request)
            except RunStopped as exc:
                self._reorder.skip(seq)
                self.request_stop(exc)
                return
        if self._balance is not None:
            self._balance.add(request)
        leader = self._caller.claim(request)
        self._spawn(self._call(seq, doc, chunk, request, reserved, leader))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(
        self,
        seq: int,
        doc: ChunkedDocument,
        chunk: Chunk,
        request: CallRequest,
        reserved: float,
        leader: asyncio.Future[CallOutcome],
    ) -> None:
        context = RequestContext(doc.source.rel_path, chunk.index)
        try:
            outcome = await self._caller.call(request, context, leader)
        except RunStopped as exc:
            self._reorder.skip(seq)
            self.request_stop(exc)
            return
        except asyncio.CancelledError:
            self._reorder.skip(seq)
            raise
        except Exception as exc:  # a bug of ours must cost one row, not the run or the order
            outcome = internal_error_outcome(exc)
        finally:
            if self._budget is not None:
                self._budget.release(reserved)
        self._finish(seq, doc, chunk, request, outcome)

    async def _follow(
        self,
        seq: int,
        doc: ChunkedDocument,
        chunk: Chunk,
        request: CallRequest,
        leader: asyncio.Future[CallOutcome],
    ) -> None:
        try:
            outcome = await self._caller.follow(leader)
        except (RunStopped, asyncio.CancelledError):
            self._reorder.skip(seq)
            return
        except Exception as exc:
            outcome = internal_error_outcome(exc)
        self._finish(seq, doc, chunk, request, outcome)

    def _finish(
        self,
        seq: int,
        doc: ChunkedDocument,
        chunk: Chunk,
        request: CallRequest,
        outcome: CallOutcome,
    ) -> None:
        row = self._rows.chunk_row(doc, chunk, request, outcome)
        if self._budget is not None and row.get("cost_usd"):
            self._budget.spend(row["cost_usd"])
        self._reorder.put(seq, row)
