"""Reading a dscall Parquet file back for ``dscall show`` and ``dscall export`` (SPEC §13).

Rows are read batch by batch (``ParquetFile.iter_batches``), only the columns asked for plus
the ones a filter needs, and reading stops once ``limit`` rows have passed the filters, so
``dscall show big.parquet`` reads the first batches of a large file, not all of it. Values
become plain text (``cell_text``) or JSON values (``json_value``) here; the commands only print.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dscall.errors import UsageError
from dscall.output.parquet import METADATA_KEY

# The columns shown when --columns is not given, those of them the file has, in this order.
DEFAULT_COLUMNS = (
    "doc_path",
    "variant",
    "step",
    "chunk_index",
    "status",
    "output",
    "error_message",
)
_BATCH_ROWS = 1024


@dataclass(frozen=True, slots=True)
class RowFilter:
    statuses: tuple[str, ...] = ()  # empty: every status
    doc_glob: str | None = None  # fnmatch on doc_path

    def needs(self) -> list[str]:
        """The columns the filter reads."""
        return (["status"] if self.statuses else []) + (["doc_path"] if self.doc_glob else [])


def open_results(path: Path) -> pq.ParquetFile:
    """``path`` as a Parquet file dscall wrote; a one-line ``UsageError`` otherwise."""
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if path.is_dir():
        raise UsageError(f"{path} is a folder; name a Parquet file dscall wrote")
    try:
        file = pq.ParquetFile(str(path))
    except (OSError, pa.ArrowException) as exc:
        raise UsageError(f"{path} is not a Parquet file ({type(exc).__name__})") from exc
    if METADATA_KEY.encode() not in (file.metadata.metadata or {}):
        raise UsageError(f"{path} is a Parquet file dscall did not write")
    return file


def choose_columns(available: Sequence[str], requested: str | None) -> list[str]:
    """The columns to read: ``requested`` ("a,b,c") checked against the file, or the defaults."""
    if requested is None:
        return [name for name in DEFAULT_COLUMNS if name in available]
    names = [name.strip() for name in requested.split(",") if name.strip()]
    unknown = [name for name in names if name not in available]
    if unknown or not names:
        what = f"unknown column {', '.join(unknown)}" if unknown else "no column named"
        raise UsageError(f"--columns: {what}; the file has {', '.join(available)}", limit=2000)
    return names


def parse_statuses(value: str | None) -> tuple[str, ...]:
    """``--status ok,error`` as a tuple; empty for every status."""
    if not value:
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())


def iter_rows(
    file: pq.ParquetFile, columns: Sequence[str], where: RowFilter, limit: int = 0
) -> Iterator[dict[str, Any]]:
    """The rows that pass ``where``, as dicts of ``columns``; at most ``limit`` (0: all)."""
    available = set(file.schema_arrow.names)
    for name in where.needs():
        if name not in available:
            raise UsageError(f"the file has no {name} column to filter on")
    read = list(dict.fromkeys([*columns, *where.needs()]))
    left = limit
    for batch in file.iter_batches(batch_size=_BATCH_ROWS, columns=read):
        rows = batch.to_pylist() if not where.needs() else _filtered(batch, where)
        for row in rows:
            yield {name: row[name] for name in columns}
            left -= 1
            if limit and left <= 0:
                return


def _filtered(batch: pa.RecordBatch, where: RowFilter) -> list[dict[str, Any]]:
    keep = [True] * batch.num_rows
    if where.statuses:
        statuses = batch.column("status").to_pylist()
        keep = [k and s in where.statuses for k, s in zip(keep, statuses, strict=True)]
    if where.doc_glob:
        paths = batch.column("doc_path").to_pylist()
        glob = where.doc_glob
        keep = [
            k and p is not None and fnmatch.fnmatchcase(p, glob)
            for k, p in zip(keep, paths, strict=True)
        ]
    if not any(keep):
        return []
    rows: list[dict[str, Any]] = batch.filter(pa.array(keep)).to_pylist()
    return rows


def json_value(value: Any) -> Any:
    """``value`` as JSON would hold it: timestamps and dates as ISO 8601, bytes as text,
    lists and structs kept (their members converted), NaN and infinities as null."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def cell_text(value: Any) -> str:
    """``value`` as one CSV or table cell: nested values as JSON text, null as empty, booleans
    as true/false, timestamps as ISO 8601."""
    value = json_value(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, float):
        return repr(value)
    return str(value)
