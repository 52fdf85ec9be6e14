"""Client CPU per request with 2 and 4 endpoints beside 1 (target <= 1.1x of one endpoint).

    .venv/bin/python -m bench.bench_routing [--quick]

The same one-chunk text documents as item 1 of bench_client, against zero-latency simulators
on the other core: one simulator with ``--base-url`` (one endpoint), or 2 and 4 ``--endpoint``s
of equal weight (the router picks one per attempt, every endpoint keeps its own limits,
breaker and connection pool, rows and audit lines name it). The target is measured with every
endpoint on the same simulator ("one server"), so that only dscall's side changes; "a server
each" puts every endpoint on a simulator of its own, all on the server core, where the servers'
own contention also changes how the answers arrive (fewer per wake-up of the client). CPU per
request is the marginal one (two corpus sizes, the difference over the difference in
requests), each size's least CPU over the repeats, as in bench_schema_cpu.
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
# (endpoints, simulators): one endpoint; 2 and 4 on one simulator; 2 and 4 on a simulator each.
VARIANTS = ((1, 1), (2, 1), (4, 1), (2, 2), (4, 4))


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
    cpu: dict[tuple[int, int], dict[int, list[float]]] = {
        v: {small: [], large: []} for v in VARIANTS
    }
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(MockServer(cpus=layout.server)) for _ in range(4)]
        keep = {s.pid for s in servers}
        for _ in range(repeats):  # interleaved: a noisy minute hits every variant alike
            for total in (small, large):
                for count, spread in VARIANTS:
                    run = fresh_dir("routing")
                    for server in servers:
                        server.reset()
                    urls = [servers[n % spread].url for n in range(count)]
                    measured = run_measured(
                        _command(urls, total, run), cpus=layout.client, keep=keep
                    )
                    measured.check("dscall process")
                    summary = json.loads((run / "summary.json").read_text())
                    shutil.rmtree(run, ignore_errors=True)
                    if summary["chunks"]["ok"] != total:
                        raise RuntimeError(f"{count} endpoints: {summary['chunks']}")
                    if count > 1 and len(summary["endpoints"]) != count:
                        raise RuntimeError(f"{count} endpoints: {summary.get('endpoints')}")
                    cpu[(count, spread)][total].append(measured.cpu_s)
    us = {
        v: round((min(cpu[v][large]) - min(cpu[v][small])) / (large - small) * 1e6, 1)
        for v in VARIANTS
    }
    one = us[(1, 1)]
    ratios = {v: round(us[v] / one, 3) for v in VARIANTS[1:]}
    target_ok = all(r <= TARGET for (n, spread), r in ratios.items() if spread == 1)
    figures = {
        "sizes": [small, large],
        "cpu_us_per_request": {f"{n}x{spread}": us[(n, spread)] for n, spread in VARIANTS},
        "ratio": {f"{n}x{spread}": r for (n, spread), r in ratios.items()},
        "target": TARGET,
        "pass": target_ok,
    }
    for (n, spread), ratio in ratios.items():
        where = "one server" if spread == 1 else "a server each"
        verdict = f"target <= {TARGET}x: {'PASS' if ratio <= TARGET else 'FAIL'}"
        print(
            f"CPU per request with {n} endpoints ({where}) {us[(n, spread)]} µs, with 1 "
            f"{one} µs: {ratio:.2f}x ({verdict if spread == 1 else 'for information'})",
            flush=True,
        )
    return figures


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)
