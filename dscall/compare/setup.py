"""What a comparison is made of, checked before anything is sent: its settings, the request
builders of its variants and judge, its sample (the corpus read once for chunk counts), and
the dry run's estimate of what it would cost."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from itertools import combinations
from typing import Any

from dscall.calls.cache import ResultCache
from dscall.calls.endpoint_plan import plan_endpoints
from dscall.calls.request import PromptTemplate, RequestBuilder
from dscall.chunking.tokens import estimate_tokens
from dscall.compare.judge import judge_template
from dscall.compare.plan import Variant
from dscall.compare.sample import Sample, draw_sample
from dscall.config import JUDGE_SYSTEM_PROMPT, ProcessSettings
from dscall.documents.stage import FrontHalf, front_half
from dscall.plans.structured import Structured
from dscall.pricing import PriceTable
from dscall.stats import FrontTally, RunStats
from dscall.types import CallRequest, Chunk, ChunkedDocument, FailedDocument

Notify = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class VariantSpec:
    name: str
    template: str
    prompt_source: str  # the file the template came from, or the option
    model: str


@dataclass(frozen=True, slots=True)
class CompareSettings:
    base: ProcessSettings  # inputs, chunking, the shared prompt settings, calls, cache, output
    variants: tuple[VariantSpec, ...]
    sample: int
    seed: int
    judge_template: str | None = None
    judge_source: str = "--judge-prompt"
    judge_model: str | None = None  # default: the base model


@dataclass(frozen=True, slots=True)
class Built:
    variants: list[Variant]
    judge: RequestBuilder | None
    structured: Structured | None

    @property
    def models(self) -> tuple[str, ...]:
        models = [variant.requests.prompt.model for variant in self.variants]
        if self.judge is not None:
            models.append(self.judge.prompt.model)
        return tuple(dict.fromkeys(models))


def build(settings: CompareSettings) -> Built:
    """The request builders; a bad template is a ``UsageError`` here, before any call."""
    base = settings.base
    endpoints = plan_endpoints(base.call, base.mock)
    source = endpoints.sources
    provider = endpoints.provider
    namespace = base.cache.namespace
    variants = []
    for spec in settings.variants:
        prompt = replace(base.prompt, template=spec.template, model=spec.model)
        template = PromptTemplate.parse(spec.template, spec.prompt_source)
        variants.append(
            Variant(
                spec.name,
                RequestBuilder(prompt, namespace, source, template, provider=provider),
                spec.prompt_source,
            )
        )
    judge = None
    if settings.judge_template is not None:
        template = judge_template(settings.judge_template, settings.judge_source)
        prompt = replace(
            base.prompt,
            model=settings.judge_model or base.prompt.model,
            system=JUDGE_SYSTEM_PROMPT,
            template=settings.judge_template,
            json_mode=False,
            schema_json=None,
        )
        judge = RequestBuilder(prompt, namespace, source, template, provider=provider)
    structured = None
    if base.prompt.schema_json is not None:
        structured = Structured(base.prompt.schema_json, base.prompt.schema_retries)
    return Built(variants, judge, structured)


def _front(
    base: ProcessSettings, tally: FrontTally, notify: Notify
) -> contextlib.AbstractAsyncContextManager[FrontHalf]:
    return front_half(base.inputs, base.discovery, base.extract, base.chunk, tally, notify)


async def draw(settings: CompareSettings, stats: RunStats, notify: Notify) -> Sample:
    """Read the corpus for its chunk counts and draw the sample (see ``sample``)."""
    counts: list[tuple[str, int]] = []
    async with _front(settings.base, stats.front, notify) as front:
        async for outcome in front.outcomes:
            if isinstance(outcome, FailedDocument):
                notify(f"{outcome.source.rel_path}: {outcome.error_type}: {outcome.message}")
                continue
            counts.append((outcome.source.rel_path, len(outcome.chunks)))
    return draw_sample(counts, settings.sample, settings.seed)


async def sampled_chunks(
    settings: CompareSettings, sample: Sample
) -> AsyncIterator[tuple[ChunkedDocument, Chunk]]:
    """The sample's chunks, with their documents, read again (for the dry run); notes about
    the corpus were told when the sample was drawn."""
    picked: dict[str, set[int]] = {}
    for path, index in sample.picked:
        picked.setdefault(path, set()).add(index)
    async with _front(settings.base, FrontTally(), lambda message: None) as front:
        async for outcome in front.outcomes:
            wanted = picked.get(outcome.source.rel_path)
            if not wanted or isinstance(outcome, FailedDocument):
                continue
            for chunk in outcome.chunks:
                if chunk.index in wanted:
                    yield outcome, chunk


def _line(name: str) -> dict[str, Any]:
    return {"variant": name, "calls": 0, "cached": 0, "prompt_tokens": 0, "max_output_tokens": 0}


async def estimate(
    settings: CompareSettings, built: Built, sample: Sample, prices: PriceTable
) -> dict[str, Any]:
    """What the comparison would send and cost: each variant's requests built for real (the
    cached ones counted apart). The judge's requests too, and looked up, for a chunk whose
    answers are all in the cache (without a schema: a checked answer may be a re-ask's);
    otherwise estimated with both answers at their ``max_tokens`` allowance."""
    base = settings.base
    now = datetime.now(timezone.utc)
    cache = None
    if base.cache.enabled and not base.cache.refresh:
        cache = ResultCache(base.cache.directory, base.cache.namespace)
    lines = {variant.name: _line(variant.name) for variant in built.variants}
    judged = _line("judge")
    judge = built.judge
    allowance = base.prompt.max_tokens or 0
    chunks = 0
    try:
        async for doc, chunk in sampled_chunks(settings, sample):
            chunks += 1
            answers: dict[str, str | None] = {}
            for variant in built.variants:
                request = variant.requests.build(chunk, doc.source.rel_path)
                hit = cache.get(request.request_hash) if cache is not None else None
                answers[variant.name] = hit.output if hit is not None else None
                _count(lines[variant.name], request, hit is not None)
            if judge is None:
                continue
            for first, second in combinations(built.variants, 2):
                one, two = answers[first.name], answers[second.name]
                for a, b in ((one, two), (two, one)):
                    if a is None or b is None or built.structured is not None:
                        judged["calls"] += 1
                        judged["prompt_tokens"] += judge.estimated_prompt_tokens(
                            chunk.tokens + 2 * allowance
                        )
                        judged["max_output_tokens"] += judge.prompt.max_tokens or 0
                        continue
                    values = {"question": chunk.text, "answer_a": a, "answer_b": b}
                    tokens = chunk.tokens + estimate_tokens(a) + estimate_tokens(b)
                    request = judge.build_values(values, tokens)
                    hit = cache.get(request.request_hash) if cache is not None else None
                    _count(judged, request, hit is not None)
    finally:
        if cache is not None:
            cache.close()
    models = [variant.requests.prompt.model for variant in built.variants]
    rows = list(lines.values())
    if judge is not None:
        rows.append(judged)
        models.append(judge.prompt.model)
    for line, model in zip(rows, models, strict=True):
        line["max_cost_usd"] = prices.estimate(
            model, line["prompt_tokens"], line["max_output_tokens"], now
        )
    lines_out = rows
    costs = [line["max_cost_usd"] for line in lines_out]
    return {
        "dry_run": True,
        "chunks": chunks,
        "documents": sample.documents,
        "lines": lines_out,
        "max_cost_usd": None if None in costs else sum(costs),
    }


def _count(line: dict[str, Any], request: CallRequest, cached: bool) -> None:
    if cached:
        line["cached"] += 1
        return
    line["calls"] += 1
    line["prompt_tokens"] += request.estimated_prompt_tokens
    line["max_output_tokens"] += request.max_tokens or 0
