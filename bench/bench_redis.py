"""The shared cache tier (`--cache-url`): how fast a cached rerun goes with the local cache only,
and with a cold local cache over a warm Redis (another host's answers), a few thousand chunks.

    .venv/bin/python -m bench.bench_redis [--chunks N] [--repeats R]
    .venv/bin/python -m bench --only redis          (3,000 chunks, 3 repeats; --quick: 1,000, 1)

Starts its own redis-server (Debian's package) on a free loopback port, no persistence, and
the simulator. Runs, each a whole `dscall process` (extraction, chunking, output, audit):

    cold        local cache and Redis empty: pays every chunk (fills both)
    manifest    the same local cache, no --cache-url: no file read (the manifest), local hits
    l1          the same, the manifest removed first: every file read again, local hits
    l1+l2       the same local cache and --cache-url: the manifest, local hits, Redis connected
    l2          a fresh local cache and --cache-url: every file read, every answer from Redis,
                copied locally

Rates are on the run's own clock (--summary-json's wall_time_s), the median of R repeats;
the process wall (interpreter start-up included) is printed beside them. Target: a cold local
cache over a warm Redis reruns at least half as fast as a warm local cache, both reading every
file (l2 against l1). A fresh cache folder has no manifest, so l2 reads every file; against
the manifest run the ratio would measure the manifest, not the Redis tier.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from bench.bench_client import TEXT_ROOT, dscall_process
from bench.corpus import text_parts
from bench.harness import MockServer, Row, fresh_dir, median, print_table, run_measured

TARGET_L2_VS_L1 = 0.5
CONCURRENCY = 64


def _run(
    server: MockServer, redis_pid: int, paths: list[Path], run: Path, cache: Path, *extra: str
) -> Any:
    """One `dscall process` over the local cache ``cache``; redis-server is our child too, and
    not to be reaped as an orphan of the run."""
    command = dscall_process(paths, run, server.url, CONCURRENCY, *extra)
    command[command.index("--cache-dir") + 1] = str(cache)
    (run / "results.parquet").unlink(missing_ok=True)
    measured = run_measured(command, keep={server.pid, redis_pid}).check("dscall process")
    summary = json.loads((run / "summary.json").read_text())
    return measured, summary


def measure(chunks: int, repeats: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.redis_server import running_redis

    paths = text_parts(TEXT_ROOT, chunks)
    figures: dict[str, Any] = {"chunks": chunks, "repeats": repeats}
    with running_redis() as redis, MockServer() as server:
        run = fresh_dir("redis")
        local = run / "cache-local"
        url = ["--cache-url", redis.url]
        _, cold = _run(server, redis.proc.pid, paths, run, local, *url)
        figures["cold_paid"] = server.stats()["requests_received"]
        figures["redis_keys"] = len(redis.items())
        rates: dict[str, list[float]] = {"manifest": [], "l1": [], "l1+l2": [], "l2": []}
        walls: dict[str, list[float]] = {name: [] for name in rates}
        server.reset()
        for repeat in range(repeats):
            for name in rates:
                cache = local if name != "l2" else run / f"cache-fresh-{repeat}"
                extra = url if name in ("l1+l2", "l2") else []
                if name == "l1":
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{local / 'manifest.db'}{suffix}").unlink(missing_ok=True)
                measured, summary = _run(server, redis.proc.pid, paths, run, cache, *extra)
                if summary["chunks"]["cached"] != chunks:
                    raise RuntimeError(f"{name}: {summary['chunks']}")
                if (summary["documents"]["from_manifest"] > 0) != (name in ("manifest", "l1+l2")):
                    raise RuntimeError(f"{name}: {summary['documents']}")
                rates[name].append(chunks / summary["wall_time_s"])
                walls[name].append(measured.wall_s)
                shutil.rmtree(run / f"cache-fresh-{repeat}", ignore_errors=True)
        figures["rerun_paid"] = server.stats()["requests_received"]
        figures["cold_chunks_per_s"] = round(chunks / cold["wall_time_s"], 1)
        for name in rates:
            figures[f"{name}_chunks_per_s"] = round(median(rates[name]), 1)
            figures[f"{name}_process_wall_s"] = round(median(walls[name]), 3)
    shutil.rmtree(run, ignore_errors=True)
    ratio = figures["l2_chunks_per_s"] / figures["l1_chunks_per_s"]
    figures["l2_vs_l1"] = round(ratio, 3)
    figures["pass"] = ratio >= TARGET_L2_VS_L1 and figures["rerun_paid"] == 0
    return figures


def rows(f: dict[str, Any]) -> list[Row]:
    n = f"{f['chunks']:,}"
    return [
        Row("redis", f"cold run, {n} chunks (pays each)", f"{f['cold_chunks_per_s']:,.0f}/s",
            "", None),
        Row("redis", f"rerun, local cache + manifest ({n} hits)",
            f"{f['manifest_chunks_per_s']:,.0f}/s ({f['manifest_process_wall_s']:.2f} s)", "",
            None),
        Row("redis", "rerun, local cache, every file read",
            f"{f['l1_chunks_per_s']:,.0f}/s ({f['l1_process_wall_s']:.2f} s)", "", None),
        Row("redis", "rerun, local cache + Redis connected",
            f"{f['l1+l2_chunks_per_s']:,.0f}/s ({f['l1+l2_process_wall_s']:.2f} s)", "", None),
        Row("redis", "rerun, cold local cache, warm Redis",
            f"{f['l2_chunks_per_s']:,.0f}/s = {f['l2_vs_l1']:.2f}x",
            f">= {TARGET_L2_VS_L1:.1f}x the line above", f["pass"]),
        Row("redis", "requests sent by the reruns", f"{f['rerun_paid']}", "0",
            f["rerun_paid"] == 0),
    ]  # fmt: skip


def main(quick: bool = False) -> dict[str, Any]:
    """For ``python -m bench`` (``--quick``: 1,000 chunks, one repeat)."""
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    figures = measure(1_000 if quick else 3_000, 1 if quick else 3)
    print_table(rows(figures))
    return figures


def _cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=3_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        print("redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 1
    figures = measure(args.chunks, args.repeats)
    print_table(rows(figures))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
