"""Client CPU per request with 2 and 4 endpoints beside 1 (target <= 1.1x of one endpoint).

    .venv/bin/python -m bench.bench_routing [--quick]

The same one-chunk text documents as item 1 of bench_client, against zero-latency simulators
on the other core: one simulator with ``--base-url`` (one endpoint), or 2 and 4 simulators each
an ``--endpoint`` of equal weight (the router picks one per attempt, every endpoint keeps its
own limits and breaker, rows and audit lines name it). CPU per request is the marginal one (two
corpus sizes, the difference over the difference in requests), each size's least CPU over the
repeats, as in bench_schema_cpu.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from typing import Any

from bench.bench_client import CONCURRENCY, TEXT_ROOT, dscall_process
from bench.corpus import text_parts
from bench.harness import MockServer, cpu_layout, fresh_dir, run_measured

TARGET = 1.1
COUNTS = (1, 2, 4)


def _command(urls: list[str], total: int, run: Any) -> list[str]:
    command = dscall_process(text_parts(TEXT_ROOT, total), run, urls[0], CONCURRENCY)
    if len(urls) == 1:
        return command
    at = command.index("--base-url")
    del command[at : at + 2]
    for n, url in enumerate(urls):
        command += ["--endpoint", f"e{n}={url}"]
    return command


def main(quick: bool = False) -> dict[str, Any]:
    small, large, repeats = (500, 1000, 2) if quick else (500, 2000, 4)
    layout = cpu_layout()
    cpu: dict[int, dict[int, list[float]]] = {n: {small: [], large: []} for n in COUNTS}
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(MockServer(cpus=layout.server)) for _ in range(4)]
        for _ in range(repeats):  # interleaved: a noisy minute hits every variant alike
            for total in (small, large):
                for count in COUNTS:
                    run = fresh_dir("routing")
                    for server in servers:
                        server.reset()
                    command = _command([s.url for s in servers[:count]], total, run)
                    keep = {s.pid for s in servers}
                    measured = run_measured(command, cpus=layout.client, keep=keep)
                    measured.check("dscall process")
                    summary = json.loads((run / "summary.json").read_text())
                    shutil.rmtree(run, ignore_errors=True)
                    if summary["chunks"]["ok"] != total:
                        raise RuntimeError(f"{count} endpoints: {summary['chunks']}")
                    if count > 1 and len(summary["endpoints"]) != count:
                        raise RuntimeError(f"{count} endpoints: {summary.get('endpoints')}")
                    cpu[count][total].append(measured.cpu_s)
    us = {
        n: round((min(cpu[n][large]) - min(cpu[n][small])) / (large - small) * 1e6, 1)
        for n in COUNTS
    }
    ratios = {n: round(us[n] / us[1], 3) for n in COUNTS[1:]}
    figures = {
        "sizes": [small, large],
        "cpu_us_per_request": {str(n): us[n] for n in COUNTS},
        "ratio": {str(n): r for n, r in ratios.items()},
        "target": TARGET,
        "pass": all(r <= TARGET for r in ratios.values()),
    }
    for n, ratio in ratios.items():
        print(
            f"CPU per request with {n} endpoints {us[n]} µs, with 1 {us[1]} µs: {ratio:.2f}x "
            f"(target <= {TARGET}x: {'PASS' if ratio <= TARGET else 'FAIL'})",
            flush=True,
        )
    return figures


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
