"""``--documents-out`` of a sharded run without Ray: ``run_shard`` writes each shard's documents
part into its own folder and records it in the marker, and ``is_done`` holds a shard done only
while that part is in place (and only if it was written at all)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dscall.errors import UsageError
from dscall.executors.dataset import is_done, prepare_folder
from dscall.executors.documents import check_documents_folder, prepare_documents
from dscall.executors.shard import run_shard
from dscall.executors.shards import plan_shards, settings_fingerprint
from dscall.simulator import SimulatorThread
from tests.integration.conftest import Workspace
from tests.integration.test_executor_shards import settings_for


def test_each_shard_writes_its_documents_part_and_its_marker_records_it(
    workspace: Workspace, sim: SimulatorThread
) -> None:
    folder, docs = workspace.root / "results", workspace.root / "docs"
    plain = settings_for(workspace, sim, folder)
    settings = replace(plain, output=replace(plain.output, documents_out=docs))
    prepare_folder(folder, 2, settings.inputs, force=False)
    prepare_documents(docs, 2, settings.inputs, force=False)
    plan = plan_shards(settings, 2)
    results = [run_shard(settings, rank, 2, plan=plan.shards[rank]) for rank in range(2)]
    assert [r.exit_code for r in results] == [0, 0]
    assert [r.documents_rows for r in results] == [len(s.sources) for s in plan.shards]
    table = pq.read_table(str(docs))
    assert sorted(table.column("doc_path").to_pylist()) == sorted(
        source.rel_path for shard in plan.shards for source in shard.sources
    )
    marker = json.loads((folder / "_SHARD-00001.json").read_text(encoding="utf-8"))
    assert marker["documents_part"] == "documents-part-00001-of-00002.parquet"
    assert marker["documents_rows"] == results[1].documents_rows
    fingerprint = settings_fingerprint(settings)
    shard = plan.shards[1]
    assert is_done(folder, shard, fingerprint, docs) is not None
    (docs / marker["documents_part"]).unlink()
    assert is_done(folder, shard, fingerprint, docs) is None  # its documents part is gone
    assert is_done(folder, shard, fingerprint) is not None  # its chunk rows are all there

    # A shard done without --documents-out is not done for a run that asks for it.
    run_shard(plain, 0, 2, plan=plan.shards[0])
    assert is_done(folder, plan.shards[0], fingerprint) is not None
    assert is_done(folder, plan.shards[0], fingerprint, docs) is None


def test_the_documents_folder_must_not_mix_with_the_chunk_dataset(tmp_path: Path) -> None:
    out = tmp_path / "results"
    for bad in (out, out / "docs", tmp_path):
        with pytest.raises(UsageError, match="a folder of its own"):
            check_documents_folder(out, bad)
    check_documents_folder(out, tmp_path / "docs")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "mine.parquet").write_bytes(b"PAR1")
    with pytest.raises(UsageError, match=r"--documents-out .* holds mine\.parquet"):
        prepare_documents(tmp_path / "docs", 2, (), force=False)
