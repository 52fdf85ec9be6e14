"""--executor ray (issue 15), three figures on this machine:

1. latency-bound: 5,000 one-chunk documents, the simulator answering after 200 ms, 256
   requests in flight in all (the Ray run's two shards get 128 each), local vs Ray. Target:
   the Ray executor's throughput >= 0.9x the local run's.
2. extraction-bound: big PDFs (bench/corpus.py's 200-page report, copied), the simulator
   answering at once, 2 shards on a test cluster of 1 node (they run one after the other),
   then of 2 nodes (one CPU each): documents/s over the command's wall time, start-up
   included, and their ratio (target >= 1.5x: the second node's CPU is used).
   Beside it, Ray's own floor on this machine: what a new job costs before any of dscall runs
   (a process that imports Ray, connects, runs one empty task on each node and shuts down,
   less a bare Python process), and the ratio that floor alone allows at this size:
   local / (local + floor). The same case at ``--large-docs`` (20,000) chunks shows the
   ratio once start-up is amortised.
3. memory per shard: the peak RSS of each shard's Ray worker (``ru_maxrss``, reported by
   the shard itself), the largest of every Ray run above (target <= 512 MB).

    PYTHONPATH=. .venv/bin/python -m bench.bench_ray [--docs N] [--large-docs N] [--pdfs N]

Each run is its own `dscall process` process with a fresh cache namespace (nothing cached);
throughput is over the command's wall time, start-up included, and over the shards' own time
(the slowest shard's, from its start in its worker). The extraction-bound case runs on two
nodes of one CPU on this machine, as `ray.cluster_utils` starts them (what --ray-address
reaches), each node's processes pinned to a core of its own (a Ray "CPU" is only a count:
without it, one node's shard would use both cores through its extraction process). The
latency-bound case runs on one node of 2 CPUs, as `ray start --head` makes it on this machine
(on the pinned nodes too, for information: each shard then shares its one core with the
simulator), and with a Ray started by dscall itself (no --ray-address).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.corpus import write_report_pdf
from bench.harness import WORK_DIR, Row, pinned_to, print_table

TARGET_RATIO = 0.9  # Ray vs local, latency-bound
TARGET_NODES_RATIO = 1.5  # 2 nodes vs 1, extraction-bound
TARGET_SHARD_RSS_MB = 512.0
LARGE_DOCS = 20_000  # the latency-bound case where Ray's start-up is amortised
PDF_PAGES = 200
PDF_CHUNK_TOKENS = 8000  # ~11 chunks a PDF: the requests cost little beside the extraction
RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # loopback only
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
}


def make_corpus(folder: Path, docs: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(docs):
        text = f"Document {i}. The committee reviewed the figures of region {i % 97}."
        (folder / f"doc_{i:05d}.txt").write_text(text, encoding="utf-8")


def make_pdfs(folder: Path, count: int) -> None:
    """``count`` copies of one big report (written once under bench/.work): the same pages to
    extract in each; the answers to identical chunks may come from the cache, extraction not."""
    source = write_report_pdf(WORK_DIR / "ray" / f"report-{PDF_PAGES}.pdf", pages=PDF_PAGES)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        shutil.copyfile(source, folder / f"report_{i:03d}.pdf")


def run(args: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "dscall", *args, "--summary-json", "-", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"dscall failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, json.loads(done.stdout)


_FLOOR_SCRIPT = """
import sys, ray
ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False,
         configure_logging=False, _node_ip_address="127.0.0.1")
task = ray.remote(num_cpus=1)(lambda: None)
ray.get([task.remote() for _ in range(int(sys.argv[2]))])
ray.shutdown()
"""


def ray_floor(address: str, tasks: int, env: dict[str, str], repeats: int = 3) -> float:
    """Seconds a new Ray job costs on this cluster before any of dscall runs: import Ray,
    connect, one empty task per CPU (its worker process started), shut down; less a bare
    Python process's wall time. The least of ``repeats``."""

    def wall(*args: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True)
        return time.perf_counter() - started

    bare = min(wall("-c", "pass") for _ in range(repeats))
    job = min(wall("-c", _FLOOR_SCRIPT, address, str(tasks)) for _ in range(repeats))
    return job - bare


