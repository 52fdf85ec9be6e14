"""The spans of one run: run -> document -> call -> attempt (SPEC §13).

    dscall.run        the run: run id, model; at its end exit code, stop reason, totals
    dscall.document   one input document (the plan wrapper of ``dscall.traces.plan``)
    chat {model}      one call with its retries, cache and single flight (GenAI convention:
                      gen_ai.* for model and tokens); a cache hit or a single-flight follower
                      is a call with ``dscall.cached`` true and no attempt under it
    POST              one HTTP attempt, with the endpoint (name and host) and its status

Parents are explicit where the engine's tasks would lose them: a document's context travels
on its jobs (``Job.trace``) to the task that makes the call span; an attempt runs in the task
of its call, so the call span is the current one there (contextvars). Messages go through
``one_line`` (which redacts keys); no exception is recorded whole (a traceback may quote
anything).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, cast

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from dscall import __version__
from dscall.errors import one_line
from dscall.stats import RunStats
from dscall.traces.setup import run_provider
from dscall.types import FailedDocument

if TYPE_CHECKING:
    from dscall.calls.caller import CallOutcome
    from dscall.calls.endpoints import Endpoint
    from dscall.plans.base import Job, Plan
    from dscall.traces.plan import TracedPlan
    from dscall.types import CallRequest, ExtractOutcome, Usage

# Attribute names: the OpenTelemetry GenAI and HTTP conventions where they have one.
MODEL = "gen_ai.request.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
ERROR_TYPE = "error.type"


class RunTraces:
    """The tracer of one run and its run span (``async with``: started, then ended and
    flushed)."""

    def __init__(
        self,
        run_id: str,
        model: str,
        stats: RunStats,
        command: str = "process",
        variants: Sequence[str] = (),
    ) -> None:
        self._provider, self._owned = run_provider()
        self.tracer = self._provider.get_tracer("dscall", __version__)
        self._stats = stats
        attributes: dict[str, str | list[str]] = {
            "dscall.run_id": run_id,
            "dscall.version": __version__,
            "dscall.command": command,
            MODEL: model,
        }
        if variants:
            attributes["dscall.compare.variants"] = list(variants)
        # compare reads the whole corpus and calls for a sample of its chunks: a document
        # span only where there is a call, not one for each document passed over.
        self.idle_documents = command != "compare"
        self.run_span: Span = self.tracer.start_span("dscall.run", attributes=attributes)
        self.run_context: Context = trace.set_span_in_context(self.run_span)
        self._plans: list[TracedPlan] = []

    async def __aenter__(self) -> RunTraces:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for plan in self._plans:  # nobody closes a wrapper: the outputs close the plan they opened
            plan.end_open()
        span = self.run_span
        if exc is not None:
            fail(span, type(exc).__name__, str(exc))
        stats = self._stats
        span.set_attributes(
            {
                "dscall.chunks": stats.chunks_total,
                "dscall.chunks_failed": stats.chunks_failed,
                "dscall.chunks_cached": stats.chunks_cached,
                "dscall.documents_failed": stats.documents_failed,
                "dscall.requests": stats.requests_sent,
                "dscall.retries": stats.retries,
                "dscall.cost_usd": stats.cost_usd,
                INPUT_TOKENS: stats.prompt_tokens,
                OUTPUT_TOKENS: stats.completion_tokens,
                CACHE_READ_TOKENS: stats.cache_hit_tokens,
            }
        )
        span.end()
        if self._owned:  # an exporter may wait on the network: not on the event loop
            await asyncio.to_thread(self._provider.shutdown)

    def ended(self, exit_code: int, stop_reason: object | None) -> None:
        """How the run ended (before the span ends)."""
        span = self.run_span
        span.set_attribute("dscall.exit_code", exit_code)
        if stop_reason is not None:
            span.set_attribute("dscall.stop_reason", one_line(str(stop_reason)))
            fail(span, type(stop_reason).__name__, str(stop_reason))
        elif exit_code:
            span.set_status(Status(StatusCode.ERROR, "some chunks or documents failed"))

    def plan(self, plan: Plan) -> Plan:
        from dscall.traces.plan import TracedPlan

        traced = TracedPlan(plan, self)
        self._plans.append(traced)
        return traced

    # -- documents -------------------------------------------------------------------

    def document(self, document: ExtractOutcome) -> Span:
        source = document.source
        attributes: dict[str, str | int] = {
            "dscall.doc.path": source.rel_path,
            "dscall.doc.type": str(source.doc_type),
        }
        if document.doc_id is not None:
            attributes["dscall.doc.id"] = document.doc_id
        if not isinstance(document, FailedDocument):
            attributes["dscall.doc.chunks"] = len(document.chunks)
        span = self.tracer.start_span(
            "dscall.document", context=self.run_context, attributes=attributes
        )
        if isinstance(document, FailedDocument):  # it could not be read
            fail(span, document.error_type, document.message)
        return span

    # -- calls -----------------------------------------------------------------------

    def _call_span(self, job: Job, start_time: int | None = None) -> Span:
        request, context = job.request, job.context
        attributes: dict[str, str | int | bool] = {
            "gen_ai.operation.name": "chat",
            MODEL: request.model,
            "dscall.step": context.step,
            "dscall.doc.path": context.doc_path,
            "dscall.request_hash": request.request_hash,
        }
        if context.chunk_index is not None:
            attributes["dscall.chunk.index"] = context.chunk_index
        if context.reask:
            attributes["dscall.reask"] = context.reask
        if request.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = request.max_tokens
        parent = cast("Context | None", job.trace)
        return self.tracer.start_span(
            f"chat {request.model}",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=start_time,
        )

    async def call(self, job: Job, call: Awaitable[CallOutcome]) -> CallOutcome:
        """``await call`` (the caller's call, or a single-flight follower's wait) in the call
        span of ``job``, current for the attempts under it."""
        span = self._call_span(job)
        with trace.use_span(
            span, end_on_exit=True, record_exception=False, set_status_on_exception=False
        ):
            try:
                outcome = await call
            except BaseException as exc:  # the run stops, or it was cancelled
                span.set_attributes({"dscall.status": "error", "dscall.stopped": True})
                fail(span, type(exc).__name__, str(exc) or type(exc).__name__)
                raise
            settle_call(span, outcome)
            return outcome

    def reused(self, job: Job, outcome: CallOutcome) -> None:
        """A cache hit at dispatch: a call span without attempts."""
        span = self._call_span(job)
        settle_call(span, outcome)
        span.end()

    # -- attempts --------------------------------------------------------------------

    def attempt(
        self,
        request: CallRequest,
        endpoint: Endpoint,
        attempt: int,
        status: int | None,
        error_type: str | None,
        usage: Usage | None,
        latency_ms: float,
    ) -> None:
        """One HTTP attempt that just ended (called from its ``finally``: on a failure, the
        exception being raised is the one in flight)."""
        end = time.time_ns()
        attributes: dict[str, str | int] = {
            "http.request.method": "POST",
            "server.address": endpoint.backend.host,
            "dscall.endpoint": endpoint.name,
            "dscall.attempt": attempt,
            MODEL: request.model,
        }
        if attempt > 1:
            attributes["http.request.resend_count"] = attempt - 1
        if status is not None:
            attributes["http.response.status_code"] = status
        if usage is not None:
            attributes.update(tokens(usage))
        span = self.tracer.start_span(
            "POST",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=end - int(latency_ms * 1e6),
        )
        if error_type is not None:
            exc = sys.exc_info()[1]
            fail(span, error_type, str(exc) if exc is not None else error_type)
        span.end(end_time=end)


def tokens(usage: Usage) -> dict[str, str | int]:
    return {
        INPUT_TOKENS: usage.prompt_tokens,
        OUTPUT_TOKENS: usage.completion_tokens,
        CACHE_READ_TOKENS: usage.cache_hit_tokens,
        "dscall.usage.cache_miss_tokens": usage.cache_miss_tokens,
    }


def settle_call(span: Span, outcome: CallOutcome) -> None:
    """What a call span says of its outcome."""
    attributes: dict[str, str | int | bool | list[str]] = {
        "dscall.cached": outcome.cached,
        "dscall.attempts": outcome.attempts,
        "dscall.retries": max(0, outcome.attempts - 1),
        "dscall.status": "ok" if outcome.response is not None else "error",
    }
    if outcome.endpoint is not None:
        attributes["dscall.endpoint"] = outcome.endpoint
    response = outcome.response
    if response is not None:
        attributes["gen_ai.response.model"] = response.response_model
        attributes["gen_ai.response.finish_reasons"] = [response.finish_reason]
        attributes.update(tokens(response.usage))
    span.set_attributes(attributes)
    if response is None:
        fail(span, outcome.error_type or "error", outcome.error_message or "")


def fail(span: Span, error_type: str, message: str) -> None:
    """An ERROR status with the one-line message (keys redacted) and ``error.type``."""
    span.set_attribute(ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, one_line(f"{error_type}: {message}")))
