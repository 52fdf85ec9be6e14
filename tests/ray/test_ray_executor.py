"""``dscall process --executor ray`` on a real two-node Ray cluster of this machine, against the
simulator over loopback: the dataset holds a local run's rows, a rerun pays nothing, a shard
whose worker is SIGKILLed is run again and pays only for what was in flight, and a shard lost
for good leaves the others' parts and exits 1 naming it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq
import pytest

from dscall.executors.shards import shard_of
from dscall.simulator import SimulatorConfig, SimulatorThread
from tests.integration.conftest import Workspace, invoke, read_rows, write_corpus
from tests.integration.test_executor_shards import stable
from tests.ray.conftest import ray_env

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]

# Another simulator's port is in the request hash; its prefix-cache hits depend on order.
OTHER_SIMULATOR = frozenset({"request_hash", "cache_hit_tokens", "cache_miss_tokens", "cost_usd"})


def dataset_args(
    workspace: Workspace, sim: SimulatorThread, address: str, *extra: str
) -> list[str]:
    return workspace.args(sim, "--executor", "ray", "--ray-address", address, *extra)


def test_the_dataset_holds_a_local_runs_rows_and_a_rerun_pays_nothing(
    workspace: Workspace, sim: SimulatorThread, ray_cluster: str
) -> None:
    folder = workspace.root / "results"
    ray_run = replace(workspace, out=folder)
    done = invoke(dataset_args(ray_run, sim, ray_cluster, "--shards", "3", "--quiet"))
    assert done.exit_code == 0, done.output
    rows = pq.read_table(str(folder)).to_pylist()
    keys = [(row["doc_path"], row["chunk_index"]) for row in rows]
    assert len(set(keys)) == len(keys)  # every chunk exactly one row across the parts
    assert sorted(p.name for p in folder.glob("_SHARD-*.json")) == [
        f"_SHARD-0000{rank}.json" for rank in range(3)
    ]
    summary = json.loads((folder / "_SUMMARY.json").read_text(encoding="utf-8"))
    assert summary["rows_written"] == len(rows)
    assert summary["chunks"]["ok"] == len(rows)
    with SimulatorThread(SimulatorConfig()) as fresh:
        local_run = replace(workspace, cache=workspace.root / "local-cache")
        local = invoke(local_run.args(fresh, "--quiet"))
        assert local.exit_code == 0, local.output
    assert stable(rows, OTHER_SIMULATOR) == stable(read_rows(workspace.out), OTHER_SIMULATOR)

    sent = sim.stats()["requests_received"]
    again = invoke(dataset_args(ray_run, sim, ray_cluster, "--shards", "3"))
    assert again.exit_code == 0, again.output
    assert "3 from an earlier run" in again.output
    assert sim.stats()["requests_received"] == sent  # nothing paid, nothing even asked
    assert pq.read_table(str(folder)).num_rows == len(rows)


def shard_workers() -> dict[int, psutil.Process]:
    """The Ray workers of this test's cluster running a shard now, by rank (Ray names a
    worker's process after its task while it runs one)."""
    found: dict[int, psutil.Process] = {}
    for process in psutil.Process(os.getpid()).children(recursive=True):
        try:
            title = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if "ray::dscall-shard-" in title:
            found[int(title.split("ray::dscall-shard-", 1)[1][:5])] = process
    return found


