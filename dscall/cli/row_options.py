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


def arrow_without_numpy() -> None:
    """Import pyarrow without numpy when this process is the ``dscall`` command itself.

    pyarrow needs numpy only to convert to and from numpy arrays (its ``import numpy`` is in a
    ``try``: without numpy it runs as if numpy were not installed), and ``show`` and
    ``export`` read rows as Python values, never as arrays. numpy costs 70 ms of a 0.35 s
    start-up (issue 13: under 0.3 s). numpy stays blocked for the rest of the process, so that
    anything asking for it later gets an ImportError rather than a pyarrow whose numpy
    support was never initialised. Never in a test driving the app in-process: that process
    goes on to other tests, which need pyarrow with numpy.
    """
    import sys

    from dscall.cli.app import standalone

    if not standalone() or "pyarrow" in sys.modules or "numpy" in sys.modules:
        return
    sys.modules["numpy"] = None  # type: ignore[assignment]  # import numpy: ImportError
    import pyarrow.parquet  # noqa: F401
