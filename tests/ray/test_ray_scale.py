"""``--executor ray`` beyond one table: ``--documents-out`` as a dataset of its own (the columns
of a local run's, resumed like the chunk parts), the shards' calls in flight together within
``--max-concurrency``, and two shards on "different hosts" (separate local cache dirs, one real
redis-server) that never pay for the same request, on the real two-node cluster of
``conftest``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from dscall.config import CacheSettings, ChunkSettings, OutputSettings, ProcessSettings
from dscall.executors.shard import ShardResult, run_shard
from dscall.executors.shards import plan_shards, shard_of
from dscall.simulator import SimulatorConfig, SimulatorThread
from tests.conftest import TEST_API_KEY
from tests.integration.conftest import Workspace, document_text, invoke, write_corpus
from tests.integration.test_executor_shards import stable
from tests.ray.conftest import ray
from tests.ray.test_ray_executor import OTHER_SIMULATOR, dataset_args, one_chunk_corpus
from tests.redis_server import running_redis

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]


def by_doc(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept = [{k: v for k, v in row.items() if k not in {"run_id", "latency_ms"}} for row in rows]
    return sorted(kept, key=lambda row: str(row["doc_path"]))


def test_documents_out_is_a_dataset_of_a_local_runs_columns_and_is_resumed(
    workspace: Workspace, sim: SimulatorThread, ray_cluster: str
) -> None:
    run = replace(workspace, out=workspace.root / "results")
    docs = workspace.root / "docs"
    extra = ("--shards", "2", "--documents-out", str(docs), "--quiet")
    done = invoke(dataset_args(run, sim, ray_cluster, *extra))
    assert done.exit_code == 0, done.output
    names = sorted(path.name for path in docs.iterdir())
    assert names == [f"documents-part-0000{rank}-of-00002.parquet" for rank in range(2)]
    table = pq.read_table(str(docs))
    summary = json.loads((run.out / "_SUMMARY.json").read_text(encoding="utf-8"))
    assert summary["documents_rows_written"] == sum(s["documents_rows"] for s in summary["shards"])
    assert summary["documents_rows_written"] == table.num_rows
    assert all(shard["max_rss_kb"] > 10_000 for shard in summary["shards"])  # a worker's peak
    local_docs = workspace.root / "local-docs.parquet"
    local_run = replace(workspace, cache=workspace.root / "local-cache")
    with SimulatorThread(SimulatorConfig()) as fresh:
        local = invoke(local_run.args(fresh, "--quiet", "--documents-out", str(local_docs)))
        assert local.exit_code == 0, local.output
    local_table = pq.read_table(str(local_docs))
    assert table.schema.remove_metadata() == local_table.schema.remove_metadata()
    assert table.num_rows == local_table.num_rows == 12  # one row per document
    # Cost and prefix-cache tokens depend on another simulator's order; not the answers.
    volatile = {"cost_usd", "cache_hit_tokens", "cache_miss_tokens", "started_at", "finished_at"}
    ours = [{k: v for k, v in r.items() if k not in volatile} for r in by_doc(table.to_pylist())]
    theirs = by_doc(local_table.to_pylist())
    assert ours == [{k: v for k, v in r.items() if k not in volatile} for r in theirs]
    chunk_rows = stable(pq.read_table(str(run.out)).to_pylist(), OTHER_SIMULATOR)
    assert {row["doc_path"] for row in chunk_rows} == {row["doc_path"] for row in ours}

    # Resumed like the chunk parts: a rerun skips both shards and keeps their documents parts;
    # a shard whose documents part is gone runs again, its answers from the cache.
    sent = sim.stats()["requests_received"]
    again = invoke(dataset_args(run, sim, ray_cluster, *extra[:-1]))
    assert again.exit_code == 0, again.output
    assert "2 from an earlier run" in again.output
    assert "wrote 12 document rows" in again.output
    (docs / "documents-part-00001-of-00002.parquet").unlink()
    third = invoke(dataset_args(run, sim, ray_cluster, *extra[:-1]))
    assert third.exit_code == 0, third.output
    assert "1 from an earlier run" in third.output
    assert pq.read_table(str(docs)).num_rows == 12
    assert sim.stats()["requests_received"] == sent


@pytest.fixture
def slow_sim() -> Any:
    with SimulatorThread(SimulatorConfig(latency_ms=200)) as running:
        yield running


def test_the_shards_together_keep_within_max_concurrency(
    workspace: Workspace, slow_sim: SimulatorThread, ray_cluster: str
) -> None:
    run = one_chunk_corpus(workspace)
    limits = ("--chunk-tokens", "256", "--shards", "2", "--max-concurrency", "6")
    done = invoke(dataset_args(run, slow_sim, ray_cluster, *limits, "--concurrency", "6"))
    assert done.exit_code == 0, done.output
    stats = slow_sim.stats()
    assert stats["requests_received"] == 40
    # Each shard holds 3 in flight at most: 6 for the two. More than one shard's share in
    # flight at once shows the two shards were sending together.
    assert 3 < stats["max_in_flight"] <= 6, stats["max_in_flight"]


def twin_corpus(folder: Path, pairs: int) -> Path:
    """``pairs`` texts, each in two files (a_i, b_i): the same requests from two documents."""
    write_corpus(folder, docs=0)
    for index in range(pairs):
        text = document_text(index, paragraphs=1)
        for prefix in ("a", "b"):
            (folder / f"{prefix}_{index:02d}.txt").write_text(text, encoding="utf-8")
    return folder


def on_host(settings: ProcessSettings, rank: int, cache: Path, url: str, plan: Any) -> Any:
    """Shard ``rank`` of 2 started as a Ray task with its own local cache folder (its "host")
    and the shared tier ``url``: the task's reference."""
    mine = replace(settings, cache=replace(settings.cache, directory=cache, cache_url=url))
    task = ray.remote(run_shard).options(num_cpus=1, max_retries=0)
    return task.remote(mine, rank, 2, plan=plan, api_key=TEST_API_KEY)


