"""``dscall compare`` as one async function: the composition root of a comparison.

The same pieces as ``dscall process`` (``pipeline/run.py``), composed around ``ComparePlan``:
the output paths checked, the corpus read once to draw the sample, the endpoint asked before
paying, then the backend, cache, audit log, limits, breaker, caller, ledger and engine, with
the corpus read again through the front half as the engine's input (the plan keeps the
sampled chunks). The Parquet is written at the end from the plan's rows, and the figures are
computed from the same rows.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dscall import __version__
from dscall.calls.endpoint_plan import plan_endpoints
from dscall.compare.plan import ComparePlan
from dscall.compare.report import compare_summary
from dscall.compare.sample import Sample
from dscall.compare.setup import Built, CompareSettings, Notify, build, draw, estimate
from dscall.compare.table import write_rows
from dscall.documents.stage import front_half
from dscall.errors import EXIT_OK, EXIT_STOPPED, RunStopped, UsageError
from dscall.output.safety import OutputPath, check_outputs
from dscall.pipeline.budget import Budget
from dscall.pipeline.call_path import build_engine, open_call_path
from dscall.pipeline.control import RunControl, signals_stop
from dscall.pipeline.run import new_run_id, resolve_api_key
from dscall.pricing import PriceTable, load_prices
from dscall.stats import FrontTally, RunStats
from dscall.traces import open_traces, traced

if TYPE_CHECKING:
    from dscall.traces.spans import RunTraces


@dataclass(slots=True)
class CompareResult:
    run_id: str
    exit_code: int
    stop_reason: RunStopped | None
    summary: dict[str, Any]  # the figures, or the dry run's estimate
    rows_written: int = 0


def _outputs(settings: CompareSettings) -> list[OutputPath]:
    out = settings.base.output
    paths = [OutputPath("--out", out.out, "parquet")]
    if out.audit_log is not None:
        paths.append(OutputPath("--audit-log", out.audit_log, "audit"))
    if out.summary_json is not None:
        paths.append(OutputPath("--summary-json", out.summary_json, "summary"))
    return paths


async def run_compare(
    settings: CompareSettings, api_key: str | None, stats: RunStats, notify: Notify
) -> CompareResult:
    """Run (or, with ``dry_run``, price) the comparison; with ``mock``, against an in-process
    simulator."""
    base = settings.base
    outputs = _outputs(settings)
    if base.dry_run:  # writes no --out, no audit log: only a summary
        outputs = [output for output in outputs if output.kind == "summary"]
    check_outputs(outputs, base.inputs, base.output.force)
    built = build(settings)  # a bad template fails before the corpus is read
    prices = load_prices(base.prices_file)
    sample = await draw(settings, stats, notify)
    if not sample.picked:
        raise UsageError("the inputs hold no chunk to sample (no document has text)")
    notify(
        f"sample: {len(sample.picked)} chunks of {sample.documents} documents "
        f"({sample.available} chunks in all), {len(built.variants)} variants"
        + (", judged both ways round" if built.judge is not None else "")
    )
    if base.dry_run:
        estimated = await estimate(settings, built, sample, prices)
        estimated.update(run_id=None, exit_code=EXIT_OK)  # what marks a dscall summary
        return CompareResult("", EXIT_OK, None, _with_sample(estimated, sample))
    from dscall.fdlimit import fit_to_fd_limit
    from dscall.output.lock import OutputLock

    # Before any socket or worker of the run is opened; one writer of --out at a time.
    settings = replace(settings, base=fit_to_fd_limit(base, notify))
    async with OutputLock([base.output.out], wait=False, notify=notify):
        if not base.mock:
            key = api_key if base.call.endpoints else resolve_api_key(api_key, mock=False)
            return await _run(settings, built, sample, prices, key, stats, notify)
        from dscall.simulator import SimulatorConfig, start_simulator

        async with start_simulator(SimulatorConfig()) as sim:
            call = replace(settings.base.call, base_url=sim.base_url)
            mocked = replace(settings, base=replace(settings.base, call=call))
            built = build(mocked)
            key = resolve_api_key(api_key, mock=True)
            return await _run(mocked, built, sample, prices, key, stats, notify)


def _silent(message: str) -> None:
    """Notes of the second reading of the corpus (the first one told them)."""


def _with_sample(summary: dict[str, Any], sample: Sample) -> dict[str, Any]:
    summary["sample"] = {
        "chunks": len(sample.picked),
        "documents": sample.documents,
        "available_chunks": sample.available,
    }
    return summary


async def _run(
    settings: CompareSettings,
    built: Built,
    sample: Sample,
    prices: PriceTable,
    api_key: str | None,
    stats: RunStats,
    notify: Notify,
) -> CompareResult:
    run_id = new_run_id()
    names = [variant.name for variant in built.variants]
    traces = open_traces(run_id, settings.base.prompt.model, stats, notify, "compare", names)
    return await traced(
        traces,
        lambda traces: _run_with(
            settings, built, sample, prices, api_key, stats, notify, run_id, traces
        ),
    )


async def _run_with(
    settings: CompareSettings,
    built: Built,
    sample: Sample,
    prices: PriceTable,
    api_key: str | None,
    stats: RunStats,
    notify: Notify,
    run_id: str,
    traces: RunTraces | None = None,
) -> CompareResult:
    base = settings.base
    budget = None
    if base.budget_usd is not None:
        budget = Budget(
            base.budget_usd, prices, base.prompt.model, lookahead_s=base.call.attempt_timeout_s
        )
        for model in built.models:
            budget.check_model(model)
    control = RunControl(notify)
    plan = ComparePlan(
        built.variants,
        sample,
        prices,
        stats,
        notify,
        built.structured,
        built.judge,
        base.output.include_text,
    )
    async with contextlib.AsyncExitStack() as stack:
        path = await open_call_path(stack, base, api_key, run_id, prices, notify, built.models)
        engine = build_engine(path, base, stats, plan, prices, budget, notify, traces)
        control.engine = engine
        with signals_stop(control):
            # The corpus read again: what discovery passes over was told when the sample
            # was drawn, so its notes are not repeated.
            async with front_half(
                base.inputs, base.discovery, base.extract, base.chunk, FrontTally(), _silent
            ) as front:
                await engine.run(front.outcomes)
            control.writing = True
    plan.close()
    stop = control.stop_reason
    names = [variant.name for variant in built.variants]
    summary = compare_summary(
        names, plan.rows, built.structured is not None, built.judge is not None
    )
    summary.update(
        run_id=run_id,
        complete=stop is None,
        stop_reason=str(stop) if stop is not None else None,
        calls_not_finished=plan.dropped,
        out=str(base.output.out),
    )
    _with_sample(summary, sample)
    metadata = {
        "run_id": run_id,
        "dscall_version": __version__,
        "command": "compare",
        "answer_source": plan_endpoints(base.call, base.mock).sources[0],
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "seed": settings.seed,
        "sample": settings.sample,
        "variants": [
            {"name": v.name, "model": v.model, "prompt": v.prompt_source} for v in settings.variants
        ],
    }
    written = write_rows(base.output.out, plan.rows, metadata)
    code = EXIT_STOPPED if stop is not None else EXIT_OK
    summary["exit_code"] = code
    return CompareResult(run_id, code, stop, summary, written)
