"""Incremental reruns (SPEC §14): a cached rerun of N one-chunk files with and without the
manifest, on the run's own clock (after start-up), and where the time goes.

    .venv/bin/python -m bench.bench_incremental [--docs 100000] [--profile] [--top 25]

1. cold: every file read and every request sent (fills the result cache and the manifest);
2. rerun with the manifest: no file read, every answer from the cache (target >= 10,000
   chunks/s on the run clock);
3. rerun without it: ``manifest.db`` removed first, so every file is read and chunked again
   (what a rerun cost before the manifest, plus writing the manifest anew).

The files are bench/.work/text (bench/corpus.py), given an mtime an hour back first: a file
modified just before it is read is not remembered. ``--profile`` runs (2) once more under
cProfile and prints the heaviest functions (cProfile inflates Python calls: read shares).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench.bench_client import CONCURRENCY, TEXT_ROOT, dscall_process, run_dscall
from bench.corpus import text_parts
from bench.harness import (
    WORK_DIR,
    MockServer,
    cpu_layout,
    fresh_dir,
    run_measured,
    stop_on_sigterm,
)
from bench.profile_run import print_entries, top_entries

TARGET_CHUNKS_PER_S = 10_000.0
HOUR_NS = 3600 * 10**9


def _age(paths: list[Path]) -> None:
    """Every file an hour old, so that the manifest trusts its stamp."""
    then = time.time_ns() - HOUR_NS
    for folder in paths:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_file() and entry.stat().st_mtime_ns > then:
                    os.utime(entry.path, ns=(then, then))


def _figures(measured: Any, summary: dict[str, Any]) -> dict[str, Any]:
    done = summary["chunks"]["done"]
    wall = summary["wall_time_s"]
    return {
        "chunks": done,
        "cached": summary["chunks"]["cached"],
        "from_manifest": summary["documents"]["from_manifest"],
        "run_wall_s": wall,
        "process_wall_s": round(measured.wall_s, 2),
        "cpu_s": round(measured.cpu_s, 2),
        "peak_rss_mb": round(measured.peak_rss_mb, 1),
        "chunks_per_s": round(done / wall, 1) if wall else None,
        # On a shared machine the run waits for a core: chunks per CPU second (start-up
        # included) says what one free core would do.
        "chunks_per_cpu_s": round(done / measured.cpu_s, 1) if measured.cpu_s else None,
    }


def measure(docs: int, profile: bool, top: int) -> dict[str, Any]:
    layout = cpu_layout()
    paths = text_parts(TEXT_ROOT, docs)
    _age(paths)
    results: dict[str, Any] = {"documents": docs, "concurrency": CONCURRENCY}
    with MockServer(cpus=layout.server) as server:
        run = fresh_dir("incremental")
        manifest = run / "cache" / "manifest.db"
        for scenario in ("cold", "with_manifest", "without_manifest"):
            if scenario == "without_manifest":
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{manifest}{suffix}").unlink(missing_ok=True)
            server.reset()
            (run / "results.parquet").unlink(missing_ok=True)
            measured, summary = run_dscall(layout, server, paths, run, CONCURRENCY)
            figures = _figures(measured, summary)
            figures["requests_at_simulator"] = server.stats()["requests_received"]
            results[scenario] = figures
            print(f"{scenario:>17}: {json.dumps(figures)}", flush=True)
        if profile:
            results["profile"] = _profile(layout, server, paths, run, top)
        shutil.rmtree(run, ignore_errors=True)
    warm = results["with_manifest"]
    results["target_chunks_per_s"] = TARGET_CHUNKS_PER_S
    results["pass"] = (
        warm["chunks_per_s"] is not None
        and warm["chunks_per_s"] >= TARGET_CHUNKS_PER_S
        and warm["requests_at_simulator"] == 0
        and warm["from_manifest"] == docs
    )
    without = results["without_manifest"]["chunks_per_s"]
    print(
        f"\ncached rerun of {docs:,} one-chunk files (run clock): with the manifest "
        f"{warm['chunks_per_s']:,.0f} chunks/s, without {without:,.0f} chunks/s "
        f"(target with >= {TARGET_CHUNKS_PER_S:,.0f}): {'PASS' if results['pass'] else 'FAIL'}; "
        f"per CPU second {warm['chunks_per_cpu_s']:,.0f} with, "
        f"{results['without_manifest']['chunks_per_cpu_s']:,.0f} without"
    )
    return results


def _profile(layout: Any, server: MockServer, paths: list[Path], run: Path, top: int) -> Any:
    output = WORK_DIR / f"profile-incremental-{len(paths)}.pstats"
    arguments = dscall_process(paths, run, server.url, CONCURRENCY)
    arguments = arguments[arguments.index("process") :]
    command = [sys.executable, "-m", "cProfile", "-o", str(output), "-m", "dscall", *arguments]
    (run / "results.parquet").unlink(missing_ok=True)
    run_measured(command, cpus=layout.client, keep={server.pid}).check("dscall under cProfile")
    entries = top_entries(output, "tottime", top)
    print_entries(f"rerun with the manifest under cProfile, top {top} by tottime", entries)
    cumulative = top_entries(output, "cumulative", top)
    print_entries(f"top {top} by cumulative time", cumulative)
    return {"pstats": str(output), "by_tottime": entries, "by_cumulative": cumulative}


def main(quick: bool = False) -> dict[str, Any]:
    """For ``python -m bench --only incremental`` (``--quick``: 20,000 files)."""
    return measure(20_000 if quick else 100_000, profile=False, top=0)


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000, help="files (multiple of 500)")
    parser.add_argument("--profile", action="store_true", help="cProfile the manifest rerun")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    stop_on_sigterm()
    results = measure(args.docs, args.profile, args.top)
    (WORK_DIR / "incremental.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    _cli()