def test_two_shards_on_two_hosts_with_one_redis_never_pay_twice(
    tmp_path: Path, slow_sim: SimulatorThread, ray_cluster: str
) -> None:
    corpus = twin_corpus(tmp_path / "twins", pairs=16)
    split = [i for i in range(16) if shard_of(f"a_{i:02d}.txt", 2) != shard_of(f"b_{i:02d}.txt", 2)]
    assert len(split) >= 3  # texts that both shards send
    settings = ProcessSettings(
        inputs=(str(corpus),),
        chunk=ChunkSettings(chunk_tokens=256, overlap_tokens=0, tokenizer="estimate"),
        cache=CacheSettings(directory=tmp_path / "unused"),
        output=OutputSettings(out=tmp_path / "results"),
    )
    settings = replace(settings, call=replace(settings.call, base_url=slow_sim.base_url))
    (tmp_path / "results").mkdir()
    plans = plan_shards(settings, 2).shards
    with running_redis() as server:
        ray.init(address=ray_cluster, log_to_driver=False, configure_logging=False)
        try:

            def both(round_: str) -> list[ShardResult]:
                refs = [
                    on_host(settings, rank, tmp_path / f"{round_}-host{rank}", server.url, plan)
                    for rank, plan in enumerate(plans)
                ]
                results: list[ShardResult] = ray.get(refs)
                return results

            first = both("first")  # at the same time, on the two nodes
            assert [r.exit_code for r in first] == [0, 0]
            assert sum(r.rows for r in first) == 32
            stats = slow_sim.stats()
            assert stats["bodies_paid_more_than_once"] == 0
            assert stats["requests_received"] == stats["distinct_bodies"] == 16

            # Fresh local caches on both hosts: every answer comes from Redis, none is paid.
            again = both("second")
            assert [r.rows for r in again] == [r.rows for r in first]
            assert [r.exit_code for r in again] == [0, 0]
            assert slow_sim.stats()["requests_received"] == 16
        finally:
            ray.shutdown()
