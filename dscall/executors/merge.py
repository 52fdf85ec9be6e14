"""The shards' figures summed into the run's one ``RunStats`` (what the summary, --summary-json
and the metrics textfile read on the driver).

Counts, tokens and cost add up; latencies are merged sample by sample (or histogram by
histogram past the exact limit); the concurrency limits add up too (the shards' limits together
are the run's). The clock is the driver's: a shard's monotonic clock means nothing elsewhere.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from dscall.stats import EndpointFigures, FrontTally, RunStats, StepFigures

# Figures that are not summed: the clock, and what merge_into treats on its own.
_NOT_SUMMED = {"started_monotonic", "finished_monotonic", "rows_per_chunk"}


def merge_into(total: RunStats, shard: RunStats) -> None:
    """Add ``shard``'s figures to ``total``."""
    _add_numbers(total, shard, RunStats)
    _add_numbers(total.front, shard.front, FrontTally)
    _add_counts(total.status_counts, shard.status_counts)
    total.latency.merge(shard.latency)
    total.cost_unknown = total.cost_unknown or shard.cost_unknown
    total.schema_checked = total.schema_checked or shard.schema_checked
    total.rows_per_chunk = max(total.rows_per_chunk, shard.rows_per_chunk)
    if shard.breaker_state != "closed":
        total.breaker_state = shard.breaker_state
    for name, step in shard.steps.items():
        _add_numbers(total.steps.setdefault(name, StepFigures()), step, StepFigures)
    for name, endpoint in shard.endpoints.items():
        mine = total.endpoints.setdefault(name, EndpointFigures(priority=endpoint.priority))
        _add_numbers(mine, endpoint, EndpointFigures)
        _add_counts(mine.status_counts, endpoint.status_counts)
        mine.latency.merge(endpoint.latency)
        if endpoint.breaker != "closed":
            mine.breaker = endpoint.breaker
        mine.disabled = mine.disabled or endpoint.disabled


def _add_numbers(total: Any, part: Any, kind: type) -> None:
    for item in fields(kind):
        if item.name in _NOT_SUMMED:
            continue
        value = getattr(part, item.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            setattr(total, item.name, getattr(total, item.name) + value)


def _add_counts(total: dict[int, int], part: dict[int, int]) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0) + value
