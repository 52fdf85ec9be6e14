"""`make bench`: every figure of issue 6 with its target and PASS/FAIL, in one table, and all
raw numbers in bench/results.json.

    .venv/bin/python -m bench [--quick] [--only NAME[,NAME...]] [--list]

Names: cpu latency limit seed cache scale (items 1-6, bench/bench_client.py), extract and
chunking (item 7, bench/bench_extract.py and bench/bench_chunking.py), simulator (the
simulator is never the bottleneck, bench/bench_simulator.py), and profile (a cProfile of the
5,000-document run, bench/profile_run.py: not part of the default set, ask for it by name),
and incremental (a cached rerun of 100,000 files with and without the manifest,
bench/bench_incremental.py, about a minute), and chain (--mode map-reduce: requests/s vs map
mode, memory at 100,000 chunks, the seed's case as one chain; bench/bench_chain.py), and
schema (validation cost per answer of --schema, jsonschema beside fastjsonschema;
bench/bench_schema.py), and ray (--executor ray vs local on the latency-bound case at 5,000
and 20,000 chunks, with Ray's floor for a new job,
extraction-bound 1 vs 2 nodes, peak RSS per shard; bench/bench_ray.py), and redis (cached
reruns over the shared cache tier; bench/bench_redis.py: needs redis-server); incremental,
ray and redis are issue 15's.

``--quick`` shrinks items 1-6, chain, ray, redis and incremental (one repeat, smaller
corpora) for trying the suite out; its figures are not the ones to quote. Exit status: 0 when
every benchmark ran (whatever its verdicts), 1 when one of them broke, 130 on Ctrl-C (child
processes are stopped either way and what finished is still written to results.json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import bench_client
from bench.harness import BENCH_DIR, Row, print_table, stop_on_sigterm

RESULTS = BENCH_DIR / "results.json"
CLIENT_ITEMS = tuple(bench_client.ITEMS)
DEFAULT = (
    *CLIENT_ITEMS,
    *("extract", "chunking", "simulator", "chain", "schema", "incremental", "ray", "redis"),
)
OPTIONAL = ("profile",)
LABELS = {"extract": "7 extract", "chunking": "7 chunking"}


# --- rows for the benchmarks owned elsewhere (each prints its own lines too) ----------------
def _extract_rows(f: dict[str, Any]) -> list[Row]:
    rows = [
        Row(
            "7 extract",
            f"{backend} pages/s (200-page mixed PDF)",
            f"{b['pages_per_s']:.0f}",
            f">= {b['target_pages_per_s']:.0f}",
            b["pass"],
        )
        for backend, b in f["pdf_backends"].items()
    ]
    flat = f["flat_memory"]
    rows.append(
        Row(
            "7 extract",
            "memory growth over 2,000 small documents",
            f"parent {flat['parent_growth_mb']:+.1f} MB, worker {flat['worker_growth_mb']:+.1f} MB",
            f"<= {flat['tolerance_mb']:.0f} MB",
            flat["pass"],
        )
    )
    return rows


def _chunking_rows(f: dict[str, Any]) -> list[Row]:
    rows = []
    for language in ("english", "chinese"):
        rows.append(
            Row(
                "7 chunking",
                f"{language}, rule-of-thumb counter",
                f"{f[f'estimate_mb_s_{language}']:.1f} MB/s",
                f">= {f['target_mb_s']:.0f} MB/s",
                f[f"pass_{language}"],
            )
        )
        rows.append(
            Row(
                "7 chunking",
                f"{language}, exact tokenizer",
                f"{f[f'exact_mb_s_{language}']:.2f} MB/s",
                "",
                None,
            )
        )
    return rows


def _simulator_rows(f: dict[str, Any]) -> list[Row]:
    speed, held = f["throughput"], f["memory"]
    return [
        Row(
            "simulator",
            "requests/s (best round)",
            f"{speed['rps_best']:,}",
            f">= {f['target_rps']:,.0f}",
            speed["pass"],
        ),
        Row(
            "simulator",
            f"peak RSS, {held['in_flight_peak']:,} in flight",
            f"{held['rss_peak_mb']:.0f} MB",
            f"<= {f['target_memory_mb']:.0f} MB",
            held["pass"],
        ),
    ]


def _profile_rows(f: dict[str, Any]) -> list[Row]:
    rows = []
    for scenario in ("cold", "cached"):
        if scenario in f:
            top = f[scenario]["by_tottime"][0]
            rows.append(
                Row(
                    "profile",
                    f"{scenario}: heaviest function ({f[scenario]['cpu_s']:.1f} s CPU)",
                    f"{top['share']:.0%} {top['function']}"[:70],
                    "",
                    None,
                )
            )
    return rows


def _chain_rows(f: dict[str, Any]) -> list[Row]:
    return [Row(r["item"], r["figure"], r["measured"], r["target"], r["pass"]) for r in f["rows"]]


def _schema_rows(f: dict[str, Any]) -> list[Row]:
    rows = [
        Row(
            "schema",
            f"validation cost per answer, {name}{' (dscall)' if name == f['chosen'] else ''}",
            f"valid {cost['valid']:.1f} µs, invalid {cost['invalid']:.1f} µs",
            "",
            None,
        )
        for name, cost in f["us_per_answer"].items()
    ]
    cpu = f["cpu"]
    us = cpu["cpu_us_per_request"]
    rows.append(
        Row(
            "schema",
            "CPU per request, --schema / without",
            f"{cpu['ratio']:.2f}x ({us['schema']} / {us['plain']} µs)",
            f"<= {cpu['target']}x",
            cpu["pass"],
        )
    )
    return rows


# Each takes --quick (chain, ray, redis and incremental have smaller sizes).
def _run_extract(quick: bool) -> dict[str, Any]:
    from bench import bench_extract

    return bench_extract.main()


def _run_chunking(quick: bool) -> dict[str, Any]:
    from bench import bench_chunking

    return bench_chunking.main()


def _run_simulator(quick: bool) -> dict[str, Any]:
    from bench import bench_simulator

    return bench_simulator.main()


def _run_profile(quick: bool) -> dict[str, Any]:
    from bench import profile_run

    return profile_run.main(docs=5000, cached=True, top=30)


def _run_incremental(quick: bool) -> dict[str, Any]:
    from bench import bench_incremental

    return bench_incremental.main(quick)


def _incremental_rows(f: dict[str, Any]) -> list[Row]:
    with_, without = f["with_manifest"], f["without_manifest"]
    return [
        Row(
            "incremental",
            f"cached rerun of {f['documents']:,} files, manifest (run clock)",
            f"{with_['chunks_per_s']:,.0f}/s; without {without['chunks_per_s']:,.0f}/s",
            f">= {f['target_chunks_per_s']:,.0f}/s",
            f["pass"],
        )
    ]


def _run_chain(quick: bool) -> dict[str, Any]:
    from bench import bench_chain

    return bench_chain.main(quick)


def _run_schema(quick: bool) -> dict[str, Any]:
    from bench import bench_schema, bench_schema_cpu

    return {**bench_schema.main(), "cpu": bench_schema_cpu.main(quick)}


def _run_ray(quick: bool) -> dict[str, Any]:
    from bench import bench_ray

    return bench_ray.main(quick)


def _ray_rows(f: dict[str, Any]) -> list[Row]:
    from bench import bench_ray

    return bench_ray.rows(f)


def _run_redis(quick: bool) -> dict[str, Any]:
    from bench import bench_redis

    return bench_redis.main(quick)


def _redis_rows(f: dict[str, Any]) -> list[Row]:
    from bench import bench_redis

    return bench_redis.rows(f)


OTHERS: dict[
    str, tuple[Callable[[bool], dict[str, Any]], Callable[[dict[str, Any]], list[Row]]]
] = {
    "extract": (_run_extract, _extract_rows),
    "chunking": (_run_chunking, _chunking_rows),
    "simulator": (_run_simulator, _simulator_rows),
    "profile": (_run_profile, _profile_rows),
    "incremental": (_run_incremental, _incremental_rows),
    "chain": (_run_chain, _chain_rows),
    "schema": (_run_schema, _schema_rows),
    "ray": (_run_ray, _ray_rows),
    "redis": (_run_redis, _redis_rows),
}


# --- the run -------------------------------------------------------------------------------
def _meta(names: list[str], quick: bool) -> dict[str, Any]:
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCH_DIR.parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except OSError:
        revision = ""
    return {
        "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_revision": revision,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": sorted(os.sched_getaffinity(0)),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "quick": quick,
        "benchmarks": names,
    }


def _write(results: dict[str, Any]) -> None:
    temp = RESULTS.with_suffix(".json.tmp")
    temp.write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    temp.replace(RESULTS)


def run(names: list[str], quick: bool) -> int:
    started = time.perf_counter()
    results: dict[str, Any] = {"meta": _meta(names, quick), "figures": {}, "table": []}
    rows: list[Row] = []
    broken = False
    interrupted = False
    try:
        client = [n for n in names if n in CLIENT_ITEMS]
        if client:
            print("== items 1-6: dscall against the simulator ==", flush=True)
            bench_client.main(client, quick, results["figures"], rows)
            broken |= any("error" in results["figures"].get(n, {}) for n in client)
        for name in (n for n in names if n in OTHERS):
            measure, describe = OTHERS[name]
            print(f"\n== {name} ==", flush=True)
            section = time.perf_counter()
            try:
                figures = measure(quick)
                new = describe(figures)
                # A suite of several items (chain) keeps running past a broken one.
                broken |= any(isinstance(v, dict) and "error" in v for v in figures.values())
            except Exception as exc:  # one broken benchmark must not hide the others
                figures = {"error": f"{type(exc).__name__}: {exc}"}
                new = [Row(LABELS.get(name, name), "broke", figures["error"][:60], "", False)]
                broken = True
                print(f"{name} failed: {figures['error']}", flush=True)
            figures["bench_s"] = round(time.perf_counter() - section, 1)
            print(f"({name}: {figures['bench_s']:.0f} s)", flush=True)
            results["figures"][name] = figures
            rows += new
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: writing what finished", file=sys.stderr)
    total = time.perf_counter() - started
    results["table"] = [r.as_dict() for r in rows]
    results["passed"] = sum(r.ok is True for r in rows)
    results["failed"] = sum(r.ok is False for r in rows)
    results["total_s"] = round(total, 1)
    results["interrupted"] = interrupted
    _write(results)
    print(f"\n== issue 6 benchmarks ({total / 60:.1f} min{', quick' if quick else ''}) ==")
    print_table(rows)
    print(
        f"\n{results['passed']} PASS, {results['failed']} FAIL; "
        f"raw figures in {RESULTS.relative_to(BENCH_DIR.parent)}"
    )
    if interrupted:
        return 130
    return 1 if broken else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="issue 6 benchmarks: table + bench/results.json"
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs of items 1-6 and chain")
    parser.add_argument(
        "--only", default="", help="comma-separated names (default: all but profile)"
    )
    parser.add_argument("--list", action="store_true", help="print the names and exit")
    args = parser.parse_args()
    if args.list:
        print(" ".join(DEFAULT), "| optional:", " ".join(OPTIONAL))
        return
    names = [n for n in args.only.split(",") if n] or list(DEFAULT)
    unknown = [n for n in names if n not in DEFAULT + OPTIONAL]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; --list shows the names")
    stop_on_sigterm()
    sys.exit(run(names, args.quick))


if __name__ == "__main__":
    main()
