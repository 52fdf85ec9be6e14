"""Parquet output: schemas and an incremental writer that only ever renames a finished file
into place.

Rows are buffered column by column and written in row groups, so memory is bounded by one row
group whatever the number of rows. The file is written to a temporary name beside the target
and renamed over it by ``close()``; a crash or ``abort()`` leaves the previous file (or
nothing) at the output path, never half a file.

The key-value metadata (key ``dscall``, one JSON object of plain values) is written at
``close()``, so it can say how the run ended (``complete``, ``stop_reason``, ``exit_code``,
rows per status). The Arrow schema is therefore not stored in the file (``store_schema``):
it would freeze the metadata as it was at the start; every column type round-trips without it.

A failure of the output itself (disk full, I/O error) while writing is ``OutputFailed``, a
``RunStopped``: the run stops dispatching, answers already received stay in the cache.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import attrgetter
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dscall.config import PARQUET_ROW_GROUP_ROWS, PARQUET_ROW_GROUP_TEXT_CHARS
from dscall.errors import OutputFailed, UsageError, one_line
from dscall.types import ChunkRow, DocumentRow

_DOCUMENT_FIELDS: list[pa.Field] = [
    pa.field("doc_path", pa.string()),
    pa.field("doc_id", pa.string()),
    pa.field("doc_type", pa.string()),
]
_CHUNK_FIELDS: list[pa.Field] = [
    pa.field("chunk_index", pa.int32()),
    pa.field("chunk_count", pa.int32()),
    pa.field("page_start", pa.int32()),
    pa.field("page_end", pa.int32()),
    pa.field("char_start", pa.int64()),
    pa.field("char_end", pa.int64()),
    pa.field("chunk_tokens", pa.int32()),
    pa.field("ocr", pa.bool_()),  # chunk rows: text (some of it) from --ocr
]
_TEXT_FIELD = pa.field("chunk_text", pa.string())
_STATUS_FIELDS: list[pa.Field] = [
    pa.field("status", pa.string()),
    pa.field("error_type", pa.string()),
    pa.field("error_message", pa.string()),
]
_CALL_FIELDS: list[pa.Field] = [
    pa.field("request_hash", pa.string()),
    pa.field("model", pa.string()),
    pa.field("response_model", pa.string()),
    pa.field("output", pa.string()),
    pa.field("finish_reason", pa.string()),
]
_ACCOUNTING_FIELDS: list[pa.Field] = [
    pa.field("attempts", pa.int32()),
    pa.field("cached", pa.bool_()),
    pa.field("latency_ms", pa.float64()),
    pa.field("prompt_tokens", pa.int64()),
    pa.field("completion_tokens", pa.int64()),
    pa.field("cache_hit_tokens", pa.int64()),
    pa.field("cache_miss_tokens", pa.int64()),
    pa.field("cost_usd", pa.float64()),
    pa.field("started_at", pa.timestamp("ms", tz="UTC")),
    pa.field("finished_at", pa.timestamp("ms", tz="UTC")),
]


def chunks_schema(include_text: bool = True) -> pa.Schema:
    """Schema of ``dscall chunks``: the columns that exist before any call."""
    fields = _DOCUMENT_FIELDS + _CHUNK_FIELDS + ([_TEXT_FIELD] if include_text else [])
    return pa.schema(fields + _STATUS_FIELDS)


def results_schema(
    include_text: bool = True, typed: Sequence[tuple[str, pa.DataType]] = ()
) -> pa.Schema:
    """Schema of ``dscall process --out``: one row per chunk and step (SPEC §6, §9), with a
    ``--schema``'s ``typed`` columns after the answer (§10)."""
    fields = [pa.field("run_id", pa.string())] + _DOCUMENT_FIELDS
    fields += [pa.field("step", pa.string())] + _CHUNK_FIELDS
    if include_text:
        fields.append(_TEXT_FIELD)
    fields += _CALL_FIELDS
    fields += [pa.field(name, kind) for name, kind in typed]
    return pa.schema(fields + _STATUS_FIELDS + _ACCOUNTING_FIELDS)