def start_and_kill_one(
    workspace: Workspace, sim: SimulatorThread, address: str, *extra: str
) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run dscall in its own process; once answers flow, SIGKILL one shard's worker."""
    args = [sys.executable, "-m", "dscall", *dataset_args(workspace, sim, address, *extra)]
    with subprocess.Popen(
        args, env=ray_env(workspace.root), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as driver:
        killed = -1
        deadline = time.monotonic() + 120
        while killed < 0 and time.monotonic() < deadline and driver.poll() is None:
            workers = shard_workers()
            if len(workers) == 2 and sim.stats()["requests_received"] >= 6:
                killed = min(workers)
                workers[killed].send_signal(signal.SIGKILL)
            time.sleep(0.05)
        out, err = driver.communicate(timeout=180)
    assert killed >= 0, f"no shard worker was seen running: {err}"
    return subprocess.CompletedProcess(args, driver.returncode, out, err), killed


@pytest.fixture
def slow_sim() -> Any:
    with SimulatorThread(SimulatorConfig(latency_ms=250)) as running:
        yield running


def one_chunk_corpus(workspace: Workspace) -> Workspace:
    corpus = write_corpus(workspace.root / "small", docs=40, paragraphs=1)
    return replace(workspace, corpus=corpus, out=workspace.root / "results")


# One chunk per document (the last --chunk-tokens wins); 2 shards sharing 4 requests in flight.
LIMITS = ("--chunk-tokens", "256", "--shards", "2", "--max-concurrency", "4", "--concurrency", "4")


def test_a_killed_shard_is_run_again_and_pays_only_for_calls_in_flight(
    workspace: Workspace, slow_sim: SimulatorThread, ray_cluster: str
) -> None:
    run = one_chunk_corpus(workspace)
    ended, _ = start_and_kill_one(run, slow_sim, ray_cluster, *LIMITS, "--progress-interval", "0.2")
    assert ended.returncode == 0, ended.stderr
    # The driver's display moved while the shards ran: a count of chunks done below the
    # smallest shard's can only come from the live figures of shards still running.
    sizes = Counter(shard_of(path.name, 2) for path in run.corpus.iterdir())
    done = [int(found) for found in re.findall(r"\| chunks (\d+)/", ended.stderr)]
    assert any(0 < count < min(sizes.values()) for count in done), done
    rows = pq.read_table(str(run.out)).to_pylist()
    assert len({row["doc_path"] for row in rows}) == len(rows) == 40
    assert {row["status"] for row in rows} == {"ok"}
    stats = slow_sim.stats()
    # The kill comes early (6 of 40 requests), while both shards have most of their documents
    # waiting: the board's caps follow demand, so each runs with 2 of the 4 then. The killed
    # one's 2 in flight may be paid again.
    assert stats["bodies_paid_more_than_once"] <= 2
    assert stats["requests_received"] <= 40 + 2


def test_a_shard_lost_for_good_leaves_the_others_and_is_named(
    workspace: Workspace, slow_sim: SimulatorThread, ray_cluster: str
) -> None:
    run = one_chunk_corpus(workspace)
    ended, killed = start_and_kill_one(run, slow_sim, ray_cluster, *LIMITS, "--shard-retries", "0")
    assert ended.returncode == 1, ended.stderr
    assert f"shard {killed:05d}" in ended.stderr
    kept = 1 - killed
    assert (run.out / f"part-{kept:05d}-of-00002.parquet").exists()
    assert (run.out / f"_SHARD-{kept:05d}.json").exists()
    assert not (run.out / f"_SHARD-{killed:05d}.json").exists()
    summary = json.loads((run.out / "_SUMMARY.json").read_text(encoding="utf-8"))
    assert [s["state"] for s in summary["shards"]] == [
        "lost" if r == killed else "ran" for r in (0, 1)
    ]

    again = subprocess.run(
        [sys.executable, "-m", "dscall", *dataset_args(run, slow_sim, ray_cluster, *LIMITS)],
        env=ray_env(run.root),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert "1 from an earlier run" in again.stderr
    assert pq.read_table(str(run.out)).num_rows == 40
    assert slow_sim.stats()["bodies_paid_more_than_once"] <= 2


def test_relative_paths_mean_what_they_meant_where_dscall_was_started(
    workspace: Workspace, sim: SimulatorThread, ray_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ray's workers run in a folder of Ray's own: without the driver's folder, every document
    # was "not found" and the parts were written where the driver never looked.
    monkeypatch.chdir(workspace.root)
    relative = Workspace(
        workspace.root, Path(workspace.corpus.name), Path("results"), Path("cache")
    )
    done = invoke(dataset_args(relative, sim, ray_cluster, "--shards", "2", "--quiet"))
    assert done.exit_code == 0, done.output
    rows = pq.read_table(str(workspace.root / "results")).to_pylist()
    assert len({row["doc_path"] for row in rows}) == len(list(workspace.corpus.iterdir()))
    assert all(row["status"] == "ok" for row in rows)
    assert (workspace.root / "cache").is_dir()
