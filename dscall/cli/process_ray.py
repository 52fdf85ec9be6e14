"""``dscall process --executor ray``: run the shards, then report the whole run like a local
one (progress as shards finish, the summary, ``--summary-json``) plus ``_SUMMARY.json`` in the
dataset folder."""

from __future__ import annotations

from typing import Any, TextIO

from rich.console import Console

from dscall.config import ProcessSettings
from dscall.executors.dataset import write_run_summary
from dscall.executors.ray import DatasetResult, run_on_ray
from dscall.output.summary_file import write_summary
from dscall.progress import ProgressDisplay, choose_mode, safe_text
from dscall.stats import RunStats
from dscall.summary import render_summary


def execute_ray(
    settings: ProcessSettings,
    api_key: str | None,
    stats: RunStats,
    quiet: bool,
    stream: TextIO,
    progress_interval_s: float,
) -> int:
    mode = choose_mode(quiet, stream)
    err = Console(file=stream, highlight=False, soft_wrap=True)
    with ProgressDisplay(stats, mode, stream, interval_s=progress_interval_s) as display:
        result = run_on_ray(settings, api_key, stats, display.note)
        stats.finish()
    folder = settings.output.out
    if not quiet:
        render_summary(stats, stream)
        skipped = sum(1 for shard in result.shards if shard.state == "skipped")
        done_before = f" ({skipped} from an earlier run)" if skipped else ""
        err.print(
            f"wrote {result.rows_written} rows to {safe_text(str(folder))} in "
            f"{result.world_size} parts{done_before}",
            markup=False,
        )
        documents = settings.output.documents_out
        if documents is not None:
            err.print(
                f"wrote {result.documents_rows_written} document rows to "
                f"{safe_text(str(documents))} in {result.world_size} parts",
                markup=False,
            )
    failed = result.failed()
    if failed:
        names = ", ".join(f"{shard.rank:05d}" for shard in failed)
        err.print(f"[bold red]shards without all their rows:[/] {names}", markup=True)
        for shard in failed:
            reason = safe_text(shard.error or f"exit {shard.exit_code}")
            err.print(f"shard {shard.rank:05d}: {reason}", markup=False)
        err.print(
            "run the same command again: finished shards are skipped, and what the failed "
            "ones had answered comes from the cache",
            markup=False,
        )
    summary = _summary(stats, result, str(folder))
    if settings.output.documents_out is not None:
        summary["documents_out"] = str(settings.output.documents_out)
        summary["documents_rows_written"] = result.documents_rows_written
    write_run_summary(folder, summary)
    if settings.output.summary_json is not None:
        write_summary(settings.output.summary_json, summary)
    return result.exit_code


def _summary(stats: RunStats, result: DatasetResult, folder: str) -> dict[str, Any]:
    summary: dict[str, Any] = stats.summary_dict()
    summary.update(
        executor="ray",
        exit_code=result.exit_code,
        complete=not result.failed(),
        out=folder,
        out_written=True,
        rows_written=result.rows_written,
        world_size=result.world_size,
        shards=[shard.as_dict() for shard in result.shards],
    )
    return summary
