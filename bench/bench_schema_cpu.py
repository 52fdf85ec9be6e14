"""Client CPU per request with ``--schema`` beside without (target <= 1.2x).

    .venv/bin/python -m bench.bench_schema_cpu [--quick]

The same one-chunk text documents as item 1 of bench_client, against the zero-latency
simulator on the other core, with and without ``--schema-inline`` (a 6-field schema with a
list and an enum). The simulator answers every schema request with a valid object, so no
re-ask is made: the figure is what checking and typing each answer costs. CPU per request is
the marginal one (two corpus sizes, the difference over the difference in requests), so that
start-up is left out, as in item 1; each size's least CPU over the repeats (noise only adds).
"""

from __future__ import annotations

import shutil
from typing import Any

from bench.bench_client import CONCURRENCY, TEXT_ROOT, run_dscall
from bench.corpus import text_parts
from bench.harness import MockServer, cpu_layout, fresh_dir

SCHEMA = (
    "title str, year int, score float, final bool, kind str(report|notes|other), tags list[str]"
)
TARGET = 1.2
VARIANTS = {"plain": (), "schema": ("--schema-inline", SCHEMA)}


def main(quick: bool = False) -> dict[str, Any]:
    small, large, repeats = (200, 1000, 2) if quick else (500, 2000, 4)
    layout = cpu_layout()
    cpu: dict[str, dict[int, list[float]]] = {v: {small: [], large: []} for v in VARIANTS}
    with MockServer(cpus=layout.server) as server:
        for _ in range(repeats):  # interleaved: a noisy minute hits both alike
            for total in (small, large):
                for variant, extra in VARIANTS.items():
                    run = fresh_dir("schema-cpu")
                    server.reset()
                    measured, summary = run_dscall(
                        layout, server, text_parts(TEXT_ROOT, total), run, CONCURRENCY, *extra
                    )
                    shutil.rmtree(run, ignore_errors=True)
                    if summary["chunks"]["ok"] != total:
                        raise RuntimeError(f"{variant}: {summary['chunks']}")
                    if variant == "schema" and summary["schema"]["reasks"]:
                        raise RuntimeError(f"schema: {summary['schema']} (no re-ask expected)")
                    cpu[variant][total].append(measured.cpu_s)
    # The least CPU of the repeats at each size: noise on a shared machine only adds.
    us = {
        v: round((min(cpu[v][large]) - min(cpu[v][small])) / (large - small) * 1e6, 1)
        for v in VARIANTS
    }
    ratio = us["schema"] / us["plain"]
    figures = {
        "sizes": [small, large],
        "cpu_us_per_request": us,
        "ratio": round(ratio, 3),
        "target": TARGET,
        "pass": ratio <= TARGET,
    }
    print(
        f"CPU per request with --schema {us['schema']} µs, without {us['plain']} µs: "
        f"{ratio:.2f}x (target <= {TARGET}x: {'PASS' if figures['pass'] else 'FAIL'})",
        flush=True,
    )
    return figures


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
