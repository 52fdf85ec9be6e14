"""The plan of a run and the output files its rows go to, opened together.

``--mode map`` (no chain) is ``MapPlan``: chunk rows to ``--out``, and ``--documents-out``
folded from them in order. A chain (map-reduce, refine, a pipeline) is ``ChainPlan``: chunk
rows of its chunk-level steps to ``--out``, and one row per document, written by the plan when
the document's last step ends, to ``--documents-out``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from dscall.calls.endpoint_plan import RunEndpoints
from dscall.calls.request import RequestBuilder
from dscall.config import REORDER_WINDOW_MIN, ProcessSettings
from dscall.errors import UsageError
from dscall.output.merge import DocumentMerger
from dscall.output.parquet import ParquetRowWriter, documents_schema, results_schema
from dscall.output.rows import ReorderBuffer, RowBuilder
from dscall.pipeline.budget import Budget
from dscall.pipeline.control import RunControl
from dscall.plans.base import Plan
from dscall.plans.chain import ChainPlan
from dscall.plans.map import MapPlan
from dscall.plans.steps import Step, compile_steps
from dscall.plans.structured import Structured
from dscall.stats import RunStats
from dscall.types import ChunkRow, DocumentRow

# Documents a chain holds at once (their answers wait for a reduce or the next refine call),
# at least, and per connection.
DOCUMENT_WINDOW_MIN = 256
DOCUMENTS_PER_CONNECTION = 2


@dataclass(frozen=True, slots=True)
class RunRequests:
    """What a run's requests are built from, checked before anything is opened or sent."""

    map: RequestBuilder | None  # --mode map
    steps: tuple[Step, ...]  # a chain
    structured: Structured | None = None  # --schema: answers checked and asked again

    @property
    def step_names(self) -> list[str]:
        return [step.name for step in self.steps] if self.steps else ["map"]

    @property
    def output_columns(self) -> list[str]:
        """A pipeline's ``<step>_output`` columns of the documents table."""
        return [f"{step.name}_output" for step in self.steps if step.answers_document]

    def typed(self, per_chunk: bool) -> list[tuple[str, pa.DataType]]:
        """The schema columns of --out (``per_chunk``: a run's --schema, or its chunk-level
        steps') or of --documents-out (its document-level steps')."""
        if not self.steps:
            return list(self.structured.schema.columns) if self.structured and per_chunk else []
        columns: list[tuple[str, pa.DataType]] = []
        for step in self.steps:
            if step.structured is not None and step.per_chunk == per_chunk:
                columns += step.structured.schema.columns
        return columns


def run_requests(settings: ProcessSettings, endpoints: RunEndpoints) -> RunRequests:
    """The run's request builders, for the first endpoint's profile and every answer source
    of its endpoints (``calls/endpoint_plan.py``)."""
    namespace = settings.cache.namespace
    provider = endpoints.provider
    source = endpoints.sources
    structured = None
    if settings.prompt.schema_json is not None:
        if settings.steps:
            raise UsageError(
                "--schema applies to --mode map; in a pipeline, give a step its own schema "
                "(schema = FILE or schema_inline = ...)"
            )
        structured = Structured(settings.prompt.schema_json, settings.prompt.schema_retries)
        _no_clash(structured.schema.columns, results_schema(True).names, "--schema", "--out")
    if not settings.steps:
        builder = RequestBuilder(settings.prompt, namespace, source, provider=provider)
        return RunRequests(builder, (), structured)
    steps = compile_steps(
        settings.steps, settings.prompt, namespace, source, settings.chunk.chunk_tokens, provider
    )
    planned = RunRequests(None, steps)
    _no_clash(planned.typed(per_chunk=True), results_schema(True).names, "a pipeline step", "--out")
    taken = documents_schema(planned.output_columns).names
    _no_clash(planned.typed(per_chunk=False), taken, "a pipeline step", "--documents-out")
    return planned


def _no_clash(
    columns: Sequence[tuple[str, pa.DataType]], taken: Sequence[str], whose: str, table: str
) -> None:
    """A schema's column may not take the name of another column of its table."""
    seen = set(taken)
    for name, _ in columns:
        if name in seen:
            raise UsageError(
                f"schema property {name!r} ({whose}) is also a column of {table}; rename it"
            )
        seen.add(name)


@dataclass(slots=True)
class PlanOutputs:
    plan: Plan
    writers: list[ParquetRowWriter]  # --out first
    finish: Callable[[], None]  # after the engine: release what is held, in order


def open_plan(
    requests: RunRequests,
    settings: ProcessSettings,
    run_id: str,
    metadata: dict[str, Any],
    control: RunControl,
    stats: RunStats,
    notify: Callable[[str], None],
    stack: contextlib.ExitStack | contextlib.AsyncExitStack,
    budget: Budget | None = None,
) -> PlanOutputs:
    """Open the output writers (dropped by ``stack`` unless closed by hand) and the plan."""
    out = settings.output
    chunk_schema = results_schema(out.include_text, requests.typed(per_chunk=True))
    writers = [ParquetRowWriter(out.out, chunk_schema, metadata)]
    stack.callback(writers[0].abort)
    doc_writer = None
    if out.documents_out is not None:
        columns = requests.output_columns if settings.pipeline is not None else []
        schema = documents_schema(columns, requests.typed(per_chunk=False))
        doc_writer = ParquetRowWriter(out.documents_out, schema, metadata)
        stack.callback(doc_writer.abort)
        writers.append(doc_writer)
    write_chunk_row = control.guarded(writers[0])
    window = max(REORDER_WINDOW_MIN, 8 * settings.call.max_concurrency)
    rows = RowBuilder(run_id, out.include_text, stats)
    if requests.map is not None:
        merger = None if doc_writer is None else DocumentMerger(run_id, control.guarded(doc_writer))

        def sink(row: ChunkRow) -> None:
            write_chunk_row(row)
            if merger is not None:
                merger.add(row)

        reorder = ReorderBuffer(sink, window)
        plan = MapPlan(requests.map, rows, reorder, stats, notify, requests.structured)

        def finish_map() -> None:
            plan.close()
            if merger is not None:
                merger.finish()

        return PlanOutputs(plan, writers, finish_map)
    write_document_row: Callable[[DocumentRow], None] = (
        control.guarded(doc_writer) if doc_writer is not None else _discard
    )
    documents = max(DOCUMENT_WINDOW_MIN, DOCUMENTS_PER_CONNECTION * settings.call.max_concurrency)
    chain = ChainPlan(
        requests.steps,
        rows,
        ReorderBuffer(write_chunk_row, window),
        ReorderBuffer(write_document_row, documents),
        stats,
        notify,
        settings.allow_partial,
        budget,
    )
    return PlanOutputs(chain, writers, chain.close)


def _discard(row: DocumentRow) -> None:
    """No --documents-out: a chain's document rows are built (the summary counts them) and
    dropped."""
