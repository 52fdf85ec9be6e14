"""The options ``dscall show`` and ``dscall export`` share: which file, which rows, which
columns (``Annotated`` aliases, as ``cli/options.py`` does for ``process`` and ``chunks``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ROWS = "Rows and columns"

File = Annotated[
    Path,
    typer.Argument(
        metavar="FILE", help="A Parquet file dscall wrote (process, chunks or compare --out)."
    ),
]
Status = Annotated[
    str | None,
    typer.Option(
        "--status",
        metavar="STATUS",
        help="Only rows of this status: ok, error, partial, ... (several: ok,partial).",
        rich_help_panel=ROWS,
    ),
]
Doc = Annotated[
    str | None,
    typer.Option(
        "--doc",
        metavar="PATTERN",
        help="Only rows whose doc_path matches this glob (fnmatch, e.g. 'reports/*.pdf').",
        rich_help_panel=ROWS,
    ),
]
Columns = Annotated[
    str | None,
    typer.Option(
        "--columns",
        metavar="A,B,C",
        help="These columns, in this order (default: doc_path, step or chunk_index, status, "
        "output, error_message - those the file has).",
        rich_help_panel=ROWS,
    ),
]
