"""``--dry-run``: what a run would send and cost, per document, without calling anything.

Documents are extracted and chunked exactly as in a real run and each request is built, so the
token estimate is the one the run would reserve against ``--budget-usd``. Chunks already in the
cache are counted apart: a real run would not pay for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from dscall.calls.cache import ResultCache
from dscall.calls.request import RequestBuilder, answer_source
from dscall.config import ProcessSettings
from dscall.documents.stage import Notify, front_half
from dscall.pricing import load_prices
from dscall.stats import RunStats
from dscall.types import FailedDocument


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


async def estimate_run(
    settings: ProcessSettings, stats: RunStats, notify: Notify
) -> list[DocumentEstimate]:
    prices = load_prices(settings.prices_file)
    requests = RequestBuilder(
        settings.prompt,
        settings.cache.namespace,
        answer_source(settings.call, settings.mock),
    )
    model = settings.prompt.model
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
                prompt_tokens = cached = 0
                for chunk in outcome.chunks:
                    request = requests.build(chunk, outcome.source.rel_path)
                    if cache is not None and cache.get(request.request_hash) is not None:
                        cached += 1
                        continue
                    prompt_tokens += request.estimated_prompt_tokens
                paid = len(outcome.chunks) - cached
                output = paid * (settings.prompt.max_tokens or 0)
                estimates.append(
                    DocumentEstimate(
                        outcome.source.rel_path,
                        len(outcome.chunks),
                        cached,
                        prompt_tokens,
                        output,
                        prices.estimate(model, prompt_tokens, 0, now),
                        prices.estimate(model, prompt_tokens, output, now),
                    )
                )
    finally:
        if cache is not None:
            cache.close()
    return estimates
