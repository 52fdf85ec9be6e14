"""The end-of-run summary: the figures of ``RunStats`` as a table (rich on a terminal, aligned
plain text otherwise), the same figures ``--summary-json`` writes."""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dscall.progress import choose_mode, format_cost, format_duration, ms
from dscall.stats import RunStats


def _ocr_pages(count: int) -> str:
    return f", {count:,} page{'' if count == 1 else 's'} OCR'd" if count else ""


def _from_manifest(count: int) -> str:
    return f", {count:,} unchanged (from the manifest, not read again)" if count else ""


def summary_rows(stats: RunStats) -> list[tuple[str, str]]:
    lat = stats.latency.percentiles()
    return (
        [
            (
                "documents",
                f"{stats.documents_seen:,} read, {stats.documents_failed:,} failed, "
                f"{stats.files_skipped:,} files skipped"
                + _ocr_pages(stats.front.ocr_pages)
                + _from_manifest(stats.front.from_manifest),
            ),
            (
                "chunks",
                f"{stats.chunks_done:,} of {stats.chunks_total:,}: {stats.chunks_ok:,} ok, "
                f"{stats.chunks_failed:,} failed, {stats.chunks_cached:,} cached",
            ),
            (
                "requests",
                f"{stats.requests_sent:,} sent, {stats.retries:,} retries, "
                f"{stats.throttled:,} throttled",
            ),
            (
                "tokens",
                f"{stats.prompt_tokens:,} prompt ({stats.cache_hit_tokens:,} cache hit, "
                f"{stats.cache_miss_tokens:,} miss), {stats.completion_tokens:,} completion",
            ),
            (
                "cost",
                format_cost(stats) + (" (some rows have no price)" if stats.cost_unknown else ""),
            ),
            ("latency", f"p50 {ms(lat['p50'])}, p95 {ms(lat['p95'])}, p99 {ms(lat['p99'])}"),
            (
                "throughput",
                f"{stats.throughput():,.2f} chunks/s, {stats.requests_per_s():,.2f} requests/s",
            ),
            ("error rate", f"{stats.error_rate() * 100:.2f}%"),
            ("wall time", format_duration(stats.elapsed_s())),
        ]
        + _step_rows(stats)
        + _schema_rows(stats)
        + _endpoint_rows(stats)
    )


def _endpoint_rows(stats: RunStats) -> list[tuple[str, str]]:
    """One row per endpoint of a run with several (none with one)."""
    rows = []
    for name, e in stats.endpoints.items():
        lat = e.latency.percentiles()
        state = f"disabled: {e.disabled}" if e.disabled is not None else f"breaker {e.breaker}"
        rows.append(
            (
                f"endpoint {name}",
                f"{e.priority}, {e.requests:,} requests ({e.ok:,} ok, {e.throttled:,} "
                f"throttled), limit {e.concurrency_limit}, p50 {ms(lat['p50'])}, {state}",
            )
        )
    return rows


def _schema_rows(stats: RunStats) -> list[tuple[str, str]]:
    if not stats.schema_checked:
        return []
    return [
        (
            "schema",
            f"{stats.schema_reasks:,} answers asked again, "
            f"{stats.schema_invalid:,} rows still invalid",
        )
    ]


def _step_rows(stats: RunStats) -> list[tuple[str, str]]:
    """One row per step of a chain (none for a plain map run)."""
    if list(stats.steps) in ([], ["map"]):
        return []
    return [
        (
            f"step {name}",
            f"{step.calls:,} calls ({step.cached:,} cached, {step.failed:,} failed), "
            f"{step.prompt_tokens:,} prompt / {step.completion_tokens:,} completion tokens, "
            f"${step.cost_usd:.4f}",
        )
        for name, step in stats.steps.items()
    ]


def render_summary(stats: RunStats, stream: TextIO | None = None) -> None:
    """The end-of-run table: rich on a terminal, aligned plain text otherwise."""
    out = stream if stream is not None else sys.stderr
    rows = summary_rows(stats)
    if choose_mode(False, out) == "rich":
        table = Table(title="dscall summary", show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        for label, value in rows:
            table.add_row(Text(label), Text(value))
        Console(file=out, force_terminal=True, highlight=False).print(table)
        return
    width = max(len(label) for label, _ in rows)
    text = "summary\n" + "".join(f"  {label:<{width}}  {value}\n" for label, value in rows)
    try:
        out.write(text)
        out.flush()
    except (OSError, ValueError):
        pass
