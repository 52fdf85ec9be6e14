"""`dscall export FILE --format csv|jsonl`: the rows of a dscall Parquet file for tools that do
not read Parquet (SPEC §13).

CSV: a header, then one record per row; nested values (lists, ``--schema`` structs) as JSON
text, null as an empty field, booleans as true/false. JSON lines: one object per row, nested
values as JSON. Timestamps are ISO 8601 in both. ``--out FILE`` is written under a temporary
name and renamed into place; never over the input, nor over an existing file without
``--force`` (output/safety.py). Exit 0, or 2 for a usage error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from dscall.cli import row_options
from dscall.cli.app import app, run

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import TextIO

Format = Literal["csv", "jsonl"]


@app.command(no_args_is_help=True)
def export(
    file: row_options.File,
    fmt: Annotated[
        Format,
        typer.Option("--format", "-f", help="csv, or jsonl (one JSON object per line)."),
    ],
    out: Annotated[
        str,
        typer.Option("--out", "-o", metavar="FILE", help="Where to write; - for standard output."),
    ] = "-",
    status: row_options.Status = None,
    doc: row_options.Doc = None,
    columns: row_options.Columns = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace an existing --out file (never the input)."),
    ] = False,
) -> None:
    """Write the rows of a dscall Parquet file as CSV or JSON lines.

    Exit codes: 0 written; 2 usage error (missing file, not a dscall file, unknown column,
    --out over the input or over an existing file without --force).
    """

    def body() -> int:
        import sys

        row_options.arrow_without_numpy()
        from dscall.output import show as rows

        results = rows.open_results(file)
        names = rows.choose_columns(results.schema_arrow.names, columns)
        where = rows.RowFilter(rows.parse_statuses(status), doc)
        if out == "-":
            _write(sys.stdout, fmt, names, rows.iter_rows(results, names, where))
            sys.stdout.flush()
            return 0
        count = _write_file(Path(out), file, force, fmt, names, results, where)
        from dscall.progress import escape_controls

        sys.stderr.write(f"wrote {count} rows to {escape_controls(out)}\n")
        return 0

    run(body)


def _write(stream: TextIO, format: Format, names: list[str], found: Iterable[Any]) -> int:
    import csv
    import json

    from dscall.output.show import cell_text, json_value

    count = 0
    if format == "csv":
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(names)
        for row in found:
            writer.writerow([cell_text(row[name]) for name in names])
            count += 1
        return count
    for row in found:
        record = {name: json_value(row[name]) for name in names}
        stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def _write_file(
    target: Path,
    source: Path,
    force: bool,
    format: Format,
    names: list[str],
    results: Any,
    where: Any,
) -> int:
    """Write to a temporary name beside ``target`` and rename it into place."""
    import contextlib
    import os

    from dscall.errors import UsageError
    from dscall.output.parquet import temp_path_for
    from dscall.output.safety import OutputPath, check_outputs
    from dscall.output.show import iter_rows

    check_outputs([OutputPath("--out", target, "export")], [str(source)], force)
    temp = temp_path_for(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(temp, "w", encoding="utf-8", newline="") as stream:
            count = _write(stream, format, names, iter_rows(results, names, where))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, target)
    except OSError as exc:
        raise UsageError(f"cannot write --out {target}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
    return count
