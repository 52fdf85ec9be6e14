"""What `dscall process` does once its options are settings: run, report, preview.

Imported lazily by ``cli/process.py`` so that ``dscall --help`` does not load aiohttp or pyarrow.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.table import Table

from dscall.cli.app import standalone
from dscall.config import PROGRESS_PLAIN_INTERVAL_S, ProcessSettings
from dscall.errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE
from dscall.output.safety import STDOUT
from dscall.output.summary_file import write_summary
from dscall.progress import ProgressDisplay, choose_mode, safe_text
from dscall.stats import RunStats
from dscall.summary import render_summary

if TYPE_CHECKING:  # the run path is imported only where it runs: a Ray driver never runs it
    from dscall.pipeline.dryrun import DocumentEstimate
    from dscall.pipeline.run import RunResult


def execute(
    settings: ProcessSettings,
    api_key: str | None,
    *,
    quiet: bool,
    preview: int,
    stream: TextIO,
    progress_interval_s: float = PROGRESS_PLAIN_INTERVAL_S,
) -> int:
    """Run ``dscall process`` and report it; with --metrics-port/--metrics-textfile, to
    Prometheus too (the textfile is written however the run ends, its exit code in it)."""
    stats = RunStats()
    out = settings.output
    if out.metrics_port is None and out.metrics_textfile is None:
        return _execute(settings, api_key, stats, quiet, preview, stream, progress_interval_s)
    from dscall.output.metrics import RunMetrics
    from dscall.output.safety import OutputPath, check_outputs

    if out.metrics_textfile is not None:  # written however the run ends: checked first
        textfile = OutputPath("--metrics-textfile", out.metrics_textfile, "metrics")
        check_outputs([textfile], settings.inputs, out.force)
    metrics = RunMetrics(stats, endpoint_label(settings))
    code = EXIT_USAGE  # until the run says otherwise: it stopped before any call
    try:
        if out.metrics_port is not None:
            metrics.serve(out.metrics_port)
        code = _execute(settings, api_key, stats, quiet, preview, stream, progress_interval_s)
        return code
    finally:
        metrics.finish(code)
        try:
            if out.metrics_textfile is not None:
                metrics.write_textfile(out.metrics_textfile)
        finally:
            metrics.close()


def endpoint_label(settings: ProcessSettings) -> str:
    """The endpoint label of the metrics: the host (``simulator`` for --mock); ``all`` for the
    run-wide families of a run with several endpoints (the per-endpoint ones name each)."""
    from urllib.parse import urlsplit

    if settings.call.endpoints:
        return "all"
    return "simulator" if settings.mock else (urlsplit(settings.call.base_url).hostname or "")


def _execute(
    settings: ProcessSettings,
    api_key: str | None,
    stats: RunStats,
    quiet: bool,
    preview: int,
    stream: TextIO,
    progress_interval_s: float,
) -> int:
    mode = choose_mode(quiet, stream)
    err = Console(file=stream, highlight=False, soft_wrap=True)
    if settings.dry_run:
        from dscall.pipeline.dryrun import estimate_run

        quiet_display = "quiet" if mode == "rich" else mode
        with ProgressDisplay(
            stats, quiet_display, stream, interval_s=progress_interval_s
        ) as display:
            estimates = asyncio.run(estimate_run(settings, stats, display.note))
        _print_estimates(estimates, settings.prompt.model)
        return EXIT_SOME_FAILED if stats.documents_failed else EXIT_OK
    if settings.executor.kind == "ray":
        from dscall.cli.process_ray import execute_ray

        return execute_ray(settings, api_key, stats, quiet, stream, progress_interval_s)
    from dscall.pipeline.run import run_process

    with (
        _restored_signals(),
        ProgressDisplay(stats, mode, stream, interval_s=progress_interval_s) as display,
    ):
        result = asyncio.run(run_process(settings, api_key, stats, display.note))
    if not quiet:
        render_summary(stats, stream)
        if result.published:
            err.print(
                f"wrote {result.rows_written} rows to {safe_text(str(result.out))}", markup=False
            )
    if result.stop_reason is not None:
        err.print(f"[bold red]stopped:[/] {safe_text(str(result.stop_reason))}")
        if not result.published:
            err.print(
                "the answers received are in the cache: run the same command again once the "
                "output can be written, and they are not paid for twice",
                markup=False,
            )
    summary_json = settings.output.summary_json
    if summary_json is not None:
        _write_summary_json(summary_json, stats, result)
    to_stdout = summary_json is not None and str(summary_json) == STDOUT
    if preview > 0 and result.rows_written and result.published and not to_stdout:
        _print_preview(result.out, preview)
        documents = settings.output.documents_out
        if settings.steps and documents is not None and documents.exists():
            _print_preview(documents, preview, documents=True)  # a chain's answers
    return result.exit_code


@contextlib.contextmanager
def _restored_signals() -> Iterator[None]:
    """The run leaves SIGINT/SIGTERM ignored once its output is written (an interrupt while the
    process exits would turn exit code 3 into a KeyboardInterrupt). The console script exits
    right after; a caller running dscall in-process (tests) gets its own handlers back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        if not standalone():
            for sig, handler in saved.items():
                with contextlib.suppress(ValueError, TypeError):  # not the main thread
                    signal.signal(sig, handler)


