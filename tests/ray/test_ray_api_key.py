"""An explicit ``--api-key`` reaches the shards of ``--executor ray`` through the run's limit
board, not in their tasks' arguments: the cluster's workers hold another key in their
environment (``DEEPSEEK_API_KEY``, ``tests.ray.conftest``), and the simulator takes only the
explicit one, so every row written is a call a shard made with the board's key."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dscall.simulator import SimulatorConfig, SimulatorThread
from tests.conftest import TEST_API_KEY
from tests.integration.conftest import Workspace, invoke
from tests.ray.test_ray_executor import dataset_args

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]

SECRET = "sk-explicit-board-key-5e4d3c2b1a0f9e8d"


def test_an_explicit_key_reaches_every_shard_through_the_board(
    workspace: Workspace, ray_cluster: str
) -> None:
    assert SECRET != TEST_API_KEY  # the workers' own key would be refused
    folder = workspace.root / "results"
    run = replace(workspace, out=folder)
    with SimulatorThread(SimulatorConfig(api_key=SECRET)) as sim:
        args = dataset_args(run, sim, ray_cluster, "--shards", "2", "--api-key", SECRET)
        done = invoke(args)
        received = sim.stats()["requests_received"]
    assert done.exit_code == 0, done.output
    rows = pq.read_table(str(folder)).to_pylist()
    summary = json.loads((folder / "_SUMMARY.json").read_text(encoding="utf-8"))
    assert rows
    assert summary["rows_written"] == len(rows)
    assert summary["chunks"]["ok"] == len(rows)
    assert received > 0  # answered by the simulator (repeated chunks share one call)
    for rank in range(2):  # both shards ran, each with documents of its own
        marker = json.loads((folder / f"_SHARD-0000{rank}.json").read_text(encoding="utf-8"))
        assert marker["rows"] > 0
    assert SECRET not in done.output
    for path in Path(folder).rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
