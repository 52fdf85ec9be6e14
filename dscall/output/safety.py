"""Which output paths a run may write, checked before anything is read or paid for (SPEC §6).

A run writes up to five files: ``--out`` and ``--documents-out`` (Parquet, renamed into place
at the end), ``--audit-log`` (appended to), ``--summary-json`` and ``--metrics-textfile``
(replaced). None of them may
be an input document, whatever ``--force`` says: the same path, the same file through a
symbolic link, or a path inside an input folder (or matching an input glob) with a document
suffix, which the run would then read as a document. An existing file is replaced or appended
to only if dscall wrote it (a Parquet file carrying dscall's metadata, an audit log of dscall's
JSON lines, a dscall summary), unless ``--force``; an export (``dscall export --out``, CSV or
JSON lines) carries no mark of dscall, so an existing file is replaced only with ``--force``.
Parquet outputs must end in ``.parquet``.

Each refusal is one ``UsageError`` line naming the option, the path and what to do.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dscall.config import SUPPORTED_SUFFIXES
from dscall.errors import UsageError

Kind = Literal["parquet", "audit", "summary", "metrics", "export"]
STDOUT = "-"  # --summary-json - writes to standard output
_PARQUET_MAGIC = b"PAR1"
_SNIFF_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class OutputPath:
    option: str  # "--out", as the user would type it
    path: Path
    kind: Kind


def check_outputs(outputs: Sequence[OutputPath], inputs: Sequence[str], force: bool) -> None:
    """Raise ``UsageError`` for the first output path this run must not write."""
    seen: dict[Path, str] = {}
    for output in outputs:
        if output.kind == "summary" and str(output.path) == STDOUT:
            continue
        if output.kind == "parquet" and output.path.suffix.lower() != ".parquet":
            raise UsageError(
                f"{output.option} {output.path}: the output is Parquet and its name must end "
                "in .parquet"
            )
        resolved = output.path.resolve()
        if resolved in seen:
            raise UsageError(
                f"{seen[resolved]} and {output.option} are the same file ({output.path})"
            )
        seen[resolved] = output.option
        _check_not_input(output, resolved, inputs)
        if output.path.is_dir():
            raise UsageError(f"{output.option} {output.path} is a folder; name a file")
        if not force and output.path.exists() and not _written_by_dscall(output):
            raise UsageError(
                f"{output.option} {output.path} exists and is not a dscall "
                f"{_WHAT[output.kind]}; choose another path or pass --force to replace it"
            )


_WHAT: dict[Kind, str] = {
    "parquet": "output",
    "audit": "audit log (it would be appended to)",
    "summary": "summary",
    "metrics": "metrics textfile",
    "export": "export (an export carries no mark of dscall)",
}


def _check_not_input(output: OutputPath, resolved: Path, inputs: Sequence[str]) -> None:
    readable = resolved.suffix.lower() in SUPPORTED_SUFFIXES
    for argument in inputs:
        if os.path.lexists(argument):
            candidates = [argument]
        else:  # a glob, as discovery expands it
            candidates = glob.glob(argument, recursive=True)
        for candidate in candidates:
            where = Path(candidate)
            if where.is_dir():
                if readable and resolved.is_relative_to(where.resolve()):
                    if resolved.is_file():
                        raise UsageError(
                            f"{output.option} {output.path} is an input document (in the "
                            f"input folder {where}); choose another path"
                        )
                    raise UsageError(
                        f"{output.option} {output.path} is inside the input folder {where} "
                        "and would be read as a document; choose a path outside it"
                    )
            elif _same_file(resolved, where):
                raise UsageError(
                    f"{output.option} {output.path} is an input document ({argument}); "
                    "choose another path"
                )


def _same_file(resolved: Path, candidate: Path) -> bool:
    if resolved == candidate.resolve():
        return True
    try:
        return os.path.samefile(resolved, candidate)  # a hard link, or a bind mount
    except OSError:  # one of them does not exist
        return False


def _written_by_dscall(output: OutputPath) -> bool:
    if output.kind == "export":  # CSV or JSON lines: nothing in it says who wrote it
        return False
    try:
        with open(output.path, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
            if output.kind == "parquet":
                return head[:4] == _PARQUET_MAGIC and _has_dscall_metadata(output.path)
    except OSError:
        return False  # unreadable: certainly not known to be ours
    if output.kind == "audit":
        first = head.split(b"\n", 1)[0]
        return not head or _json_object_with(first, "run_id", "request_hash")
    if output.kind == "metrics":
        return b"dscall_run_exit_code" in head
    return _json_object_with(head, "run_id", "exit_code")


def _has_dscall_metadata(path: Path) -> bool:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dscall.output.parquet import METADATA_KEY  # pyarrow: only when a Parquet file is there

    try:
        metadata = pq.read_metadata(str(path)).metadata or {}
    except (OSError, pa.ArrowException):
        return False
    return METADATA_KEY.encode() in metadata


def _json_object_with(data: bytes, *keys: str) -> bool:
    try:
        value = json.loads(data)
    except ValueError:
        return False
    return isinstance(value, dict) and all(key in value for key in keys)
