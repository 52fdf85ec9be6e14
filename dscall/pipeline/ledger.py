"""What each call cost: tokens and money into the run's figures, spending against the budget.

One place for the money of every call, whatever step or mode it belongs to, so that a row
builder only writes down what the ledger settled. A cached answer (an earlier run's, or an
identical request's in this run) and a failed call cost nothing in this run.
"""

from __future__ import annotations

from datetime import datetime, timezone

from dscall.calls.caller import CallOutcome
from dscall.pipeline.budget import Budget
from dscall.pricing import PriceTable
from dscall.stats import RunStats, StepFigures
from dscall.types import CallRequest


class Ledger:
    def __init__(
        self,
        prices: PriceTable,
        stats: RunStats,
        budget: Budget | None = None,
        endpoint_prices: dict[str, tuple[PriceTable, str | None]] | None = None,
    ) -> None:
        self._prices = prices
        self._stats = stats
        self._budget = budget
        # Endpoints priced otherwise (pipeline/endpoint_checks.py): name -> (table, the name
        # the run's model has there).
        self._endpoint_prices = endpoint_prices or {}

    def settle(self, request: CallRequest, outcome: CallOutcome, step: str) -> float | None:
        """Count the tokens and cost of ``outcome``; its cost (None: the price is unknown)."""
        figures = self._stats.steps.get(step)
        if figures is None:
            figures = self._stats.steps[step] = StepFigures()
        figures.calls += 1
        response = outcome.response
        if response is None:
            figures.failed += 1
            return 0.0
        if outcome.cached:
            figures.cached += 1
            return 0.0
        stats = self._stats
        usage = response.usage
        figures.prompt_tokens += usage.prompt_tokens
        figures.completion_tokens += usage.completion_tokens
        stats.prompt_tokens += usage.prompt_tokens
        stats.completion_tokens += usage.completion_tokens
        stats.cache_hit_tokens += usage.cache_hit_tokens
        stats.cache_miss_tokens += usage.cache_miss_tokens
        finished = datetime.fromtimestamp(outcome.finished_at, tz=timezone.utc)
        table, model = self._prices, request.model
        if self._endpoint_prices and outcome.endpoint in self._endpoint_prices:
            table, renamed = self._endpoint_prices[outcome.endpoint]
            model = renamed or model
        cost = table.cost(model, usage, finished)
        if cost is None:
            stats.cost_unknown = True
            return None
        stats.cost_usd += cost
        figures.cost_usd += cost
        if self._budget is not None and cost:
            self._budget.spend(cost)
        return cost