def _write_summary_json(path: Path, stats: RunStats, result: RunResult) -> None:
    summary: dict[str, Any] = stats.summary_dict()
    summary.update(
        run_id=result.run_id,
        exit_code=result.exit_code,
        complete=result.stop_reason is None,
        stop_reason=str(result.stop_reason) if result.stop_reason else None,
        out=str(result.out),
        out_written=result.published,
        rows_written=result.rows_written,
        provider=result.provider,
    )
    write_summary(path, summary)


def _print_preview(out: Path, limit: int, documents: bool = False) -> None:
    """The first rows of ``out``: chunk rows, or (``documents``) document rows."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(str(out))
    if not file.metadata.num_row_groups:
        return
    first = "doc_path"
    columns = [first, "calls" if documents else "chunk_index", "status", "output", "error_message"]
    table = file.read_row_group(0, columns=columns).slice(0, limit)
    view = Table(title=f"first {table.num_rows} rows of {safe_text(str(out))}", show_lines=True)
    for name in ("document", "calls" if documents else "chunk", "status", "output"):
        view.add_column(name, overflow="fold")
    for row in table.to_pylist():
        text = row["output"] if row["output"] is not None else row["error_message"]
        text = text or ""
        second = row[columns[1]]
        view.add_row(
            safe_text(row["doc_path"] or ""),
            "" if second is None else str(second),
            row["status"],
            safe_text(text[:300] + ("…" if len(text) > 300 else "")),
        )
    Console(highlight=False).print(view)


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.4f}"


def _print_estimates(estimates: list[DocumentEstimate], model: str) -> None:
    view = Table(title=f"dry run: estimated tokens and cost ({model}, nothing was called)")
    names = ("document", "chunks", "cached", "calls", "prompt tokens", "max output", "input $")
    for name in (*names, "max $"):
        view.add_column(name, justify="left" if name == "document" else "right")
    for est in estimates:
        if est.error:
            view.add_row(safe_text(est.doc_path), *["-"] * 6, safe_text(est.error))
            continue
        view.add_row(
            safe_text(est.doc_path),
            str(est.chunks),
            str(est.cached_chunks),
            str(est.calls),
            f"{est.prompt_tokens:,}",
            f"{est.max_output_tokens:,}",
            _money(est.input_cost_usd),
            _money(est.max_cost_usd),
        )
    known = [e for e in estimates if not e.error]
    costs_in = [e.input_cost_usd for e in known]
    costs_max = [e.max_cost_usd for e in known]
    view.add_section()
    view.add_row(
        "total",
        str(sum(e.chunks for e in known)),
        str(sum(e.cached_chunks for e in known)),
        str(sum(e.calls for e in known)),
        f"{sum(e.prompt_tokens for e in known):,}",
        f"{sum(e.max_output_tokens for e in known):,}",
        _money(None if None in costs_in else sum(c or 0.0 for c in costs_in)),
        _money(None if None in costs_max else sum(c or 0.0 for c in costs_max)),
    )
    peak = [e.max_cost_peak_usd for e in known]
    off_peak = [e.max_cost_off_peak_usd for e in known]
    if known and None not in peak and None not in off_peak:  # DeepSeek's two prices
        view.add_row("at peak", *[""] * 6, _money(sum(c or 0.0 for c in peak)))
        view.add_row("off-peak", *[""] * 6, _money(sum(c or 0.0 for c in off_peak)))
    steps: dict[str, list[int]] = {}  # name -> calls, prompt tokens, output tokens
    for est in known:
        for step in est.steps:
            totals = steps.setdefault(step.name, [0, 0, 0])
            totals[0] += step.calls
            totals[1] += step.prompt_tokens
            totals[2] += step.output_tokens
    if len(steps) > 1:  # a chain: each step's share
        view.add_section()
        for name, (calls, prompt, output) in steps.items():
            view.add_row(f"step {name}", "", "", str(calls), f"{prompt:,}", f"{output:,}", "", "")
    # Off a terminal (a log, a pipe) nothing limits the width: file names are never cut.
    wide = None if sys.stdout.isatty() else 1000
    Console(highlight=False, width=wide).print(view)
