"""Start-up time of `dscall --help` and `dscall show FILE` (issue 13: target < 0.3 s wall).

    .venv/bin/python -m bench.bench_startup [--runs N]

Each command is run N times in a fresh interpreter; wall and CPU (user + system, of the child)
are reported as the least and the median. On a shared machine the least wall time is the
figure to compare with the target (other load only adds), CPU the one to compare between
versions. Settings files are not read (DSCALL_NO_CONFIG=1), the Parquet file is written first
by `dscall chunks` on samples/.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 0.3


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "dscall", *args], env=env, cwd=REPO, capture_output=True, check=True
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(runs: int = 15) -> dict[str, dict[str, float]]:
    env = {**os.environ, "DSCALL_NO_CONFIG": "1", "COLUMNS": "80"}
    with tempfile.TemporaryDirectory() as folder:
        parquet = str(Path(folder) / "chunks.parquet")
        chunks = ["chunks", "samples", "--out", parquet, "--quiet", "--tokenizer", "estimate"]
        _run(chunks, env)
        cases = {"dscall --help": ["--help"], "dscall show FILE": ["show", parquet]}
        figures: dict[str, dict[str, list[float]]] = {
            name: {"wall": [], "cpu": []} for name in cases
        }
        for _ in range(runs):  # interleaved: a noisy second hits both alike
            for name, args in cases.items():
                wall, cpu = _run(args, env)
                figures[name]["wall"].append(wall)
                figures[name]["cpu"].append(cpu)
    result: dict[str, dict[str, float]] = {}
    for name, measured in figures.items():
        least = min(measured["wall"])
        result[name] = {
            "wall_min_s": round(least, 3),
            "wall_median_s": round(statistics.median(measured["wall"]), 3),
            "cpu_min_s": round(min(measured["cpu"]), 3),
            "cpu_median_s": round(statistics.median(measured["cpu"]), 3),
        }
        verdict = "PASS" if least < TARGET_S else "FAIL"
        print(
            f"{name:18} wall {least:.3f} s (median {result[name]['wall_median_s']:.3f}), "
            f"cpu {result[name]['cpu_min_s']:.3f} s  target < {TARGET_S} s wall  {verdict}"
        )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    main(parser.parse_args().runs)
