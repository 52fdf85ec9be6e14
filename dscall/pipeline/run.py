"""``dscall process`` as one async function: open everything, check, run the engine, publish.

Order matters for "fail early, before money is spent": every local resource (output files,
cache, audit log) is opened and the endpoint is asked for its models and balance before the
first paid request. Output files are published (renamed into place) only at the end, with
whatever finished, including when the run stopped early.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dscall import __version__
from dscall.calls.endpoint_plan import plan_endpoints
from dscall.config import (
    API_KEY_ENV,
    DEFAULT_MOCK_KEY,
    OutputSettings,
    ProcessSettings,
    settings_metadata,
)
from dscall.documents.stage import front_half
from dscall.errors import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_STOPPED,
    OutputFailed,
    RunStopped,
    UsageError,
)
from dscall.output.safety import OutputPath, check_outputs
from dscall.pipeline.budget import Budget
from dscall.pipeline.call_path import build_engine, open_call_path
from dscall.pipeline.control import RunControl, signals_stop
from dscall.pipeline.endpoint_checks import dearest_prices
from dscall.pipeline.plan_outputs import open_plan, run_requests
from dscall.pricing import load_prices
from dscall.stats import RunStats, StepFigures
from dscall.traces import open_traces, traced

if TYPE_CHECKING:
    from dscall.pipeline.cluster_hook import ClusterHook
    from dscall.traces.spans import RunTraces
from dscall.types import SourceFile

Notify = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: str
    exit_code: int
    stop_reason: RunStopped | None
    rows_written: int
    out: Path
    published: bool = True  # False: the output could not be written (the run's stop reason)
    provider: str = ""  # the endpoint profile the run used (deepseek, openai)


def new_run_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def resolve_api_key(explicit: str | None, mock: bool) -> str:
    key = explicit or os.environ.get(API_KEY_ENV, "")
    if not key and mock:
        return DEFAULT_MOCK_KEY
    if not key:
        raise UsageError(f"no API key: set {API_KEY_ENV} (or pass --mock to use the simulator)")
    return key


def output_paths(out: OutputSettings) -> list[OutputPath]:
    """The files a run writes, for ``check_outputs`` and the output locks."""
    paths = [OutputPath("--out", out.out, "parquet")]
    if out.documents_out is not None:
        paths.append(OutputPath("--documents-out", out.documents_out, "parquet"))
    if out.audit_log is not None:
        paths.append(OutputPath("--audit-log", out.audit_log, "audit"))
    if out.summary_json is not None:
        paths.append(OutputPath("--summary-json", out.summary_json, "summary"))
    if out.metrics_textfile is not None:
        paths.append(OutputPath("--metrics-textfile", out.metrics_textfile, "metrics"))
    return paths


async def run_process(
    settings: ProcessSettings,
    api_key: str | None,
    stats: RunStats,
    notify: Notify,
    sources: Sequence[SourceFile] | None = None,
    cluster: ClusterHook | None = None,
) -> RunResult:
    """Run ``dscall process``; with ``settings.mock``, against an in-process simulator.
    ``sources``: the documents to read, discovered already (a shard's, ``dscall.executors``);
    by default ``settings.inputs`` are discovered. ``cluster``: the shard's hold on the
    cluster's limits and budget (``pipeline.cluster_hook``)."""
    check_outputs(output_paths(settings.output), settings.inputs, settings.output.force)
    from dscall.output.lock import OutputLock

    # One writer per output file for the whole run (SPEC §6); not the audit log, which
    # concurrent runs share on purpose. Async: a --wait-lock wait ends at Ctrl-C.
    locked = [p for p in (settings.output.out, settings.output.documents_out) if p is not None]
    async with OutputLock(locked, wait=settings.output.wait_lock, notify=notify):
        if not settings.mock:
            # With several endpoints, each one's key comes from its own variable.
            key = api_key if settings.call.endpoints else resolve_api_key(api_key, mock=False)
            return await _run(settings, key, stats, notify, sources, cluster)
        from dscall.simulator import SimulatorConfig, start_simulator

        async with start_simulator(SimulatorConfig()) as sim:
            call = replace(settings.call, base_url=sim.base_url)
            return await _run(
                replace(settings, call=call),
                resolve_api_key(api_key, mock=True),
                stats,
                notify,
                sources,
                cluster,
            )


async def _run(
    settings: ProcessSettings,
    api_key: str | None,
    stats: RunStats,
    notify: Notify,
    sources: Sequence[SourceFile] | None,
    cluster: ClusterHook | None = None,
) -> RunResult:
    run_id = new_run_id()
    traces = open_traces(run_id, settings.prompt.model, stats, notify)  # None: OTEL_* unset
    return await traced(
        traces,
        lambda traces: _run_with(
            settings, api_key, stats, notify, run_id, traces, sources, cluster
        ),
    )


async def _run_with(
    settings: ProcessSettings,
    api_key: str | None,
    stats: RunStats,
    notify: Notify,
    run_id: str,
    traces: RunTraces | None,
    sources: Sequence[SourceFile] | None,
    cluster: ClusterHook | None,
) -> RunResult:
    from dscall.fdlimit import fit_to_fd_limit

    settings = fit_to_fd_limit(settings, notify)  # before any socket, file or worker is opened
    out = settings.output
    prices = load_prices(settings.prices_file)
    budget = (
        Budget(
            settings.budget_usd,
            dearest_prices(
                plan_endpoints(settings.call, settings.mock), prices, settings.prompt.model
            ),
            settings.prompt.model,
            lookahead_s=settings.call.attempt_timeout_s,
        )
        if settings.budget_usd is not None
        else None
    )
    endpoints = plan_endpoints(settings.call, settings.mock)
    source = endpoints.sources[0]
    provider = endpoints.provider
    if settings.prompt.thinking and not any(e.provider.sends_thinking for e in endpoints.endpoints):
        notify("note: --thinking is not sent: the openai profile sends standard fields only")
    requests = run_requests(settings, endpoints)  # a bad template fails here, before any call
    for name in requests.step_names:  # the summary lists the steps in chain order
        stats.steps.setdefault(name, StepFigures())
    stats.rows_per_chunk = max(1, sum(1 for step in requests.steps if step.per_chunk))
    if budget is not None:  # a step of a pipeline may ask another model
        for step in requests.steps:
            budget.check_model(step.requests.prompt.model)
    metadata: dict[str, Any] = {
        "run_id": run_id,
        "dscall_version": __version__,
        "started_at": datetime.now(timezone.utc).isoformat(),
        "answer_source": source,
        "provider": provider.name,  # the profile used (settings.provider: what was asked)
        "endpoints": [
            {"name": e.name, "provider": e.provider.name, "priority": e.priority}
            for e in endpoints.endpoints
        ],
        "settings": settings_metadata(
            settings.prompt, settings.chunk, settings.call, settings.cache
        ),
    }
    control = RunControl(notify)
    async with contextlib.AsyncExitStack() as stack:
        path = await open_call_path(stack, settings, api_key, run_id, prices, notify)
        # The writers are closed (published) by hand below; on any way out before that, the
        # stack drops their temporary files and the previous outputs stay as they were.
        opened = open_plan(
            requests, settings, run_id, metadata, control, stats, notify, stack, budget
        )
        writers = opened.writers
        engine = build_engine(path, settings, stats, opened.plan, prices, budget, notify, traces)
        control.engine = engine
        if cluster is not None:  # a shard of a cluster's run: held to its share from here
            limits = [endpoint.limits for endpoint in engine.endpoints]
            await stack.enter_async_context(cluster.attached(engine, limits, budget))
        # Installed until the outputs are published: an interrupt during the final write
        # must not abandon what finished (it is only acknowledged).
        with signals_stop(control):
            async with front_half(
                settings.inputs,
                settings.discovery,
                settings.extract,
                settings.chunk,
                stats.front,
                notify,
                settings.cache,
                sources,
            ) as front:
                await engine.run(front.outcomes)
            control.writing = True
            opened.finish()
            code = _exit_code(control.stop_reason, stats, settings.max_failures)
            ended = {
                "finished_at": datetime.now(timezone.utc).isoformat(),
                # Every input was gone through (some rows may still be errors).
                "complete": control.stop_reason is None,
                "stop_reason": str(control.stop_reason) if control.stop_reason else None,
                "exit_code": code,
                "chunks_total": stats.chunks_total,
                "chunks_not_sent": max(0, stats.chunks_total - stats.chunks_done),
            }
            if control.output_failed is None:
                for writer in writers:
                    writer.metadata.update(ended, rows_by_status=dict(control.counts[writer]))
                    try:
                        writer.close()
                    except OutputFailed as exc:
                        control.fail_output(exc)
                        break
    published = writers[0].published
    rows_written = writers[0].rows_written if published else 0
    stop = control.stop_reason
    code = _exit_code(stop, stats, settings.max_failures)
    return RunResult(run_id, code, stop, rows_written, out.out, published, provider.name)


def _exit_code(stop: RunStopped | None, stats: RunStats, max_failures: int) -> int:
    if stop is not None:
        return EXIT_STOPPED
    if stats.chunks_failed + stats.documents_failed > max_failures:
        return EXIT_SOME_FAILED
    return EXIT_OK
