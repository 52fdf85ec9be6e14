"""``--documents-out docs/`` with ``--executor ray``: a Parquet dataset of its own, one part
per shard, beside the chunk dataset of ``--out``.

    docs/
      documents-part-00000-of-00004.parquet   shard 0's document rows (a dscall output)
      ...

Every part has the columns of a local run's ``--documents-out`` file; pyarrow
(``pq.read_table("docs")``), DuckDB and polars (``docs/*.parquet``) read the folder as one
table. A document lies in one shard (shards split by document), so its row is in exactly one
part. The shard's marker (in ``--out``) records its documents part and rows: a rerun skips the
shard only when that part is in place, like its chunk part.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq

from dscall.config import ProcessSettings
from dscall.errors import UsageError
from dscall.executors.dataset import prepare_folder
from dscall.executors.shards import ShardPlan

_DOCUMENTS_PART = re.compile(r"documents-part-(\d{5})-of-(\d{5})\.parquet")


def documents_part_name(rank: int, world_size: int) -> str:
    return f"documents-part-{rank:05d}-of-{world_size:05d}.parquet"


def check_documents_folder(out: Path, documents: Path) -> None:
    """``UsageError`` when ``--documents-out`` and ``--out`` would mix: the same folder, or one
    inside the other (pyarrow reads a folder's subfolders too)."""
    mine, theirs = documents.resolve(), out.resolve()
    if mine == theirs or theirs in mine.parents or mine in theirs.parents:
        raise UsageError(
            f"--documents-out {documents}: with --executor ray it is a folder of its own, "
            f"neither --out {out} nor inside it (nor holding it); readers would mix the tables"
        )


def prepare_documents(
    documents: Path, world_size: int, inputs: tuple[str, ...], force: bool
) -> None:
    """Create the folder; drop the parts of an earlier run with another shard count."""
    prepare_folder(
        documents,
        world_size,
        inputs,
        force,
        option="--documents-out",
        part_pattern=_DOCUMENTS_PART,
    )


def clear_documents(documents: Path, shard: ShardPlan) -> None:
    """Before a shard runs: its old documents part goes (with its marker and chunk part)."""
    (documents / documents_part_name(shard.rank, shard.world_size)).unlink(missing_ok=True)


def with_documents(
    settings: ProcessSettings, folder: Path | None, rank: int, world_size: int
) -> ProcessSettings:
    """A shard's settings writing its documents part into ``folder`` (None: no documents)."""
    output = settings.output
    path = None if folder is None else folder / documents_part_name(rank, world_size)
    return replace(settings, output=replace(output, documents_out=path))


def documents_rows(folder: Path, rank: int, world_size: int) -> int:
    """The rows of shard ``rank``'s documents part as written; 0 when it has none."""
    path = folder / documents_part_name(rank, world_size)
    try:
        return int(pq.read_metadata(path).num_rows)
    except (OSError, ValueError):  # not written (no rows, or the shard stopped)
        return 0