def _entry(wall: float, summary: dict[str, Any], docs: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"wall_s": round(wall, 3), "chunks": summary["chunks"]["ok"]}
    entry["chunks_per_s"] = round(entry["chunks"] / wall, 1)
    entry["docs_per_s"] = round(docs / wall, 2)
    shards = summary.get("shards")
    if shards:
        # The shards' own time: what sharding costs once Ray has handed the tasks out.
        slowest = max(shard["wall_time_s"] or 0.0 for shard in shards)
        entry["shards_wall_s"] = round(slowest, 3)
        entry["shards_chunks_per_s"] = round(entry["chunks"] / slowest, 1)
        entry["shards_docs_per_s"] = round(docs / slowest, 2)
        entry["shard_wall_s"] = [shard["wall_time_s"] or 0.0 for shard in shards]
        rss = [shard["max_rss_kb"] or 0 for shard in shards]
        entry["shard_rss_mb"] = [round(kb / 1024, 1) for kb in rss]
    return entry


def measure(
    docs: int, shards: int, latency_ms: float, concurrency: int, pdfs: int, large_docs: int = 0
) -> dict[str, Any]:
    os.environ.update(RAY_ENV)
    from ray.cluster_utils import Cluster

    from dscall.simulator import SimulatorConfig, SimulatorThread

    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    make_corpus(root / "corpus", docs)
    make_pdfs(root / "pdfs", pdfs)
    if large_docs:
        make_corpus(root / "large", large_docs)
    env = {**os.environ, "DEEPSEEK_API_KEY": "sk-bench", "DSCALL_NO_CONFIG": "1"}
    f: dict[str, Any] = {"docs": docs, "shards": shards, "latency_ms": latency_ms}
    f.update(concurrency=concurrency, pdfs=pdfs, pdf_pages=PDF_PAGES, large_docs=large_docs)
    c = str(concurrency)
    slow_sim = SimulatorThread(SimulatorConfig(latency_ms=latency_ms))
    fast_sim = SimulatorThread(SimulatorConfig())
    with slow_sim as slow, fast_sim as fast:

        def command(sim: Any, corpus: str, name: str, *extra: str) -> list[str]:
            out = root / (f"{name}.parquet" if "--executor" not in extra else name)
            return [
                *("process", str(root / corpus), "--out", str(out), "--base-url", sim.base_url),
                # A cache of its own: no answer and no manifest entry from an earlier run.
                *("--cache-dir", str(root / f"cache-{name}"), "--namespace", name),
                *("--tokenizer", "estimate", "--concurrency", c, "--max-concurrency", c),
                *extra,
            ]

        ray_args = ("--executor", "ray", "--shards", str(shards))
        pdf_args = (*ray_args, "--chunk-tokens", str(PDF_CHUNK_TOKENS))
        wall, summary = run(command(slow, "corpus", "local"), env)
        f["local"] = _entry(wall, summary, docs)
        f["local"]["own_wall_s"] = summary["wall_time_s"]
        if large_docs:
            wall, summary = run(command(slow, "large", "large-local"), env)
            f["large_local"] = _entry(wall, summary, large_docs)
        node = {"num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1"}
        cores = _node_cores()
        f["nodes_pinned_to_cores"] = [sorted(c) for c in cores]
        with pinned_to(cores[0]):  # the node's processes (raylet, workers) inherit it
            cluster = Cluster(initialize_head=True, head_node_args=node)
        try:
            cluster.wait_for_nodes()
            address = ("--ray-address", str(cluster.address))
            wall, summary = run(command(fast, "pdfs", "pdf-1node", *pdf_args, *address), env)
            f["pdf_1_node"] = _entry(wall, summary, pdfs)
            with pinned_to(cores[1]):
                cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
            cluster.wait_for_nodes()
            wall, summary = run(command(fast, "pdfs", "pdf-2nodes", *pdf_args, *address), env)
            f["pdf_2_nodes"] = _entry(wall, summary, pdfs)
            wall, summary = run(command(slow, "corpus", "ray-pinned", *ray_args, *address), env)
            f["ray_cluster_pinned"] = _entry(wall, summary, docs)
        finally:
            cluster.shutdown()
        # The latency-bound case on Ray as one starts it on this machine (`ray start --head`:
        # one node, both cores). Pinned nodes above imitate machines of one core each for the
        # extraction; for calls they also pin each shard beside the simulator on one core.
        head = {**node, "num_cpus": 2}
        cluster = Cluster(initialize_head=True, head_node_args=head)
        try:
            cluster.wait_for_nodes()
            address = ("--ray-address", str(cluster.address))
            wall, summary = run(command(slow, "corpus", "ray-up", *ray_args, *address), env)
            f["ray_cluster_up"] = _entry(wall, summary, docs)
            f["ray_floor_s"] = round(ray_floor(str(cluster.address), shards, env), 3)
            if large_docs:
                large = command(slow, "large", "large-ray-up", *ray_args, *address)
                wall, summary = run(large, env)
                f["large_ray_cluster_up"] = _entry(wall, summary, large_docs)
        finally:
            cluster.shutdown()
        wall, summary = run(command(slow, "corpus", "ray-own", *ray_args), env)
        f["ray_started_by_dscall"] = _entry(wall, summary, docs)
    shutil.rmtree(root, ignore_errors=True)
    return _verdicts(f)


