"""The jobs of ``dscall compare``: each sampled chunk under every variant, then the judge.

``start(doc)`` yields one job per variant for each chunk of ``doc`` in the sample. When the
last variant of a chunk is answered and a judge is set, the chunk leads to two judge calls per
pair of variants whose answers both came back (A then B, and B then A: see ``judge``). Every
call goes through the engine like any other: cached, single-flighted, budgeted, retried,
audited (the audit's ``step`` is the variant's name, or ``judge``).

Rows are plain dicts, one per answer (``kind = "answer"``) and one per judge call (``kind =
"judge"``), held in memory: a comparison's size is its sample's, not its corpus's. They are
sorted once the engine is done, so the table does not depend on which call finished first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from itertools import combinations
from typing import Any

from dscall.calls.caller import CallOutcome, RequestContext
from dscall.calls.request import RequestBuilder
from dscall.chunking.tokens import estimate_tokens
from dscall.compare.judge import parse_verdict
from dscall.compare.sample import Sample
from dscall.errors import DocumentError
from dscall.plans.base import NO_JOBS, Cost, Job, changed_message, each_chunk
from dscall.plans.structured import Checked, Structured, checked_job
from dscall.pricing import PriceTable
from dscall.stats import RunStats
from dscall.types import CallRequest, Chunk, ChunkedDocument, ExtractOutcome, FailedDocument, Usage

Row = dict[str, Any]
JUDGE_STEP = "judge"


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    requests: RequestBuilder
    prompt_source: str  # the prompt file, or the option the template came from


@dataclass(slots=True)
class _Chunk:
    doc: ChunkedDocument
    chunk: Chunk
    answers: dict[str, str | None] = field(default_factory=dict)  # None: no usable answer


class ComparePlan:
    def __init__(
        self,
        variants: list[Variant],
        sample: Sample,
        prices: PriceTable,
        stats: RunStats,
        notify: Callable[[str], None],
        structured: Structured | None = None,
        judge: RequestBuilder | None = None,
        include_text: bool = True,
    ) -> None:
        self._variants = variants
        self._picked: dict[str, set[int]] = {}
        for path, index in sample.picked:
            self._picked.setdefault(path, set()).add(index)
        self._prices = prices
        self._stats = stats
        self._notify = notify
        self._structured = structured
        self._judge = judge
        self._include_text = include_text
        self.rows: list[Row] = []
        self.dropped = 0  # calls that did not finish in this run (it stopped)
        stats.schema_checked = structured is not None

    @property
    def full(self) -> bool:
        return False  # rows are bounded by the sample

    async def wait_for_room(self) -> None:
        return None

    def close(self) -> None:
        order = {variant.name: number for number, variant in enumerate(self._variants)}

        def key(row: Row) -> tuple[Any, ...]:
            variant = row["variant"] if row["kind"] == "answer" else row["judge_a"]
            second = -1 if row["kind"] == "answer" else order[row["judge_b"]]
            return (row["kind"], row["doc_path"], row["chunk_index"], order[variant], second)

        self.rows.sort(key=key)

    def start(self, document: ExtractOutcome) -> Iterator[Job]:
        path = document.source.rel_path
        picked = self._picked.get(path)
        if not picked:
            return
        if isinstance(document, FailedDocument):  # it was read when the sample was drawn
            self._stats.documents_failed += 1
            self._notify(f"{path}: {document.error_type}: {document.message}")
            return
        for chunk in each_chunk(document, partial(self._changed, document)):
            if chunk.index in picked:
                state = _Chunk(document, chunk)
                for variant in self._variants:
                    yield self._answer_job(state, variant)

    def _answer_job(self, state: _Chunk, variant: Variant) -> Job:
        path = state.doc.source.rel_path
        request = variant.requests.build(state.chunk, path)
        context = RequestContext(path, state.chunk.index, step=variant.name)
        structured = self._structured
        if structured is None:

            def done(outcome: CallOutcome, cost: Cost) -> Iterable[Job]:
                return self._answered(state, variant, request, outcome, cost, None)

            return Job(request, context, done, self._drop)

        def settle(outcome: CallOutcome, cost: Cost, checked: Checked) -> list[Job]:
            return self._answered(state, variant, request, outcome, cost, checked)

        return checked_job(
            structured, variant.requests, request, context, settle, self._drop, self._stats
        )

    def _answered(
        self,
        state: _Chunk,
        variant: Variant,
        request: CallRequest,
        outcome: CallOutcome,
        cost: Cost,
        checked: Checked | None,
    ) -> list[Job]:
        row = self._row("answer", state, request, outcome, cost, checked)
        row["variant"] = variant.name
        row["prompt_source"] = variant.prompt_source
        if checked is not None:
            answered = outcome.response is not None or checked.raw is not None
            row["schema_valid"] = checked.value is not None if answered else None
        self.rows.append(row)
        self._count(outcome)
        state.answers[variant.name] = row["output"] if row["status"] == "ok" else None
        if len(state.answers) < len(self._variants) or self._judge is None:
            return []
        return self._judge_jobs(state)

    def _judge_jobs(self, state: _Chunk) -> list[Job]:
        judge = self._judge
        assert judge is not None
        jobs: list[Job] = []
        path = state.doc.source.rel_path
        for first, second in combinations(self._variants, 2):
            one, two = state.answers[first.name], state.answers[second.name]
            if one is None or two is None:  # nothing to compare: the pair is not judged here
                continue
            for a, b, answer_a, answer_b in ((first, second, one, two), (second, first, two, one)):
                values = {"question": state.chunk.text, "answer_a": answer_a, "answer_b": answer_b}
                tokens = state.chunk.tokens + estimate_tokens(answer_a) + estimate_tokens(answer_b)
                request = judge.build_values(values, tokens)
                context = RequestContext(path, state.chunk.index, step=JUDGE_STEP)
                pair = (first.name, second.name, a.name, b.name)
                done = partial(self._judged, state, pair, request)
                jobs.append(Job(request, context, done, self._drop))
        return jobs

    def _judged(
        self,
        state: _Chunk,
        pair: tuple[str, str, str, str],
        request: CallRequest,
        outcome: CallOutcome,
        cost: Cost,
    ) -> Iterable[Job]:
        row = self._row("judge", state, request, outcome, cost, None)
        row["pair_first"], row["pair_second"], row["judge_a"], row["judge_b"] = pair
        row["verdict"] = parse_verdict(row["output"]) if row["status"] == "ok" else None
        self.rows.append(row)
        self._count(outcome)
        return NO_JOBS

    def _row(
        self,
        kind: str,
        state: _Chunk,
        request: CallRequest,
        outcome: CallOutcome,
        cost: Cost,
        checked: Checked | None,
    ) -> Row:
        response = outcome.response
        usage: Usage | None = response.usage if response is not None else None
        output = response.output if response is not None else None
        if checked is not None and checked.raw is not None:  # the answer broke the schema
            usage, output = checked.usage, checked.raw
        at = datetime.fromtimestamp(outcome.started_at or 0.0, timezone.utc)
        return {
            "kind": kind,
            "variant": None,
            "doc_path": state.doc.source.rel_path,
            "chunk_index": state.chunk.index,
            "chunk_text": state.chunk.text if self._include_text else None,
            "model": request.model,
            "request_hash": request.request_hash,
            "status": "ok" if response is not None else "error",
            "output": output,
            "answer_chars": len(output) if output is not None else None,
            "error_type": outcome.error_type,
            "error_message": outcome.error_message,
            "attempts": outcome.attempts,
            "cached": outcome.cached,
            "latency_ms": outcome.latency_ms if outcome.attempts else None,
            "prompt_tokens": usage.prompt_tokens if usage is not None else None,
            "completion_tokens": usage.completion_tokens if usage is not None else None,
            # What the answer costs at list price, cached or not (comparable across reruns),
            # and what this run paid for it (0 for a cached answer).
            "price_usd": self._prices.cost(request.model, usage, at) if usage else None,
            "cost_usd": cost,
        }

    def _count(self, outcome: CallOutcome) -> None:
        stats = self._stats
        stats.chunks_done += 1
        stats.chunks_cached += outcome.cached
        stats.chunks_failed += outcome.response is None

    def _drop(self) -> None:
        self.dropped += 1

    def _changed(self, doc: ChunkedDocument, sent: int, exc: DocumentError) -> None:
        self._stats.documents_failed += 1
        self._notify(f"{doc.source.rel_path}: FileChanged: {changed_message(doc, sent, exc)}")
