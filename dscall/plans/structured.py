"""Structured answers (SPEC §10): check each answer against the schema, ask again with what is
wrong with it, and hand the plan one outcome per ask-until-valid.

An answer that does not follow the schema is sent back, in the same conversation, with the
validation errors (``--schema-retries`` times at most). Each re-ask is a job like any other:
cached (so a rerun replays it), budgeted, retried and audited, with ``reask`` in its audit
lines. The plan sees one outcome when the last ask ends: its attempts and tokens cover every
ask (``cost`` too), with the answer's object when it is valid, or a ``SchemaValidationError``
with the raw answer when the last re-ask still is not. Map mode and every step of a chain go
through the same ``checked_job``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dscall.calls.caller import CallOutcome, RequestContext
from dscall.calls.request import RequestBuilder
from dscall.plans.base import Cost, Job
from dscall.schema.arrow import row_values
from dscall.schema.spec import OutputSchema, parse_schema
from dscall.schema.validate import Validator
from dscall.stats import RunStats
from dscall.types import CallRequest, CallResponse, ChunkRow, Usage

SCHEMA_ERROR = "SchemaValidationError"
MAX_ERRORS_SHOWN = 3


class Structured:
    """A schema answers must follow and how often an answer may be asked again."""

    def __init__(self, schema_json: str, retries: int) -> None:
        self.schema: OutputSchema = parse_schema(json.loads(schema_json), "--schema")
        self.validator = Validator(self.schema)
        self.retries = retries

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.schema.columns]

    def values(self, checked: Checked) -> dict[str, Any]:
        """The typed columns of an answer (all null when it failed)."""
        return row_values(self.schema, checked.value)


@dataclass(slots=True)
class Checked:
    """What the checking found: the answer's object, or the raw answer that failed."""

    value: dict[str, Any] | None = None
    raw: str | None = None
    usage: Usage = field(default_factory=Usage)  # of every ask (a failed row shows it too)
    asks: int = 1  # calls made: the first ask and its re-asks

    def fill(self, row: ChunkRow, structured: Structured) -> ChunkRow:
        """``row`` with the typed columns, or the raw answer kept and the tokens of the asks."""
        row.extra = structured.values(self)
        if self.raw is not None:
            row.output = self.raw
            row.prompt_tokens = self.usage.prompt_tokens
            row.completion_tokens = self.usage.completion_tokens
            row.cache_hit_tokens = self.usage.cache_hit_tokens
            row.cache_miss_tokens = self.usage.cache_miss_tokens
        return row


@dataclass(slots=True)
class _Asks:
    """What the asks of one answer have cost so far."""

    attempts: int = 0
    calls: int = 0
    cost: float | None = 0.0
    usage: Usage = field(default_factory=Usage)
    all_cached: bool = True

    def add(self, outcome: CallOutcome, cost: Cost) -> None:
        self.calls += 1
        self.attempts += outcome.attempts
        self.all_cached = self.all_cached and outcome.cached
        self.cost = None if cost is None or self.cost is None else self.cost + cost
        if outcome.response is not None:
            u, more = self.usage, outcome.response.usage
            self.usage = Usage(
                u.prompt_tokens + more.prompt_tokens,
                u.completion_tokens + more.completion_tokens,
                u.cache_hit_tokens + more.cache_hit_tokens,
                u.cache_miss_tokens + more.cache_miss_tokens,
            )

    def outcome(self, last: CallOutcome, response: CallResponse | None) -> CallOutcome:
        return replace(last, response=response, attempts=self.attempts, cached=self.all_cached)


Settle = Callable[[CallOutcome, Cost, Checked], list[Job]]


def _user_message(request: CallRequest) -> str:
    """The first ask's user message, read back from its body (only a re-ask needs it)."""
    messages = json.loads(request.body)["messages"]
    return str(messages[1]["content"])


def checked_job(
    structured: Structured,
    requests: RequestBuilder,
    request: CallRequest,
    context: RequestContext,
    settle: Settle,
    drop: Callable[[], None],
    stats: RunStats,
) -> Job:
    """The first ask of an answer; ``settle`` gets the outcome once the asking is over."""
    asks = _Asks()
    first = request

    def ask(request: CallRequest, context: RequestContext, left: int) -> Job:
        def done(outcome: CallOutcome, cost: Cost) -> list[Job]:
            asks.add(outcome, cost)
            response = outcome.response
            if response is None:  # the call itself failed: its row says why, as without schema
                return settle(asks.outcome(outcome, None), asks.cost, Checked(asks=asks.calls))
            value, errors = structured.validator.check(response.output)
            if not errors:
                whole = replace(response, usage=asks.usage)
                checked = Checked(value=value, asks=asks.calls)
                return settle(asks.outcome(outcome, whole), asks.cost, checked)
            if left > 0:
                stats.schema_reasks += 1
                again = requests.build_reask(_user_message(first), response.output, errors)
                return [ask(again, replace(context, reask=context.reask + 1), left - 1)]
            stats.schema_invalid += 1
            shown = "; ".join(errors[:MAX_ERRORS_SHOWN])
            failed = replace(
                asks.outcome(outcome, None),
                error_type=SCHEMA_ERROR,
                error_message=f"the answer does not follow the schema: {shown}",
            )
            checked = Checked(raw=response.output, usage=asks.usage, asks=asks.calls)
            return settle(failed, asks.cost, checked)

        return Job(request, context, done, drop)

    return ask(request, context, structured.retries)