def _node_cores() -> tuple[frozenset[int], frozenset[int]]:
    """A core per node: a shard (its worker, its extraction process) then uses its node's
    core only, as on a machine of one CPU; on one core both nodes share it."""
    cpus = sorted(os.sched_getaffinity(0))
    return frozenset(cpus[:1]), frozenset(cpus[1:2] or cpus[:1])


def _verdicts(f: dict[str, Any]) -> dict[str, Any]:
    local = f["local"]["chunks_per_s"]
    own_local = f["local"]["chunks"] / f["local"]["own_wall_s"]
    for name in ("ray_cluster_up", "ray_cluster_pinned", "ray_started_by_dscall"):
        f[name]["ratio_to_local"] = round(f[name]["chunks_per_s"] / local, 3)
    up = f["ray_cluster_up"]
    up["shards_ratio_to_local_own"] = round(up["shards_chunks_per_s"] / own_local, 3)
    f["latency_pass"] = up["ratio_to_local"] >= TARGET_RATIO
    # Ray's floor alone (nothing of dscall's) allows at most this ratio at this size.
    local_wall = f["local"]["wall_s"]
    f["floor_ceiling"] = round(local_wall / (local_wall + f["ray_floor_s"]), 3)
    if f.get("large_docs"):
        large = f["large_ray_cluster_up"]
        large["ratio_to_local"] = round(large["chunks_per_s"] / f["large_local"]["chunks_per_s"], 3)
        f["large_latency_pass"] = large["ratio_to_local"] >= TARGET_RATIO
    one, two = f["pdf_1_node"], f["pdf_2_nodes"]
    f["nodes_ratio"] = round(two["docs_per_s"] / one["docs_per_s"], 3)
    f["nodes_pass"] = f["nodes_ratio"] >= TARGET_NODES_RATIO
    # The shards' span, start-up apart: on 1 node (one CPU) they run one after the other.
    one["shards_span_s"] = round(sum(one["shard_wall_s"]), 3)
    two["shards_span_s"] = round(max(two["shard_wall_s"]), 3)
    f["nodes_ratio_span"] = round(one["shards_span_s"] / two["shards_span_s"], 3)
    ray_runs = ("pdf_1_node", "pdf_2_nodes", "ray_cluster_up", "ray_cluster_pinned")
    ray_runs = (*ray_runs, "ray_started_by_dscall")
    f["max_shard_rss_mb"] = max(max(f[name]["shard_rss_mb"]) for name in ray_runs)
    f["rss_pass"] = f["max_shard_rss_mb"] <= TARGET_SHARD_RSS_MB
    return f


