"""The Parquet writer: row groups bounded by rows and by text, atomic publication."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dscall.output.parquet import ParquetRowWriter, chunks_schema, read_metadata


def _row(index: int, text: str) -> dict[str, object]:
    return {"doc_path": f"doc{index}.txt", "chunk_index": index, "chunk_text": text}


def test_a_row_group_is_cut_when_the_buffered_text_reaches_its_limit(tmp_path: Path) -> None:
    out = tmp_path / "chunks.parquet"
    with ParquetRowWriter(
        out, chunks_schema(), row_group_rows=1000, row_group_text_chars=10_000
    ) as writer:
        for index in range(10):
            writer.write(_row(index, "x" * 4_000))
    groups = [pq.ParquetFile(out).metadata.row_group(i).num_rows for i in range(4)]
    assert groups == [3, 3, 3, 1]


def test_a_row_group_is_cut_at_its_row_count_when_the_text_is_short(tmp_path: Path) -> None:
    out = tmp_path / "chunks.parquet"
    with ParquetRowWriter(out, chunks_schema(), row_group_rows=4) as writer:
        writer.write_many(_row(index, "short") for index in range(10))
    assert pq.ParquetFile(out).metadata.num_row_groups == 3


def test_every_row_arrives_in_order_whatever_the_row_groups(tmp_path: Path) -> None:
    out = tmp_path / "chunks.parquet"
    texts = [("y" * (index * 997 % 5_000)) or "z" for index in range(50)]
    with ParquetRowWriter(
        out, chunks_schema(), row_group_rows=7, row_group_text_chars=9_000
    ) as writer:
        writer.write_many(_row(index, text) for index, text in enumerate(texts))
    table = pq.read_table(out)
    assert table.column("chunk_text").to_pylist() == texts
    assert table.column("chunk_index").to_pylist() == list(range(50))


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "chunks.parquet"
    with ParquetRowWriter(out, chunks_schema(), metadata={"run": "first"}) as writer:
        writer.write(_row(0, "first run"))

    def second_run_fails() -> None:
        with ParquetRowWriter(out, chunks_schema(), metadata={"run": "second"}) as writer:
            writer.write(_row(0, "second run"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        second_run_fails()
    assert pq.read_table(out).column("chunk_text").to_pylist() == ["first run"]
    assert read_metadata(out)["run"] == "first"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["chunks.parquet"]
