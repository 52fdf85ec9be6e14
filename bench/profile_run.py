"""Where dscall's client CPU goes: cProfile of an end-to-end `dscall process` run.

    .venv/bin/python -m bench.profile_run [--docs 5000] [--cached] [--top 30]

The simulator (zero latency) runs in a subprocess pinned to one core; dscall runs under
``python -m cProfile -m dscall process ...`` pinned to the other, doing its whole job as in
item 1 of bench_client (cold cache, audit log, Parquet, summary JSON, plain progress). With
``--cached`` the run is profiled a second time on a warm cache (the cache-hit rerun of item 5).

Prints the top entries by own time (tottime) and by cumulative time, and the run's wall and CPU
(cProfile roughly doubles the cost of Python-level calls, so read shares, not absolute times).
The raw profile is kept in bench/.work/profile-*.pstats for ``python -m pstats`` or snakeviz.

Only the main process is profiled: extraction workers (none for .txt files) and the fork
server are not.
"""

from __future__ import annotations

import argparse
import json
import pstats
import shutil
import sys
from pathlib import Path
from typing import Any

from bench.bench_client import CONCURRENCY, TEXT_ROOT, dscall_process
from bench.corpus import text_parts
from bench.harness import (
    WORK_DIR,
    MockServer,
    cpu_layout,
    fresh_dir,
    pinned_to,
    run_measured,
    stop_on_sigterm,
)

REPO = Path(__file__).resolve().parent.parent
# In the cumulative listing, entries holding more than this share of the run are the call
# chain from the interpreter down to the event loop, left out.
WRAPPER_SHARE = 0.85


def _where(filename: str, line: int, name: str) -> str:
    if filename == "~":
        return name  # a builtin: "<built-in method ...>"
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    else:
        with_repo = Path(filename)
        if with_repo.is_absolute() and with_repo.is_relative_to(REPO):
            filename = str(with_repo.relative_to(REPO))
    return f"{filename}:{line}({name})"


def top_entries(path: Path, key: str, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` heaviest functions of a pstats file by ``key`` (tottime or cumulative)."""
    stats = pstats.Stats(str(path))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = max(float(stats.total_tt), 1e-9)  # type: ignore[attr-defined]
    index = 2 if key == "tottime" else 3
    rows = sorted(raw.items(), key=lambda item: item[1][index], reverse=True)
    if key == "cumulative":
        # The call chain down to the event loop (runpy, typer, asyncio.run, _run_once...)
        # holds nearly all of the time and says nothing: start below it.
        rows = [row for row in rows if row[1][3] < WRAPPER_SHARE * total]
    rows = rows[:limit]
    return [
        {
            "function": _where(*func),
            "calls": nc,
            "tottime_s": round(tt, 3),
            "cumtime_s": round(ct, 3),
            "share": round((tt if key == "tottime" else ct) / total, 3),
        }
        for func, (_, nc, tt, ct, _callers) in rows
    ]


def print_entries(title: str, entries: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(f"{'calls':>9} {'tottime':>8} {'cumtime':>8} {'share':>6}  function")
    for e in entries:
        print(
            f"{e['calls']:>9} {e['tottime_s']:>8.3f} {e['cumtime_s']:>8.3f} "
            f"{e['share']:>6.1%}  {e['function']}"
        )


def profile(docs: int, cached: bool, top: int) -> dict[str, Any]:
    layout = cpu_layout()
    paths = text_parts(TEXT_ROOT, docs)
    results: dict[str, Any] = {"documents": docs, "concurrency": CONCURRENCY}
    with MockServer(cpus=layout.server) as server, pinned_to(layout.server):
        run = fresh_dir("profile")
        scenarios = ["cold", "cached"] if cached else ["cold"]
        for scenario in scenarios:
            output = WORK_DIR / f"profile-{scenario}-{docs}.pstats"
            dscall = dscall_process(paths, run, server.url, CONCURRENCY)
            arguments = dscall[dscall.index("process") :]
            command = [sys.executable, "-m", "cProfile", "-o", str(output), "-m", "dscall"]
            command += arguments
            (run / "results.parquet").unlink(missing_ok=True)
            measured = run_measured(command, cpus=layout.client, keep={server.pid})
            measured.check("dscall under cProfile")
            summary = json.loads((run / "summary.json").read_text())
            if summary["chunks"]["ok"] != docs:
                raise RuntimeError(f"dscall under cProfile: {summary['chunks']}")
            figures = {
                "profile": str(output),
                "wall_s": round(measured.wall_s, 2),
                "cpu_s": round(measured.cpu_s, 2),
                "chunks_cached": summary["chunks"]["cached"],
                "by_tottime": top_entries(output, "tottime", top),
                "by_cumulative": top_entries(output, "cumulative", top),
            }
            results[scenario] = figures
            print(
                f"\n=== {scenario}: {docs} one-chunk documents, concurrency {CONCURRENCY}, under "
                f"cProfile: wall {figures['wall_s']:.1f} s, CPU {figures['cpu_s']:.1f} s, "
                f"{figures['chunks_cached']} cached; profile in {output}"
            )
            print_entries(f"top {top} by tottime", figures["by_tottime"])
            print_entries(
                f"top {top} by cumulative time (below the call chain down to the event loop: "
                f"entries over {WRAPPER_SHARE:.0%} of the run left out)",
                figures["by_cumulative"],
            )
        shutil.rmtree(run, ignore_errors=True)
    return results


def main(docs: int = 5000, cached: bool = True, top: int = 30) -> dict[str, Any]:
    return profile(docs, cached, top)


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=5000, help="documents (multiple of 500)")
    parser.add_argument("--cached", action="store_true", help="also profile a warm rerun")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    stop_on_sigterm()
    profile(args.docs, args.cached, args.top)


if __name__ == "__main__":
    _cli()
