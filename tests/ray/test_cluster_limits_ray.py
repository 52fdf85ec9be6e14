"""The run's limits held for the whole cluster (``executors.limit_board``), on a real two-node
Ray cluster against the simulator: the calls in flight summed over the shards never pass
``--max-concurrency`` while a busy shard borrows what an idle one does not use, and the budget
is the run's: a busy shard spends what a light one left, and running out stops every shard."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from dscall.executors.shards import shard_of
from dscall.simulator import SimulatorConfig, SimulatorThread
from tests.integration.conftest import Workspace, document_text, invoke
from tests.ray.test_ray_executor import dataset_args

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]
ray = pytest.importorskip("ray")


def uneven_corpus(folder: Path, heavy: int, light: int, paragraphs: int = 1) -> Path:
    """``heavy`` documents for shard 0 of 2, ``light`` for shard 1."""
    folder.mkdir(parents=True)
    want = {0: heavy, 1: light}
    index = 0
    while any(want.values()):
        name = f"doc_{index:05d}.txt"
        rank = shard_of(name, 2)
        if want[rank]:
            want[rank] -= 1
            (folder / name).write_text(document_text(index, paragraphs), encoding="utf-8")
        index += 1
    return folder


def summary_of(folder: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((folder / "_SUMMARY.json").read_text(encoding="utf-8"))
    return summary


def ray_run(workspace: Workspace, heavy: int, light: int, paragraphs: int = 1) -> Workspace:
    corpus = uneven_corpus(workspace.root / "uneven", heavy, light, paragraphs)
    return replace(workspace, corpus=corpus, out=workspace.root / "results")


def test_a_busy_shard_borrows_slots_but_the_sum_stays_within_max_concurrency(
    workspace: Workspace, ray_cluster: str
) -> None:
    run = ray_run(workspace, heavy=60, light=1)
    with SimulatorThread(SimulatorConfig(latency_ms=200)) as slow:
        args = ("--shards", "2", "--max-concurrency", "6", "--concurrency", "6", "--quiet")
        done = invoke(dataset_args(run, slow, ray_cluster, *args))
        assert done.exit_code == 0, done.output
        peak = slow.stats()["max_in_flight"]
    rows = pq.read_table(str(run.out)).to_pylist()
    assert len({row["doc_path"] for row in rows}) == 61
    assert all(row["status"] == "ok" for row in rows)
    assert peak <= 6
    # Even shares would be 3 each, and the light shard has one call: 5 or 6 on the wire at
    # once means the busy shard ran past its share once the light one was done.
    assert peak >= 5


def test_one_busy_shard_may_commit_the_whole_budget_as_a_local_run_would(
    workspace: Workspace, sim: SimulatorThread, ray_cluster: str
) -> None:
    run = ray_run(workspace, heavy=40, light=0, paragraphs=4)
    args = ("--budget-usd", "0.004", "--max-tokens", "100", "--max-concurrency", "4")
    local = invoke(replace(run, out=run.root / "local.parquet").args(sim, *args, "--quiet"))
    assert local.exit_code == 3, local.output
    local_rows = pq.read_table(str(run.root / "local.parquet")).num_rows
    done = invoke(dataset_args(run, sim, ray_cluster, *args, "--shards", "2", "--quiet"))
    assert done.exit_code == 3, done.output
    assert "budget of $0.0040 reached for the whole run" in done.stderr
    rows = pq.read_table(str(run.out)).to_pylist()
    assert all(row["status"] == "ok" for row in rows)
    assert sum(row["cost_usd"] for row in rows) <= 0.004
    # Split evenly, the one shard with documents could commit only half of the budget.
    assert len(rows) >= 0.9 * local_rows


def test_running_out_of_the_runs_budget_stops_every_shard(
    workspace: Workspace, sim: SimulatorThread, ray_cluster: str
) -> None:
    run = ray_run(workspace, heavy=30, light=30, paragraphs=4)
    budget = 0.004
    args = ("--shards", "2", "--budget-usd", str(budget), "--max-tokens", "100", "--quiet")
    done = invoke(dataset_args(run, sim, ray_cluster, *args))
    assert done.exit_code == 3, done.output
    rows = pq.read_table(str(run.out)).to_pylist()
    assert len(rows) > 0
    assert sum(row["cost_usd"] for row in rows) <= budget
    shards = summary_of(run.out)["shards"]
    assert len(shards) == 2
    for shard in shards:
        assert shard["exit_code"] == 3, shard
        assert "budget" in (shard["error"] or ""), shard


class StopRecorder:
    """What a shard's link reads of and stops in the engine: no attempt waiting for an
    endpoint, and ``request_stop``, recorded."""

    waiting = 0

    def __init__(self) -> None:
        self.stop_reason: object = None

    def request_stop(self, reason: object) -> None:
        self.stop_reason = reason


async def test_a_throttle_cut_on_one_shard_cuts_the_others_through_the_board(
    ray_cluster: str,
) -> None:
    from dscall.calls.limits import CallLimits
    from dscall.executors.cluster_link import SYNC_INTERVAL_S, ClusterLink
    from dscall.executors.limit_board import LimitBoard

    ray.init(address=ray_cluster, include_dashboard=False, log_to_driver=False)
    try:
        board = ray.remote(num_cpus=0)(LimitBoard).remote([0, 1], 2, [(16, None, None)])
        throttled, other = CallLimits(8, 16), CallLimits(8, 16)
        notes: list[str] = []
        async with (
            ClusterLink(board, 0, notes.append).attached(StopRecorder(), [throttled], None),  # type: ignore[arg-type]
            ClusterLink(board, 1, notes.append).attached(StopRecorder(), [other], None),  # type: ignore[arg-type]
        ):
            for limits in (throttled, other):
                for _ in range(8):
                    await limits.acquire(0)
            for _ in range(8):
                throttled.release("throttled")
            assert throttled.concurrency.cuts == 1
            assert other.concurrency.limit == 8
            for _ in range(50):
                await asyncio.sleep(SYNC_INTERVAL_S)
                if other.concurrency.limit < 8:
                    break
            assert other.concurrency.limit == 6  # 0.8 of 8: one cut, passed on once
            assert other.concurrency.cuts == 0  # not its own: not passed on again
        assert notes == []
    finally:
        ray.shutdown()


def test_each_endpoints_limit_holds_for_the_cluster_and_is_borrowed(
    workspace: Workspace, ray_cluster: str
) -> None:
    run = ray_run(workspace, heavy=60, light=1)
    config = SimulatorConfig(latency_ms=200)
    with SimulatorThread(config) as first, SimulatorThread(replace(config)) as second:
        args = dataset_args(run, first, ray_cluster, "--shards", "2", "--quiet")
        at = args.index("--base-url")
        del args[at : at + 2]  # the endpoints instead
        args += ["--endpoint", f"a={first.base_url}", "--endpoint", f"b={second.base_url}"]
        args += ["--max-concurrency", "12", "--concurrency", "12"]
        done = invoke(args)
        assert done.exit_code == 0, done.output
        peaks = [sim.stats()["max_in_flight"] for sim in (first, second)]
    rows = pq.read_table(str(run.out)).to_pylist()
    assert {row["endpoint"] for row in rows} == {"a", "b"}
    # The run's 12 are 6 for each endpoint (equal weights), for the whole cluster. Split
    # evenly, the busy shard would have 3 of each, and the light one's call 1 more.
    assert all(peak <= 6 for peak in peaks), peaks
    assert max(peaks) >= 5, peaks
