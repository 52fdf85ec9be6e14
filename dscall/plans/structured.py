"""Structured answers (SPEC §10): check each answer against the schema, ask again with what is
wrong with it, and settle one row per chunk.

An answer that does not follow the schema is sent back, in the same conversation, with the
validation errors (``--schema-retries`` times at most). Each re-ask is a job like any other:
cached (so a rerun replays it), budgeted, retried and audited, with ``reask`` in its audit
lines. The chunk's row is written once, when the last ask ends: its ``attempts``, tokens and
``cost_usd`` cover every ask; a valid answer fills the schema's typed columns, and an answer
still invalid after the last re-ask fails the row with ``SchemaValidationError``, the raw
answer kept in ``output``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from dscall.calls.caller import CallOutcome, RequestContext
from dscall.calls.request import RequestBuilder
from dscall.plans.base import Cost, Job
from dscall.schema.arrow import row_values
from dscall.schema.spec import OutputSchema, parse_schema
from dscall.schema.validate import Validator
from dscall.stats import RunStats
from dscall.types import CallRequest, ChunkRow

SCHEMA_ERROR = "SchemaValidationError"
MAX_ERRORS_SHOWN = 3


class Structured:
    """The schema of a run's answers and how often an answer may be asked again."""

    def __init__(self, schema_json: str, retries: int) -> None:
        self.schema: OutputSchema = parse_schema(json.loads(schema_json), "--schema")
        self.validator = Validator(self.schema)
        self.retries = retries

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.schema.columns]


@dataclass(slots=True)
class _Asks:
    """What the asks of one chunk have cost so far."""

    attempts: int = 0
    cost: float | None = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hit_tokens: int = 0
    cache_miss_tokens: int = 0
    all_cached: bool = True

    def add(self, outcome: CallOutcome, cost: Cost) -> None:
        self.attempts += outcome.attempts
        self.all_cached = self.all_cached and outcome.cached
        self.cost = None if cost is None or self.cost is None else self.cost + cost
        if outcome.response is not None:
            usage = outcome.response.usage
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += usage.completion_tokens
            self.cache_hit_tokens += usage.cache_hit_tokens
            self.cache_miss_tokens += usage.cache_miss_tokens


def structured_job(
    structured: Structured,
    requests: RequestBuilder,
    user: str,
    request: CallRequest,
    context: RequestContext,
    make_row: Callable[[CallOutcome, Cost], ChunkRow],
    put: Callable[[ChunkRow], None],
    drop: Callable[[], None],
    stats: RunStats,
) -> Job:
    """The first ask of a chunk; its outcome leads to a re-ask or to the chunk's row."""
    asks = _Asks()

    def ask(request: CallRequest, context: RequestContext, left: int) -> Job:
        def done(outcome: CallOutcome, cost: Cost) -> list[Job]:
            asks.add(outcome, cost)
            response = outcome.response
            if response is None:  # the call itself failed: the row says why, as without schema
                put(_totals(make_row(outcome, asks.cost), asks))
                return []
            value, errors = structured.validator.check(response.output)
            if not errors:
                row = _totals(make_row(outcome, asks.cost), asks)
                row.extra = row_values(structured.schema, value)
                put(row)
                return []
            if left > 0:
                stats.schema_reasks += 1
                again = requests.build_reask(user, response.output, errors)
                number = context.reask + 1
                return [ask(again, replace(context, reask=number), left - 1)]
            stats.schema_invalid += 1
            put(_invalid(make_row, outcome, asks, errors))
            return []

        return Job(request, context, done, drop)

    return ask(request, context, structured.retries)


def _totals(row: ChunkRow, asks: _Asks) -> ChunkRow:
    """``row`` of the last ask, with the attempts, tokens and cost of every ask."""
    row.attempts = asks.attempts
    row.cached = asks.all_cached
    row.cost_usd = asks.cost
    if row.status == "ok":
        row.prompt_tokens = asks.prompt_tokens
        row.completion_tokens = asks.completion_tokens
        row.cache_hit_tokens = asks.cache_hit_tokens
        row.cache_miss_tokens = asks.cache_miss_tokens
    return row


def _invalid(
    make_row: Callable[[CallOutcome, Cost], ChunkRow],
    outcome: CallOutcome,
    asks: _Asks,
    errors: list[str],
) -> ChunkRow:
    """The row of a chunk whose last answer still does not follow the schema."""
    assert outcome.response is not None
    answer = outcome.response.output
    shown = "; ".join(errors[:MAX_ERRORS_SHOWN])
    failed = CallOutcome(
        None,
        SCHEMA_ERROR,
        f"the answer does not follow the schema: {shown}",
        outcome.attempts,
        outcome.cached,
        outcome.latency_ms,
        outcome.started_at,
        outcome.finished_at or time.time(),
    )
    row = make_row(failed, asks.cost)
    row.output = answer  # the raw answer, kept
    row.response_model = outcome.response.response_model
    row.finish_reason = outcome.response.finish_reason
    row.prompt_tokens = asks.prompt_tokens
    row.completion_tokens = asks.completion_tokens
    row.cache_hit_tokens = asks.cache_hit_tokens
    row.cache_miss_tokens = asks.cache_miss_tokens
    return _totals(row, asks)
