"""The folder ``--out results/`` becomes with ``--executor ray``: a Parquet dataset.

    results/
      part-00000-of-00004.parquet   shard 0's rows (a dscall output: its metadata as usual)
      ...
      _SHARD-00000.json             shard 0 finished: fingerprint, inputs digest, rows, exit code
      _SUMMARY.json                 the whole run (written by the driver at the end)

``--documents-out docs/`` is a second dataset of the same kind, in its own folder (never inside
``results/``: a reader of one folder would mix the two tables in): one
``documents-part-00000-of-00004.parquet`` per shard, with the columns of a local run's
``--documents-out`` file (``executors.documents``). Each shard's marker in ``results/`` records
its documents part and rows too.

pyarrow (``pq.read_table("results")``) skips names starting with ``_`` or ``.`` (the markers,
the writers' temporary files and locks); DuckDB and polars read ``results/*.parquet``. Every
part has the columns of a local run's file. Rows: by shard, then input order within a shard.

Every file is written under a temporary name and renamed into place. Nothing here removes a
file that dscall did not write: a ``.parquet`` file in the folder that is not a dscall output
is a usage error (it would be read as part of the dataset).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from dscall.errors import UsageError
from dscall.executors.shards import ShardPlan, marker_name, part_name
from dscall.output.safety import OutputPath, check_outputs
from dscall.output.summary_file import write_summary

SUMMARY_NAME = "_SUMMARY.json"
_PART = re.compile(r"part-(\d{5})-of-(\d{5})\.parquet")
_MARKER = re.compile(r"_SHARD-(\d{5})\.json")


def prepare_folder(
    folder: Path,
    world_size: int,
    inputs: tuple[str, ...],
    force: bool,
    *,
    option: str = "--out",
    part_pattern: re.Pattern[str] = _PART,
) -> None:
    """Create ``folder``; drop parts and markers of an earlier run with another shard count
    (their documents are now in other shards). ``UsageError`` for what must not be written.
    ``option`` and ``part_pattern``: the folder's option and its parts' names (``--out``'s by
    default; ``executors.documents`` passes ``--documents-out``'s)."""
    if folder.suffix.lower() == ".parquet" or (folder.exists() and not folder.is_dir()):
        raise UsageError(
            f"{option} {folder}: --executor ray writes a Parquet dataset, one part per shard; "
            "name a folder (results/), not a file"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise UsageError(f"{option} {folder}: cannot create or list the folder: {exc}") from exc
    for name in names:
        path = folder / name
        part = part_pattern.fullmatch(name)
        if part is not None:
            check_outputs([OutputPath(option, path, "parquet")], inputs, force)
            if int(part.group(2)) != world_size or int(part.group(1)) >= world_size:
                path.unlink(missing_ok=True)
        elif name.lower().endswith(".parquet") and not name.startswith((".", "_")):
            raise UsageError(
                f"{option} {folder} holds {name}, which is not a part of this dataset: readers "
                "of the folder would mix it in; choose another folder"
            )
        else:
            marker = _MARKER.fullmatch(name)
            if marker is not None and int(marker.group(1)) >= world_size:
                path.unlink(missing_ok=True)


def read_marker(folder: Path, rank: int) -> dict[str, Any] | None:
    """Shard ``rank``'s completion marker, or None (absent or unreadable)."""
    try:
        value = json.loads((folder / marker_name(rank)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def is_done(
    folder: Path, shard: ShardPlan, fingerprint: str, documents: Path | None = None
) -> dict[str, Any] | None:
    """The marker of a shard finished with these settings over these documents, all rows ok
    (exit 0), its part in place; None when the shard must run (again). A shard that ended
    with failed rows runs again: only its failed calls are sent, the rest come from the cache.
    ``documents``: the ``--documents-out`` folder, whose part the shard must have written too
    (a shard finished without ``--documents-out`` runs again, from the cache)."""
    marker = read_marker(folder, shard.rank)
    if marker is None:
        return None
    same = (
        marker.get("fingerprint") == fingerprint
        and marker.get("inputs_digest") == shard.inputs_digest
        and marker.get("world_size") == shard.world_size
        and marker.get("exit_code") == 0
    )
    part = folder / part_name(shard.rank, shard.world_size)
    if not same or (marker.get("rows", 0) and not part.exists()):
        return None
    if documents is not None:
        if "documents_rows" not in marker:  # it ran without --documents-out
            return None
        name = marker.get("documents_part")
        if marker["documents_rows"] and not (isinstance(name, str) and (documents / name).exists()):
            return None
    return marker


def clear_shard(folder: Path, shard: ShardPlan) -> None:
    """Before a shard runs: its old marker and part go, so a shard that then fails for good
    leaves nothing that claims to be its rows."""
    (folder / marker_name(shard.rank)).unlink(missing_ok=True)
    (folder / part_name(shard.rank, shard.world_size)).unlink(missing_ok=True)


def write_marker(folder: Path, rank: int, marker: dict[str, Any]) -> None:
    path = folder / marker_name(rank)
    temp = folder / f".{path.name}.{os.getpid()}.tmp"
    temp.write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temp, path)


def write_run_summary(folder: Path, summary: dict[str, Any]) -> None:
    write_summary(folder / SUMMARY_NAME, summary)
