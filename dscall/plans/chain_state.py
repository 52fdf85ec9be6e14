"""The state of one document's chain: per step, what is in; per document, its totals and row.

Kept apart from the scheduling (``plans.chain``) so that what a document's row says (its status,
answer, calls, tokens and cost) is one readable function of this state.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from dscall.calls.caller import CallOutcome, RequestContext
from dscall.chunking.tokens import estimate_tokens
from dscall.config import REDUCE_SEPARATOR
from dscall.plans.base import Cost
from dscall.plans.reduce import ReduceLevel
from dscall.plans.steps import Step
from dscall.schema.arrow import row_values
from dscall.types import (
    CallRequest,
    Chunk,
    ChunkedDocument,
    DocumentRow,
    DocumentStatus,
    FailedDocument,
)

Failure = tuple[str, str]  # error_type, error_message


@dataclass(slots=True)
class StepState:
    step: Step
    settled: int = 0  # chunk-level: chunk calls that ended (answered or failed)
    ok: int = 0
    failed: int = 0
    complete: bool = False  # nothing more will happen in this step
    started: bool = False  # document-level: its first call was made (or it was blocked)
    failure: Failure | None = None  # the first failed call, or why the step could not run
    called_failed: bool = False  # a document-level call of its own failed (not blocked)
    answer: str | None = None  # the document-level answer
    chunk_answers: list[str | None] = field(default_factory=list)  # map: in chunk order
    previous: str | None = None  # refine: the answer so far
    seqs: list[int] = field(default_factory=list)  # refine: the places of its rows
    chunks: Iterator[Chunk] | None = None  # refine: the chunks still to send
    level: ReduceLevel | None = None  # reduce: the level in progress
    value: dict[str, object] | None = None  # a document-level answer's object (its schema's)

    def record_chunk(self, index: int, outcome: CallOutcome) -> None:
        response = outcome.response
        if response is None:
            self.failed += 1
            if self.failure is None:
                self.failure = (outcome.error_type or "Error", outcome.error_message or "")
            return
        self.ok += 1
        self.chunk_answers[index] = response.output

    def answers(self) -> list[str]:
        return [answer for answer in self.chunk_answers if answer is not None]

    def call_failed(self, outcome: CallOutcome) -> None:
        self.called_failed = True
        self.failure = (outcome.error_type or "Error", outcome.error_message or "")
        self.complete = True

    def blocked_by(self, other: StepState, why: str) -> None:
        """This step cannot run: a step it reads failed (``why``, then the first failure)."""
        self.started = self.complete = True
        kind, message = other.failure or ("StepFailed", "")
        self.failure = (kind, f"{why}; first: {message}" if message else why)

    def start_level(self, answers: list[str], depth: int) -> ReduceLevel:
        self.level = ReduceLevel(answers, self.step.reduce_tokens, depth)
        return self.level


class DocumentRun:
    """One document on its way through the chain."""

    def __init__(self, doc: ChunkedDocument, seq: int, steps: tuple[Step, ...]) -> None:
        self.doc = doc
        self.seq = seq  # its place in the documents table
        self.states = [StepState(step) for step in steps]
        self._by_name = {state.step.name: state for state in self.states}
        for state in self.states:
            if state.step.kind == "map":
                state.chunk_answers = [None] * len(doc.chunks)
        self.open_jobs = 0  # jobs handed out and not yet done or dropped
        self.feeding = False  # its first jobs are still being handed out
        self.stopped = False  # a job was dropped: the run stopped before this chain ended
        self.failed: Failure | None = None  # the whole document failed (its file changed)
        self.calls = 0
        self.prompt_tokens = self.completion_tokens = 0
        self.cache_hit_tokens = self.cache_miss_tokens = 0
        self.cost_usd = 0.0
        self.held = 0.0  # budget held for its later steps, not yet taken back

    def state(self, name: str) -> StepState:
        return self._by_name[name]

    def account(self, outcome: CallOutcome, cost: Cost, calls: int = 1) -> None:
        self.calls += calls
        response = outcome.response
        if response is None:
            return
        usage = response.usage
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.cache_hit_tokens += usage.cache_hit_tokens
        self.cache_miss_tokens += usage.cache_miss_tokens
        self.cost_usd += cost or 0.0

    # -- requests ---------------------------------------------------------------------

    def _context(self, state: StepState, chunk_index: int | None) -> RequestContext:
        return RequestContext(self.doc.source.rel_path, chunk_index, state.step.name)

    def chunk_request(self, state: StepState, chunk: Chunk) -> tuple[CallRequest, RequestContext]:
        request = state.step.requests.build(chunk, self.doc.source.rel_path)
        return request, self._context(state, chunk.index)

    def refine_request(self, state: StepState, chunk: Chunk) -> tuple[CallRequest, RequestContext]:
        step = state.step
        if state.previous is None:  # the first chunk: answered like a map call
            assert step.first is not None
            request = step.first.build(chunk, self.doc.source.rel_path)
        else:
            values = _chunk_values(chunk, self.doc.source.rel_path)
            values["previous"] = state.previous
            request = step.requests.build_values(values, chunk.tokens + _tokens(state.previous))
        return request, self._context(state, chunk.index)

    def reduce_request(
        self, state: StepState, group: list[str]
    ) -> tuple[CallRequest, RequestContext]:
        outputs = REDUCE_SEPARATOR.join(group)
        values = {
            "outputs": outputs,
            "path": self.doc.source.rel_path,
            "chunk_count": str(len(self.doc.chunks)),
        }
        request = state.step.requests.build_values(values, _tokens(outputs))
        return request, self._context(state, None)

    def document_request(self, state: StepState) -> tuple[CallRequest, RequestContext]:
        values = {"path": self.doc.source.rel_path, "chunk_count": str(len(self.doc.chunks))}
        content = 0
        for name in state.step.reads:
            answer = self.state(name).answer or ""
            values[f"steps.{name}"] = answer
            content += _tokens(answer)
        return state.step.requests.build_values(values, content), self._context(state, None)

    # -- the row ----------------------------------------------------------------------

    def document_row(self, run_id: str) -> DocumentRow:
        doc = self.doc
        source = doc.source
        status, failure, output = self._verdict()
        chunk_state = next((s for s in self.states if s.step.per_chunk), None)
        row = DocumentRow(
            run_id,
            source.rel_path,
            doc.doc_id,
            source.doc_type,
            status,
            page_count=doc.page_count,
            no_text_pages=list(doc.no_text_pages),
            chunk_count=len(doc.chunks),
            chunks_ok=chunk_state.ok if chunk_state else 0,
            chunks_failed=chunk_state.failed if chunk_state else 0,
            output=output,
            error_type=failure[0] if failure else None,
            error_message=failure[1] if failure else None,
            calls=self.calls,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cache_hit_tokens=self.cache_hit_tokens,
            cache_miss_tokens=self.cache_miss_tokens,
            cost_usd=self.cost_usd,
        )
        row.extra = {
            f"{state.step.name}_output": state.answer
            for state in self.states
            if state.step.answers_document
        }
        for state in self.states:  # a document-level step's schema: its typed columns
            structured = state.step.structured
            if structured is not None and state.step.answers_document:
                row.extra.update(row_values(structured.schema, state.value))
        return row

    def _verdict(self) -> tuple[DocumentStatus, Failure | None, str | None]:
        """Status, first failure and final answer of the document."""
        if self.failed is not None:
            return "error", self.failed, None
        if self.stopped and not all(state.complete for state in self.states):
            why = "the run stopped before this document's steps ended"
            return "incomplete", ("Incomplete", why), None
        own = next((s for s in self.states if s.called_failed and s.failure), None)
        if own is not None and own.failure is not None:
            kind, message = own.failure
            return "error", (kind, f"step {own.step.name!r}: {message}"), None
        first = next((s.failure for s in self.states if s.failure is not None), None)
        final = next((s for s in reversed(self.states) if s.step.answers_document), None)
        if final is None:  # chunk-level steps only: the last one's answers, joined
            last = [s for s in self.states if s.step.per_chunk][-1]
            output = REDUCE_SEPARATOR.join(last.answers()) if last.ok else None
        else:
            output = final.answer
            first = final.failure or first
        if first is None:
            return "ok", None, output
        answered = output is not None or any(s.ok for s in self.states)
        return ("partial" if answered else "error"), first, output


def failed_document_row(run_id: str, failed: FailedDocument) -> DocumentRow:
    """The documents-table row of a file that could not be read, or holds no text."""
    source = failed.source
    return DocumentRow(
        run_id,
        source.rel_path,
        failed.doc_id,
        source.doc_type,
        "error",
        error_type=failed.error_type,
        error_message=failed.message,
    )


def _chunk_values(chunk: Chunk, doc_path: str) -> dict[str, str]:
    return {
        "text": chunk.text,
        "path": doc_path,
        "page_start": "" if chunk.page_start is None else str(chunk.page_start),
        "page_end": "" if chunk.page_end is None else str(chunk.page_end),
        "chunk_index": str(chunk.index),
        "chunk_count": str(chunk.count),
    }


def _tokens(text: str) -> int:
    return estimate_tokens(text)
