"""``--dry-run``: what a run would send and cost, per document, without calling anything.

Documents are extracted and chunked exactly as in a real run and each map request is built, so
the token estimate is the one the run would reserve against ``--budget-usd``. Chunks already in
the cache are counted apart: a real run would not pay for them. A chain's later steps (reduce,
refine, document) are estimated from the answers' allowance (``plans.estimate``), as the budget
reserves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from dscall.calls.cache import ResultCache
from dscall.calls.endpoint_plan import plan_endpoints
from dscall.calls.request import RequestBuilder
from dscall.config import ProcessSettings
from dscall.documents.stage import Notify, front_half
from dscall.pipeline.plan_outputs import run_requests
from dscall.plans.estimate import StepEstimate, later_steps
from dscall.plans.steps import Step
from dscall.pricing import PriceTable, load_prices
from dscall.stats import RunStats
from dscall.types import ChunkedDocument, FailedDocument


@dataclass(frozen=True, slots=True)
class DocumentEstimate:
    doc_path: str
    chunks: int
    cached_chunks: int
    prompt_tokens: int  # estimated, for the chunks not cached
    max_output_tokens: int  # upper bound: max_tokens per uncached chunk
    input_cost_usd: float | None  # every prompt token a cache miss
    max_cost_usd: float | None  # input plus the full output allowance
    error: str | None = None
    calls: int = 0  # calls to pay for, every step
    steps: tuple[StepEstimate, ...] = ()  # per step of a chain (map steps included)
    # The upper bound at peak and at off-peak prices (None: the table has no off-peak hours).
    max_cost_peak_usd: float | None = None
    max_cost_off_peak_usd: float | None = None


async def estimate_run(
    settings: ProcessSettings, stats: RunStats, notify: Notify
) -> list[DocumentEstimate]:
    prices = load_prices(settings.prices_file)
    planned = run_requests(settings, plan_endpoints(settings.call, settings.mock))
    maps = [("map", planned.map)] if planned.map is not None else []
    maps += [(step.name, step.requests) for step in planned.steps if step.kind == "map"]
    now = datetime.now(timezone.utc)
    cache = None
    if settings.cache.enabled and not settings.cache.refresh:
        cache = ResultCache(settings.cache.directory, settings.cache.namespace)
    estimates: list[DocumentEstimate] = []
    try:
        async with front_half(
            settings.inputs,
            settings.discovery,
            settings.extract,
            settings.chunk,
            stats.front,
            notify,
            settings.cache,
        ) as front:
            async for outcome in front.outcomes:
                if isinstance(outcome, FailedDocument):
                    stats.documents_failed += 1
                    estimates.append(
                        DocumentEstimate(
                            outcome.source.rel_path,
                            0,
                            0,
                            0,
                            0,
                            0.0,
                            0.0,
                            f"{outcome.error_type}: {outcome.message}",
                        )
                    )
                    continue
                estimates.append(_document(outcome, maps, planned.steps, cache, prices, now))
    finally:
        if cache is not None:
            cache.close()
    return estimates


def _document(
    doc: ChunkedDocument,
    maps: list[tuple[str, RequestBuilder]],
    steps: tuple[Step, ...],
    cache: ResultCache | None,
    prices: PriceTable,
    now: datetime,
) -> DocumentEstimate:
    """The estimate of one document: its map calls built for real (cache hits counted apart),
    a chain's later steps from the answers' allowance."""
    path = doc.source.rel_path
    figures: list[tuple[StepEstimate, str]] = []  # with the model each step is asked
    cached = 0
    for number, (name, requests) in enumerate(maps):
        figure = StepEstimate(name)
        allowance = requests.prompt.max_tokens or 0
        for chunk in doc.chunks:
            request = requests.build(chunk, path)
            if cache is not None and any(
                cache.get(key) is not None for key in (request.request_hash, *request.other_hashes)
            ):
                cached += number == 0  # the chunks column counts the first map step
                continue
            figure.calls += 1
            figure.prompt_tokens += request.estimated_prompt_tokens
            figure.output_tokens += allowance
        figures.append((figure, requests.prompt.model))
    if steps:
        model = {step.name: step.requests.prompt.model for step in steps}
        tokens = [chunk.tokens for chunk in doc.chunks]
        figures += [(each, model[each.name]) for each in later_steps(steps, tokens)]
    inputs = [prices.estimate(m, f.prompt_tokens, 0, now) for f, m in figures]
    maxima = [f.cost(prices, m, now) for f, m in figures]
    peak, off_peak = _peak_and_off_peak(prices, now)
    at_peak = at_off_peak = None
    if peak is not None and off_peak is not None:
        at_peak = _total([f.cost(prices, m, peak) for f, m in figures])
        at_off_peak = _total([f.cost(prices, m, off_peak) for f, m in figures])
    return DocumentEstimate(
        path,
        len(doc.chunks),
        cached,
        sum(f.prompt_tokens for f, _ in figures),
        sum(f.output_tokens for f, _ in figures),
        None if None in inputs else sum(c or 0.0 for c in inputs),
        None if None in maxima else sum(c or 0.0 for c in maxima),
        calls=sum(f.calls for f, _ in figures),
        steps=tuple(f for f, _ in figures),
        max_cost_peak_usd=at_peak,
        max_cost_off_peak_usd=at_off_peak,
    )


def _total(costs: list[float | None]) -> float | None:
    return None if None in costs else sum(c or 0.0 for c in costs)


def _peak_and_off_peak(prices: PriceTable, now: datetime) -> tuple[datetime | None, ...]:
    """An instant at peak and one off-peak, from ``now`` on (None, None without both)."""
    change = prices.next_change(now)
    if change is None:
        return None, None
    if prices.is_off_peak(now):
        return change, now
    return now, change
