"""The Parquet of a comparison: one row per answer (``kind = "answer"``, with its variant) and
one per judge call (``kind = "judge"``), written atomically by ``ParquetRowWriter``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from dscall.output.parquet import ParquetRowWriter

COMPARE_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("variant", pa.string()),
        ("prompt_source", pa.string()),
        ("model", pa.string()),
        ("doc_path", pa.string()),
        ("chunk_index", pa.int64()),
        ("chunk_text", pa.string()),
        ("request_hash", pa.string()),
        ("status", pa.string()),
        ("output", pa.string()),
        ("answer_chars", pa.int64()),
        ("schema_valid", pa.bool_()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("attempts", pa.int64()),
        ("cached", pa.bool_()),
        ("latency_ms", pa.float64()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("price_usd", pa.float64()),
        ("cost_usd", pa.float64()),
        ("pair_first", pa.string()),
        ("pair_second", pa.string()),
        ("judge_a", pa.string()),
        ("judge_b", pa.string()),
        ("verdict", pa.string()),
    ]
)


def write_rows(path: Path, rows: Iterable[dict[str, Any]], metadata: dict[str, Any]) -> int:
    """Write ``rows`` to ``path`` (temporary file, then rename); the rows written."""
    writer = ParquetRowWriter(path, COMPARE_SCHEMA, metadata)
    try:
        writer.write_many(rows)
        writer.close()
    finally:
        writer.abort()
    return writer.rows_written
