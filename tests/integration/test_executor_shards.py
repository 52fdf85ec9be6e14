"""Shards without Ray: the split, ``run_shard`` for each rank against the simulator, the dataset
folder read back by pyarrow, DuckDB and polars, and the figures summed on the driver."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from dscall.config import CacheSettings, ChunkSettings, OutputSettings, ProcessSettings
from dscall.errors import UsageError
from dscall.executors.dataset import is_done, prepare_folder
from dscall.executors.merge import merge_into
from dscall.executors.shard import run_shard
from dscall.executors.shards import plan_shards, settings_fingerprint, shard_of, shard_settings
from dscall.simulator import SimulatorConfig, SimulatorThread
from dscall.stats import RunStats
from tests.integration.conftest import Workspace, invoke, read_rows

# Columns that differ between two runs of the same settings (a chunk text met in several
# documents is sent once: which row is "cached" with 0 attempts depends on timing).
VOLATILE = {"run_id", "started_at", "finished_at", "latency_ms", "cached", "attempts"}


def stable(rows: list[dict[str, Any]], also: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    kept = [{k: v for k, v in row.items() if k not in VOLATILE | also} for row in rows]
    return sorted(kept, key=lambda row: (row["doc_path"], row["chunk_index"]))


def settings_for(workspace: Workspace, sim: SimulatorThread, folder: Path) -> ProcessSettings:
    settings = ProcessSettings(
        inputs=(str(workspace.corpus),),
        chunk=ChunkSettings(chunk_tokens=64, overlap_tokens=0, tokenizer="estimate"),
        cache=CacheSettings(directory=workspace.root / "shards-cache"),
        output=OutputSettings(out=folder),
    )
    return replace(settings, call=replace(settings.call, base_url=sim.base_url))


def test_a_document_keeps_its_shard_whatever_else_is_listed() -> None:
    names = [f"folder/doc_{i}.txt" for i in range(200)]
    ranks = [shard_of(name, 8) for name in names]
    assert ranks == [shard_of(name, 8) for name in reversed(names)][::-1]
    assert set(ranks) == set(range(8))  # 200 names reach every one of 8 shards
    assert all(0 <= shard_of(name, 3) < 3 for name in names)


def test_the_plan_holds_each_document_once_in_input_order(workspace: Workspace) -> None:
    settings = ProcessSettings(inputs=(str(workspace.corpus),))
    plan = plan_shards(settings, 4)
    listed = [source.rel_path for shard in plan.shards for source in shard.sources]
    assert sorted(listed) == sorted(p.name for p in workspace.corpus.iterdir())
    for shard in plan.shards:
        names = [source.rel_path for source in shard.sources]
        assert names == sorted(names)
        assert all(shard_of(name, 4) == shard.rank for name in names)


def test_shards_write_the_rows_of_a_local_run(workspace: Workspace, sim: SimulatorThread) -> None:
    local = invoke(workspace.args(sim, "--quiet"))
    assert local.exit_code == 0, local.output
    folder = workspace.root / "dataset"
    # A simulator and a cache of their own: the same answers, tokens and costs as the first run.
    with SimulatorThread(SimulatorConfig()) as fresh:
        settings = settings_for(workspace, fresh, folder)
        prepare_folder(folder, 3, settings.inputs, force=False)
        results = [run_shard(settings, rank, 3) for rank in range(3)]
    assert [r.exit_code for r in results] == [0, 0, 0]
    assert sum(r.rows for r in results) == len(read_rows(workspace.out))
    from_arrow = pq.read_table(str(folder)).to_pylist()  # the markers are not read as data
    # The request hash holds the answer source, here another simulator's port; its simulated
    # prefix cache hits (and so the cost) depend on which request came first.
    other_port = frozenset({"request_hash", "cache_hit_tokens", "cache_miss_tokens", "cost_usd"})
    local_rows = stable(read_rows(workspace.out), other_port)
    for mine, theirs in zip(stable(from_arrow, other_port), local_rows, strict=True):
        assert mine == theirs, {k: (v, theirs[k]) for k, v in mine.items() if theirs[k] != v}
    keys = {(row["doc_path"], row["chunk_index"]) for row in from_arrow}
    assert len(keys) == len(from_arrow)  # every chunk exactly one row
    pattern = str(folder / "*.parquet")
    counted = duckdb.execute("select count(*) from read_parquet(?)", [pattern]).fetchall()
    assert counted == [(len(keys),)]
    assert pl.read_parquet(pattern).height == len(keys)
    # Each shard's marker says it is done, for these settings and these documents only.
    fingerprint = settings_fingerprint(settings)
    plan = plan_shards(settings, 3)
    assert all(is_done(folder, shard, fingerprint) for shard in plan.shards)
    other = settings_fingerprint(replace(settings, prompt=replace(settings.prompt, model="x")))
    assert not any(is_done(folder, shard, other) for shard in plan.shards)
    (workspace.corpus / "new_doc.txt").write_text("A new document arrives.", encoding="utf-8")
    grown = plan_shards(settings, 3)
    assert sum(1 for shard in grown.shards if not is_done(folder, shard, fingerprint)) == 1


def test_a_shard_gets_its_share_of_the_limits() -> None:
    settings = ProcessSettings(inputs=("docs",), output=OutputSettings(out=Path("results")))
    call = replace(settings.call, concurrency=64, max_concurrency=256, rpm=1000, tpm=None)
    shard = shard_settings(replace(settings, call=call, budget_usd=2.0), 1, 4)
    assert shard.output.out == Path("results/part-00001-of-00004.parquet")
    assert (shard.call.max_concurrency, shard.call.concurrency, shard.call.rpm) == (64, 16, 250)
    assert shard.budget_usd == 0.5
    assert shard.caller is not None
    assert shard.caller.endswith("/shard-00001")


def test_the_dataset_folder_keeps_foreign_files_out(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="name a folder"):
        prepare_folder(tmp_path / "results.parquet", 2, ("docs",), force=False)
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "theirs.parquet").write_bytes(b"PAR1")
    with pytest.raises(UsageError, match="not a part of this dataset"):
        prepare_folder(folder, 2, ("docs",), force=False)


def test_shard_figures_add_up() -> None:
    total, one, two = RunStats(), RunStats(), RunStats()
    for stats, latencies in ((one, [10.0, 20.0]), (two, [30.0])):
        stats.chunks_ok = len(latencies)
        stats.front.documents = 1
        stats.cost_usd = 0.5
        stats.status_counts[200] = len(latencies)
        for ms in latencies:
            stats.latency.record(ms)
    merge_into(total, one)
    merge_into(total, two)
    assert (total.chunks_ok, total.documents_seen, total.cost_usd) == (3, 2, 1.0)
    assert total.status_counts == {200: 3}
    assert (total.latency.count, total.latency.max_ms, total.latency.percentile(50)) == (3, 30, 20)


def test_executor_options_that_cannot_work_are_usage_errors(
    workspace: Workspace, sim: SimulatorThread
) -> None:
    alone = invoke(workspace.args(sim, "--shards", "2"))
    assert alone.exit_code == 2
    assert "--ray-address and --shards need --executor ray" in alone.output
    # --shards given: the folder is checked before any Ray is started.
    a_file = invoke(workspace.args(sim, "--executor", "ray", "--shards", "2"))
    assert a_file.exit_code == 2
    assert "name a folder (results/), not a file" in a_file.output
    to_folder = replace(workspace, out=workspace.root / "results")
    both = to_folder.args(sim, "--executor", "ray", "--shards", "2", "--documents-out", "d.parquet")
    refused = invoke(both)
    assert refused.exit_code == 2
    assert "--documents-out d.parquet: --executor ray writes a Parquet dataset" in refused.output
    inside = str(to_folder.out / "docs")
    mixed = invoke(
        to_folder.args(sim, "--executor", "ray", "--shards", "2", "--documents-out", inside)
    )
    assert mixed.exit_code == 2
    assert "neither --out" in mixed.output
