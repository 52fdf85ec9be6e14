"""Chains of calls per document: map-reduce, refine and pipelines of steps (SPEC §9).

Each document runs its own chain as its inputs become ready, while other documents are still
mapping: a reduce starts when the last chunk answer of its map step is in, a refine sends chunk
k + 1 when chunk k's answer is in, a document step when every answer it reads is in. Every call
is a ``Job`` for the engine, so it is cached, single-flighted, budgeted, retried and audited
like any other; a rerun after a crash replays finished calls from the cache (the state between
calls is the answers, and the answers are checkpointed there).

Rows: chunk-level steps (map, refine) write chunk rows to ``--out`` in input order, then step,
then chunk index (a refine reserves its places when the document starts); each document ends
in one documents-table row in input order, with its final answer, the calls, tokens and cost of
all its steps, and its status. Memory holds the documents in flight, bounded by both windows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from dscall.calls.caller import CallOutcome, RequestContext
from dscall.errors import DocumentError
from dscall.output.rows import ReorderBuffer, RowBuilder
from dscall.pipeline.budget import Budget
from dscall.plans.base import Cost, Job, changed_message, each_chunk
from dscall.plans.chain_state import DocumentRun, StepState, failed_document_row
from dscall.plans.estimate import chain_worst_case
from dscall.plans.steps import Step
from dscall.plans.structured import Checked, checked_job
from dscall.stats import RunStats
from dscall.types import (
    CallRequest,
    Chunk,
    ChunkedDocument,
    ChunkRow,
    DocumentRow,
    ExtractOutcome,
    FailedDocument,
)


class ChainPlan:
    def __init__(
        self,
        steps: tuple[Step, ...],
        rows: RowBuilder,
        chunk_rows: ReorderBuffer[ChunkRow],
        document_rows: ReorderBuffer[DocumentRow],
        stats: RunStats,
        notify: Callable[[str], None],
        allow_partial: bool = False,
        budget: Budget | None = None,
    ) -> None:
        self._steps = steps
        self._rows = rows
        self._chunk_rows = chunk_rows
        self._document_rows = document_rows
        self._stats = stats
        self._notify = notify
        self._allow_partial = allow_partial
        self._budget = budget
        self._in_flight: dict[int, DocumentRun] = {}

    @property
    def full(self) -> bool:
        return self._chunk_rows.full or self._document_rows.full

    async def wait_for_room(self) -> None:
        while self.full:
            if self._chunk_rows.full:
                await self._chunk_rows.wait_for_room()
            else:
                await self._document_rows.wait_for_room()

    def close(self) -> None:
        """The run ended: documents still in flight (it stopped early) end as incomplete."""
        for run in list(self._in_flight.values()):
            run.stopped = True
            self._finish(run)
        self._chunk_rows.drain()
        self._document_rows.drain()

    # -- starting a document ------------------------------------------------------------

    def start(self, document: ExtractOutcome) -> Iterator[Job]:
        if isinstance(document, FailedDocument):
            self._document_failed(document)
            return
        if not document.chunks:
            self._document_failed(self._rows.no_text(document))
            return
        held = self._hold_chain(document)  # raises BudgetExhausted: not started
        run = DocumentRun(document, self._document_rows.assign(), self._steps)
        run.held = held
        self._in_flight[run.seq] = run
        run.feeding = True
        try:
            for state in run.states:
                if state.step.kind == "map":
                    yield from self._map_jobs(run, state)
                elif state.step.kind == "refine":
                    # The places of its rows, in order, before any later document's rows.
                    state.seqs = [self._chunk_rows.assign() for _ in range(len(document.chunks))]
                    state.chunks = iter(document.chunks)
                    first = self._refine_next(run, state)
                    if first is not None:
                        yield first
                if run.failed is not None:
                    break
        finally:
            run.feeding = False
        yield from self._ready(run)
        self._maybe_finish(run)

    def _hold_chain(self, doc: ChunkedDocument) -> float:
        """With --budget-usd: hold the worst case of the document's whole chain (its map calls,
        a reduce tree, each refine call, document steps) before its first call, so that a
        chain the budget lets start is one it can finish; each call takes its share back when
        it is made (and reserves its own cost, like any call)."""
        budget = self._budget
        if budget is None:
            return 0.0
        tokens = [chunk.tokens for chunk in doc.chunks]
        amount = chain_worst_case(self._steps, tokens, budget.worst_case)
        return budget.hold(amount, f"the chain of {doc.source.rel_path}")

    def _release(self, run: DocumentRun, request: CallRequest | None = None) -> None:
        """Give back the held share of ``request`` (all that is held: ``None``)."""
        if self._budget is None or not run.held:
            return
        amount = run.held if request is None else min(run.held, self._budget.cost_of(request))
        run.held -= amount
        self._budget.release(amount)

    def _map_jobs(self, run: DocumentRun, state: StepState) -> Iterator[Job]:
        for chunk in each_chunk(run.doc, partial(self._document_changed, run)):
            request, context = run.chunk_request(state, chunk)
            yield self._job(run, state, request, context, chunk, self._chunk_rows.assign())

    def _refine_next(self, run: DocumentRun, state: StepState) -> Job | None:
        """The next refine call of ``run`` (None: no chunk is left, or the file changed)."""
        assert state.chunks is not None
        try:
            chunk = next(state.chunks, None)
        except DocumentError as exc:
            self._document_changed(run, state.settled, exc)
            return None
        if chunk is None:
            return None
        request, context = run.refine_request(state, chunk)
        return self._job(run, state, request, context, chunk, state.seqs[chunk.index])

    # -- jobs and their outcomes ------------------------------------------------------

    def _job(
        self,
        run: DocumentRun,
        state: StepState,
        request: CallRequest,
        context: RequestContext,
        chunk: Chunk | None = None,
        seq: int | None = None,
        position: int = 0,
    ) -> Job:
        run.open_jobs += 1
        self._release(run, request)

        structured = state.step.structured

        def done(outcome: CallOutcome, cost: Cost, checked: Checked | None = None) -> list[Job]:
            run.account(outcome, cost, checked.asks if checked is not None else 1)
            if chunk is not None and seq is not None:
                row = self._rows.chunk_row(run.doc, chunk, request, outcome, cost, state.step.name)
                if checked is not None and structured is not None:
                    checked.fill(row, structured)
                    if state.step.kind == "refine" and checked.value is not None:
                        state.value = checked.value  # the answer so far, as an object
                self._chunk_rows.put(seq, row)
                further = self._chunk_answered(run, state, chunk, outcome)
            else:
                if checked is not None:
                    state.value = checked.value
                further = self._document_answered(run, state, position, outcome)
            if state.complete:
                further += self._ready(run)
            run.open_jobs -= 1
            self._maybe_finish(run)
            return further

        def dropped() -> None:
            if seq is not None:
                self._chunk_rows.skip(seq)
                if state.step.kind == "refine":
                    self._skip_rest(state, after=seq)
            run.stopped = True
            run.open_jobs -= 1
            self._maybe_finish(run)

        if structured is None:
            return Job(request, context, done, dropped)
        return checked_job(
            structured, state.step.requests, request, context, done, dropped, self._stats
        )

    def _chunk_answered(
        self, run: DocumentRun, state: StepState, chunk: Chunk, outcome: CallOutcome
    ) -> list[Job]:
        state.settled += 1
        last = state.settled == len(run.doc.chunks)
        if state.step.kind == "map":
            state.record_chunk(chunk.index, outcome)
            state.complete = last
            return []
        # refine: carry the answer so far to the next chunk; stop at a failure.
        if outcome.response is None:
            state.record_chunk(chunk.index, outcome)
            state.answer = state.previous  # the last good answer, if any
            state.complete = True
            self._skip_rest(state, after=state.seqs[chunk.index])
            return []
        state.ok += 1
        state.previous = outcome.response.output
        if last:
            state.answer = state.previous
            state.complete = True
            return []
        job = self._refine_next(run, state)
        if job is None:  # the file changed: the document fails
            state.complete = True
            self._skip_rest(state, after=state.seqs[chunk.index])
            return []
        return [job]

    def _skip_rest(self, state: StepState, after: int) -> None:
        """Give up the places of a refine's rows that will not be written in this run."""
        for seq in state.seqs:
            if seq > after:
                self._chunk_rows.skip(seq)
        state.seqs = [seq for seq in state.seqs if seq <= after]

    def _document_answered(
        self, run: DocumentRun, state: StepState, position: int, outcome: CallOutcome
    ) -> list[Job]:
        response = outcome.response
        if state.step.kind == "document":
            if response is None:
                state.call_failed(outcome)
            else:
                state.answer = response.output
                state.complete = True
            return []
        level = state.level
        assert level is not None
        if response is None and not level.failed:
            state.call_failed(outcome)
        if not level.answer(position, response.output if response is not None else None):
            return []
        if level.failed:
            state.complete = True
            return []
        return self._reduce_level(run, state, level.next_answers(), level.depth + 1)

    # -- document-level steps ---------------------------------------------------------

    def _ready(self, run: DocumentRun) -> list[Job]:
        """Start the document-level steps whose inputs are all in."""
        jobs: list[Job] = []
        if run.feeding or run.stopped or run.failed is not None:
            return jobs
        for state in run.states:
            if state.started or state.step.per_chunk:
                continue
            inputs = [run.state(name) for name in state.step.reads]
            if not all(each.complete for each in inputs):
                continue
            state.started = True
            if state.step.kind == "reduce":
                jobs += self._start_reduce(run, state, inputs[0])
                continue
            failed = next((each for each in inputs if each.failure is not None), None)
            if failed is not None:
                state.blocked_by(failed, f"not run: step {failed.step.name!r} did not answer")
                continue
            request, context = run.document_request(state)
            jobs.append(self._job(run, state, request, context))
        return jobs

    def _start_reduce(self, run: DocumentRun, state: StepState, mapped: StepState) -> list[Job]:
        answers = mapped.answers()
        if mapped.failed and (not self._allow_partial or not answers):
            hint = " (--allow-partial reduces over the rest)" if answers else ""
            state.blocked_by(
                mapped,
                f"not reduced: {mapped.failed} of {len(run.doc.chunks)} chunk answer(s) "
                f"failed{hint}",
            )
            return []
        return self._reduce_level(run, state, answers, 1)

    def _reduce_level(
        self, run: DocumentRun, state: StepState, answers: list[str], depth: int
    ) -> list[Job]:
        if len(answers) == 1:  # reduced to one (a one-chunk document needs no call at all)
            state.answer = answers[0]
            state.complete = True
            return []
        level = state.start_level(answers, depth)
        jobs: list[Job] = []
        for position, group in level.calls():
            request, context = run.reduce_request(state, group)
            jobs.append(self._job(run, state, request, context, position=position))
        return jobs

    # -- ending a document ------------------------------------------------------------

    def _maybe_finish(self, run: DocumentRun) -> None:
        """A document ends when nothing of it is in flight and nothing more can start."""
        if run.open_jobs or run.feeding or run.seq not in self._in_flight:
            return
        self._finish(run)

    def _finish(self, run: DocumentRun) -> None:
        del self._in_flight[run.seq]
        self._release(run)
        row = run.document_row(self._rows.run_id)
        if run.failed is None and any(state.called_failed for state in run.states):
            self._stats.documents_failed += 1  # a reduce or document call of its own failed
            self._notify(f"{row.doc_path}: {row.error_type}: {row.error_message}")
        self._document_rows.put(run.seq, row)

    def _document_failed(self, failed: FailedDocument) -> None:
        self._stats.documents_failed += 1
        self._notify(f"{failed.source.rel_path}: {failed.error_type}: {failed.message}")
        self._chunk_rows.put(self._chunk_rows.assign(), self._rows.failed_document_row(failed))
        row = failed_document_row(self._rows.run_id, failed)
        self._document_rows.put(self._document_rows.assign(), row)

    def _document_changed(self, run: DocumentRun, sent: int, exc: DocumentError) -> None:
        doc = run.doc
        message = changed_message(doc, sent, exc)
        self._stats.documents_failed += 1
        self._notify(f"{doc.source.rel_path}: FileChanged: {message}")
        run.failed = ("FileChanged", message)
        row = self._rows.changed_document_row(doc, message)
        self._chunk_rows.put(self._chunk_rows.assign(), row)
