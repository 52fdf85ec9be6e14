"""A plan whose documents are spans: ``dscall.document`` from its start to its last call.

The plan wrapper sees each job of a document as the engine takes it, and the further jobs its
outcome leads to (a reduce, the next refine call, a schema re-ask), so it knows when a
document's last call is over for every plan alike, and hands the document's context to the
jobs (``Job.trace``): the engine makes each call span under it whatever task runs the call.
A document that ends without a call (unreadable, no text) is a span with no child, except
in ``compare``, where most documents have no chunk in the sample: there they have no span.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from dscall.errors import one_line
from dscall.plans.base import Cost, Job, Plan
from dscall.types import ExtractOutcome

if TYPE_CHECKING:
    from dscall.calls.caller import CallOutcome
    from dscall.traces.spans import RunTraces


class DocumentTrace:
    """One document's span and the calls it is still waiting for."""

    __slots__ = (
        "cached",
        "calls",
        "context",
        "cost",
        "failed",
        "feeding",
        "last_error",
        "open",
        "span",
    )

    def __init__(self, span: Span) -> None:
        self.span = span
        self.context = trace.set_span_in_context(span)
        self.open = 0  # jobs handed out and not yet done or dropped
        self.feeding = True  # the plan may still hand out jobs of its own for it
        self.calls = self.cached = self.failed = 0
        self.cost: float | None = 0.0
        self.last_error = ""

    def settled(self, outcome: CallOutcome, cost: Cost) -> None:
        self.calls += 1
        self.cached += outcome.cached
        if outcome.response is None:
            self.failed += 1
            self.last_error = f"{outcome.error_type}: {outcome.error_message}"
        self.cost = None if cost is None or self.cost is None else self.cost + cost

    def end(self, stopped: bool = False) -> None:
        span = self.span
        span.set_attributes(
            {
                "dscall.doc.calls": self.calls,
                "dscall.doc.calls_cached": self.cached,
                "dscall.doc.calls_failed": self.failed,
            }
        )
        if self.cost is not None:
            span.set_attribute("dscall.cost_usd", self.cost)
        if stopped:
            span.set_attribute("dscall.doc.stopped", True)
        if self.failed:
            note = f"{self.failed} of {self.calls} call(s) failed; last: {self.last_error}"
            span.set_status(Status(StatusCode.ERROR, one_line(note)))
        span.end()


class TracedPlan:
    """``plan`` with a document span around each document's calls."""

    def __init__(self, plan: Plan, traces: RunTraces) -> None:
        self._plan = plan
        self._traces = traces
        self._open: set[DocumentTrace] = set()

    @property
    def full(self) -> bool:
        return self._plan.full

    async def wait_for_room(self) -> None:
        await self._plan.wait_for_room()

    def close(self) -> None:
        self._plan.close()
        self.end_open()

    def end_open(self) -> None:
        """End the spans of documents still under way (the run stopped before them)."""
        for doc in list(self._open):
            self._open.discard(doc)
            doc.end(stopped=True)

    def start(self, document: ExtractOutcome) -> Iterator[Job]:
        jobs = iter(self._plan.start(document))
        first: list[Job] = []
        if not self._traces.idle_documents:  # a span only if the document makes a call
            first = [job for job in [next(jobs, None)] if job is not None]
            if not first:
                return
        doc = DocumentTrace(self._traces.document(document))
        self._open.add(doc)
        try:
            for job in itertools.chain(first, jobs):
                yield self._wrap(job, doc)
        finally:
            doc.feeding = False
            self._maybe_end(doc)

    def _wrap(self, job: Job, doc: DocumentTrace) -> Job:
        doc.open += 1
        job.trace = doc.context
        inner_done, inner_dropped = job.done, job.dropped

        def done(outcome: CallOutcome, cost: Cost) -> Iterable[Job]:
            doc.settled(outcome, cost)
            further = [self._wrap(each, doc) for each in inner_done(outcome, cost)]
            doc.open -= 1
            self._maybe_end(doc)
            return further

        def dropped() -> None:
            inner_dropped()
            doc.open -= 1
            doc.span.set_attribute("dscall.doc.stopped", True)
            self._maybe_end(doc)

        job.done, job.dropped = done, dropped
        return job

    def _maybe_end(self, doc: DocumentTrace) -> None:
        if doc.open or doc.feeding or doc not in self._open:
            return
        self._open.discard(doc)
        doc.end()