def documents_schema(
    step_columns: Sequence[str] = (), typed: Sequence[tuple[str, pa.DataType]] = ()
) -> pa.Schema:
    """Schema of ``--documents-out``: one row per document, with its final answer (map mode:
    the chunk answers in chunk order), for a pipeline each document-level step's answer
    (``step_columns``: ``<step>_output``) and the typed columns of their schemas."""
    return pa.schema(
        [pa.field("run_id", pa.string())]
        + _DOCUMENT_FIELDS
        + [
            pa.field("page_count", pa.int32()),
            pa.field("no_text_pages", pa.list_(pa.int32())),
            pa.field("chunk_count", pa.int32()),
            pa.field("chunks_ok", pa.int32()),
            pa.field("chunks_failed", pa.int32()),
            pa.field("output", pa.string()),
        ]
        + [pa.field(name, pa.string()) for name in step_columns]
        + [pa.field(name, kind) for name, kind in typed]
        + _STATUS_FIELDS
        + [
            pa.field("calls", pa.int32()),
            pa.field("prompt_tokens", pa.int64()),
            pa.field("completion_tokens", pa.int64()),
            pa.field("cache_hit_tokens", pa.int64()),
            pa.field("cache_miss_tokens", pa.int64()),
            pa.field("cost_usd", pa.float64()),
        ]
    )


Getter = Callable[[Any], Sequence[Any]]


def _typed_getter(kind: type, names: list[str]) -> tuple[Getter, list[str]]:
    """How to read a typed row: a getter, and the column names in the order it gives them.

    The attributes come in one C call (attrgetter); the columns that are not attributes (a
    schema's typed columns, a pipeline's ``<step>_output``) after them, from the row's
    ``extra``."""
    fields = set(getattr(kind, "__slots__", ()))
    attributes = [name for name in names if name in fields]
    others = [name for name in names if name not in fields]
    if not others:
        return attrgetter(*names), names
    if "extra" not in fields:
        raise TypeError(f"{kind.__name__} has no column(s) {others}")
    read = attrgetter(*attributes)

    def values(row: ChunkRow | DocumentRow) -> tuple[Any, ...]:
        extra = row.extra or {}
        return (*read(row), *[extra.get(name) for name in others])

    return values, attributes + others


def temp_path_for(target: Path) -> Path:
    """The temporary name a file is written under before it is renamed to ``target``."""
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def remove_stale_temps(target: Path) -> None:
    """Delete temporary files left beside ``target`` by runs that were killed (kill -9 gives
    no chance to clean up); files of a still-running process are left alone."""
    for temp in target.parent.glob(f".{target.name}.*.tmp"):
        pid_text = temp.name[len(target.name) + 2 : -len(".tmp")]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            temp.unlink(missing_ok=True)
        except OSError:  # alive but not ours (EPERM): not stale
            continue


_LONG_TEXT_COLUMNS = ("chunk_text", "output")


