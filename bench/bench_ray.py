"""--executor ray vs local on the latency-bound case (issue 15): 5,000 one-chunk documents, the
simulator answering after 200 ms, 256 requests in flight in all (the Ray run's two shards get
128 each). Target: the Ray executor's throughput >= 0.9x the local run's.

    PYTHONPATH=. .venv/bin/python -m bench.bench_ray [--docs N] [--shards N]

Each run is its own `dscall process` process with a fresh cache namespace (nothing cached);
throughput is chunks over the command's wall time, start-up included. The Ray figures are for
a cluster already up (two nodes of one CPU on this machine, as `ray.cluster_utils` starts them:
what --ray-address reaches) and for a Ray started by dscall itself (no --ray-address).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_RATIO = 0.9
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
        raise SystemExit(f"dscall failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=256)
    options = parser.parse_args()
    os.environ.update(RAY_ENV)
    from ray.cluster_utils import Cluster

    from dscall.simulator import SimulatorConfig, SimulatorThread

    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    corpus = root / "corpus"
    make_corpus(corpus, options.docs)
    env = {**os.environ, "DEEPSEEK_API_KEY": "sk-bench", "DSCALL_NO_CONFIG": "1"}
    figures: dict[str, Any] = {"docs": options.docs, "shards": options.shards}
    with SimulatorThread(SimulatorConfig(latency_ms=options.latency_ms)) as sim:
        c = str(options.concurrency)

        def common(namespace: str, out: Path) -> list[str]:
            return [
                "process",
                str(corpus),
                "--out",
                str(out),
                "--base-url",
                sim.base_url,
                "--cache-dir",
                str(root / "cache"),
                "--namespace",
                namespace,
                "--tokenizer",
                "estimate",
                "--concurrency",
                c,
                "--max-concurrency",
                c,
            ]

        wall, summary = run(common("local", root / "local.parquet"), env)
        figures["local"] = {"wall_s": wall, "chunks": summary["chunks"]["ok"]}
        own = {"wall_s": summary["wall_time_s"], "chunks": summary["chunks"]["ok"]}
        figures["local_run_own_time"] = own
        node = {"num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1"}
        cluster = Cluster(initialize_head=True, head_node_args=node)
        try:
            cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
            cluster.wait_for_nodes()
            extra = ["--executor", "ray", "--shards", str(options.shards)]
            address = ["--ray-address", str(cluster.address)]
            wall, summary = run(common("ray-up", root / "ray-up") + extra + address, env)
            figures["ray_cluster_up"] = {"wall_s": wall, "chunks": summary["chunks"]["ok"]}
            # The shards' own time, from each one's start in its worker: what sharding costs
            # once Ray has handed the tasks out (start-up, connection and imports apart).
            slowest = max(shard["wall_time_s"] for shard in summary["shards"])
            figures["ray_shards_own_time"] = {"wall_s": slowest, "chunks": summary["chunks"]["ok"]}
        finally:
            cluster.shutdown()
        wall, summary = run(common("ray-own", root / "ray-own") + extra, env)
        figures["ray_started_by_dscall"] = {"wall_s": wall, "chunks": summary["chunks"]["ok"]}
    local_rate = figures["local"]["chunks"] / figures["local"]["wall_s"]
    own_rate = figures["local_run_own_time"]["chunks"] / figures["local_run_own_time"]["wall_s"]
    print(f"latency-bound: {options.docs} one-chunk documents, {options.latency_ms:.0f} ms, c={c}")
    print(
        f"  local run's own time      {figures['local_run_own_time']['wall_s']:6.2f} s  "
        f"{own_rate:8.0f} chunks/s  (the base of ray_shards_own_time)"
    )
    for name in ("local", "ray_cluster_up", "ray_shards_own_time", "ray_started_by_dscall"):
        entry = figures[name]
        rate = entry["chunks"] / entry["wall_s"]
        entry["chunks_per_s"] = rate
        base = own_rate if name == "ray_shards_own_time" else local_rate
        entry["ratio_to_local"] = rate / base
        verdict = (
            "" if name == "local" else ("PASS" if rate / local_rate >= TARGET_RATIO else "FAIL")
        )
        print(
            f"  {name:24s} {entry['wall_s']:6.2f} s  {rate:8.0f} chunks/s  "
            f"{rate / base:5.2f}x local  {verdict} (target >= {TARGET_RATIO}x)"
        )
    (root / "figures.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    print(f"figures: {root / 'figures.json'}")


if __name__ == "__main__":
    main()