def rows(f: dict[str, Any]) -> list[Row]:
    case = f"{f['docs']:,} chunks, {f['latency_ms']:.0f} ms, c={f['concurrency']}"
    local, up, own = f["local"], f["ray_cluster_up"], f["ray_started_by_dscall"]
    pinned = f["ray_cluster_pinned"]
    one, two = f["pdf_1_node"], f["pdf_2_nodes"]
    pdfs = f"{f['pdfs']} PDFs of {f['pdf_pages']} pages, 2 shards"
    target = f">= {TARGET_RATIO}x local"
    return [
        Row("ray", f"latency-bound, local ({case})", f"{local['chunks_per_s']:,.0f} chunks/s",
            "", None),
        Row("ray", "latency-bound, Ray cluster up (1 node, 2 CPUs)",
            f"{up['chunks_per_s']:,.0f}/s = {up['ratio_to_local']:.2f}x", target,
            f["latency_pass"]),
        Row("ray", "  Ray's own floor: a new job (connect, a worker a node)",
            f"{f['ray_floor_s']:.2f} s: allows at most {f['floor_ceiling']:.2f}x here", "",
            None),
        Row("ray", "  the same, shards' own time vs local run's own",
            f"{up['shards_chunks_per_s']:,.0f}/s = {up['shards_ratio_to_local_own']:.2f}x", "",
            None),
        Row("ray", "  the same on 2 nodes pinned to a core each",
            f"{pinned['chunks_per_s']:,.0f}/s = {pinned['ratio_to_local']:.2f}x", "", None),
        *_large_rows(f, target),
        Row("ray", "latency-bound, Ray started by dscall",
            f"{own['chunks_per_s']:,.0f}/s = {own['ratio_to_local']:.2f}x", "", None),
        Row("ray", f"extraction-bound, 1 node ({pdfs})",
            f"{one['docs_per_s']:.2f} docs/s ({one['wall_s']:.1f} s)", "", None),
        Row("ray", "extraction-bound, 2 nodes",
            f"{two['docs_per_s']:.2f} docs/s ({two['wall_s']:.1f} s)", "", None),
        Row("ray", "extraction-bound, 2 nodes / 1 node", f"{f['nodes_ratio']:.2f}x",
            f">= {TARGET_NODES_RATIO}x", f["nodes_pass"]),
        Row("ray", "  the same, shards' span (start-up apart)",
            f"{f['nodes_ratio_span']:.2f}x ({one['shards_span_s']:.1f} s / "
            f"{two['shards_span_s']:.1f} s)", "", None),
        Row("ray", "peak RSS of a shard's worker (largest)", f"{f['max_shard_rss_mb']:.0f} MB",
            f"<= {TARGET_SHARD_RSS_MB:,.0f} MB", f["rss_pass"]),
    ]  # fmt: skip


def _large_rows(f: dict[str, Any], target: str) -> list[Row]:
    if not f.get("large_docs"):
        return []
    local, up = f["large_local"], f["large_ray_cluster_up"]
    return [
        Row("ray", f"latency-bound at {f['large_docs']:,} chunks, local",
            f"{local['chunks_per_s']:,.0f} chunks/s", "", None),
        Row("ray", f"latency-bound at {f['large_docs']:,} chunks, Ray cluster up",
            f"{up['chunks_per_s']:,.0f}/s = {up['ratio_to_local']:.2f}x", target,
            f["large_latency_pass"]),
    ]  # fmt: skip


def main(quick: bool = False) -> dict[str, Any]:
    """For ``python -m bench`` (``--quick``: 2,000 chunks, 16 PDFs)."""
    docs, pdfs, large = (2_000, 16, 0) if quick else (5_000, 48, LARGE_DOCS)
    figures = measure(docs, 2, 200.0, 256, pdfs, large)
    print_table(rows(figures))
    return figures


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument(
        "--large-docs", type=int, default=LARGE_DOCS, help="the latency-bound case again (0: off)"
    )
    parser.add_argument("--pdfs", type=int, default=48, help=f"{PDF_PAGES}-page PDFs")
    options = parser.parse_args()
    figures = measure(
        options.docs,
        options.shards,
        options.latency_ms,
        options.concurrency,
        options.pdfs,
        options.large_docs,
    )
    print_table(rows(figures))
    print(json.dumps(figures))


if __name__ == "__main__":
    _cli()