class ParquetRowWriter:
    """Append rows (mappings keyed by column name); ``close()`` publishes the file atomically.

    Missing keys are written as nulls. Use as a context manager: an exception aborts the write
    and leaves the output path untouched.
    """

    def __init__(
        self,
        path: Path,
        schema: pa.Schema,
        metadata: Mapping[str, Any] | None = None,
        row_group_rows: int = PARQUET_ROW_GROUP_ROWS,
        row_group_text_chars: int = PARQUET_ROW_GROUP_TEXT_CHARS,
    ) -> None:
        self.path = path
        self.rows_written = 0
        self.published = False  # renamed into place by close()
        self._row_group_rows = row_group_rows
        self._row_group_text_chars = row_group_text_chars
        self._names: list[str] = list(schema.names)
        # The columns that can be long: a row group is cut when their text adds up.
        self._text_names = [name for name in _LONG_TEXT_COLUMNS if name in self._names]
        self._columns: dict[str, list[Any]] = {name: [] for name in self._names}
        self._column_lists = [self._columns[name] for name in self._names]
        self._text_indexes = tuple(self._names.index(name) for name in self._text_names)
        # Per typed-row class: its getter, the column lists in the getter's order, and where
        # the long text columns are in it.
        self._readers: dict[type, tuple[Getter, list[list[Any]], tuple[int, ...]]] = {}
        self._buffered = 0
        self._buffered_chars = 0
        # Updated by the caller until ``close()`` writes it (how the run ended is known last).
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._schema = schema
        self._temp = temp_path_for(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                raise UsageError(f"cannot write {path}: it is a folder")
            remove_stale_temps(path)
            self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
                str(self._temp), self._schema, compression="zstd", store_schema=False
            )
        except (OSError, pa.ArrowException) as exc:
            raise UsageError(f"cannot write {path}: {_reason(exc)}") from exc

    def write(self, row: Mapping[str, Any] | ChunkRow | DocumentRow) -> None:
        """Buffer one row: a mapping (missing keys are nulls) or a typed row."""
        if isinstance(row, Mapping):
            get = row.get
            values: Sequence[Any] = [get(name) for name in self._names]
            lists, text_indexes = self._column_lists, self._text_indexes
        else:
            reader = self._readers.get(type(row))
            if reader is None:
                reader = self._readers[type(row)] = self._reader(type(row))
            getter, lists, text_indexes = reader
            values = getter(row)
        for column, value in zip(lists, values, strict=True):
            column.append(value)
        for index in text_indexes:
            value = values[index]
            if value is not None:
                self._buffered_chars += len(value)
        self._buffered += 1
        if (
            self._buffered >= self._row_group_rows
            or self._buffered_chars >= self._row_group_text_chars
        ):
            self.flush()

    def _reader(self, kind: type) -> tuple[Getter, list[list[Any]], tuple[int, ...]]:
        getter, order = _typed_getter(kind, self._names)
        lists = [self._columns[name] for name in order]
        return getter, lists, tuple(order.index(name) for name in self._text_names)

    def write_many(self, rows: Iterable[Mapping[str, Any] | ChunkRow | DocumentRow]) -> None:
        for row in rows:
            self.write(row)

    def flush(self) -> None:
        """Write the buffered rows as one row group (to the temporary file)."""
        if not self._buffered or self._writer is None:
            return
        table = pa.Table.from_pydict(self._columns, schema=self._schema)
        try:
            self._writer.write_table(table)
        except (OSError, pa.ArrowException) as exc:
            raise self._failed(exc) from exc
        self.rows_written += self._buffered
        for column in self._column_lists:  # emptied in place: the readers hold these lists
            column.clear()
        self._buffered = 0
        self._buffered_chars = 0

    def close(self) -> None:
        """Flush, write the metadata, fsync and rename the temporary file over the output
        path. Raises ``OutputFailed`` (after removing the temporary file) if any of it fails."""
        if self._writer is None:
            return
        try:
            self.flush()
            if self.metadata:
                encoded = json.dumps(self.metadata, default=str, sort_keys=True)
                self._writer.add_key_value_metadata({METADATA_KEY: encoded})
            self._writer.close()
            self._writer = None
            with open(self._temp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(self._temp, self.path)
            self.published = True
        except (OSError, pa.ArrowException) as exc:
            self.abort()
            raise self._failed(exc) from exc
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop the temporary file; the output path keeps whatever it held before. Never
        raises for the file's sake: on a full disk, closing the writer fails too."""
        writer, self._writer = self._writer, None
        try:
            if writer is not None:
                writer.close()
        except (OSError, pa.ArrowException):
            pass
        finally:
            with contextlib.suppress(OSError):
                self._temp.unlink(missing_ok=True)

    def _failed(self, exc: BaseException) -> OutputFailed:
        return OutputFailed(f"cannot write {self.path}: {_reason(exc)}")

    def __enter__(self) -> ParquetRowWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


METADATA_KEY = "dscall"
_ERRNO = re.compile(r"\[errno (\d+)\]", re.IGNORECASE)


def _reason(exc: BaseException) -> str:
    """The OS's words for an I/O failure ("No space left on device"), else the message."""
    # pyarrow's own I/O errors carry the errno inside their text: "Error writing bytes to
    # file. Detail: [errno 28] No space left on device".
    found = _ERRNO.search(str(exc))
    if found:
        return os.strerror(int(found.group(1)))
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return one_line(str(exc), 200) or type(exc).__name__


def read_metadata(path: Path) -> dict[str, Any]:
    """What dscall stored in a file's key-value metadata (run id, version, settings, how the
    run ended): one JSON object; {} for a Parquet file dscall did not write."""
    raw = pq.read_metadata(str(path)).metadata or {}
    blob = raw.get(METADATA_KEY.encode())
    if blob is None:
        return {}
    decoded = json.loads(blob)
    return decoded if isinstance(decoded, dict) else {}
