"""`dscall show FILE`: the rows of a dscall Parquet file, as a table (SPEC §13).

On a terminal a rich table; otherwise (a pipe, a file, CI) plain tab-separated lines with a
header, one row per line: control characters, tabs and newlines in a value are written out
(``\\x0a``), so a line is always a row. Without ``--wide`` a long cell is cut to one screen line
with "…". Only the first ``--limit`` matching rows are read. Exit 0, or 2 for a usage error
(missing file, not a dscall file, unknown column).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dscall.cli import row_options
from dscall.cli.app import app, run


@app.command(no_args_is_help=True)
def show(
    file: row_options.File,
    status: row_options.Status = None,
    doc: row_options.Doc = None,
    columns: row_options.Columns = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            "-n",
            min=0,
            help="Show at most this many rows; 0 shows all.",
            rich_help_panel=row_options.ROWS,
        ),
    ] = 20,
    wide: Annotated[
        bool,
        typer.Option(
            "--wide",
            help="Show long cells whole (default: each cut to one screen line).",
            rich_help_panel=row_options.ROWS,
        ),
    ] = False,
) -> None:
    """Print the rows of a dscall Parquet file as a table (plain tab-separated text when
    standard output is not a terminal).

    Exit codes: 0 shown; 2 usage error (missing file, not a dscall file, unknown column).
    """

    def body() -> int:
        import sys

        row_options.arrow_without_numpy()
        from dscall.output import show as rows
        from dscall.progress import choose_mode

        results = rows.open_results(file)
        names = rows.choose_columns(results.schema_arrow.names, columns)
        where = rows.RowFilter(rows.parse_statuses(status), doc)
        found = list(rows.iter_rows(results, names, where, limit + 1 if limit else 0))
        more = bool(limit) and len(found) > limit
        shown = found[:limit] if limit else found
        if choose_mode(False, sys.stdout) == "rich":
            _print_table(str(file), names, shown, wide, more)
        else:
            _print_plain(names, shown, wide)
        if more:
            sys.stderr.write(f"first {limit} matching rows; --limit 0 shows all\n")
        return 0

    run(body)


def _print_plain(names: list[str], found: list[dict[str, Any]], wide: bool) -> None:
    import shutil
    import sys

    from dscall.output.show import cell_text
    from dscall.progress import escape_controls

    width = max(20, shutil.get_terminal_size().columns)
    lines = ["\t".join(names)]
    for row in found:
        cells = [escape_controls(cell_text(row[name])) for name in names]
        if not wide:
            cells = [cell if len(cell) <= width else cell[: width - 1] + "…" for cell in cells]
        lines.append("\t".join(cells))
    sys.stdout.write("\n".join(lines) + "\n")


def _print_table(
    path: str, names: list[str], found: list[dict[str, Any]], wide: bool, more: bool
) -> None:
    from rich.console import Console
    from rich.table import Table

    from dscall.output.show import cell_text
    from dscall.progress import safe_text

    console = Console(highlight=False)
    title = f"{'first ' if more else ''}{len(found)} rows of {safe_text(path)}"
    view = Table(title=title, show_lines=wide)
    cells = [
        [safe_text(cell_text(row[name]), keep_newlines=wide) for name in names] for row in found
    ]
    if wide:
        for name in names:
            view.add_column(safe_text(name), overflow="fold")
    else:
        natural = [
            max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(names)
        ]
        # Borders and padding take three characters a column, and one more.
        for name, width in zip(
            names, fit_widths(natural, console.width - 3 * len(names) - 1), strict=True
        ):
            view.add_column(safe_text(name), width=width, no_wrap=True, overflow="ellipsis")
    for row in cells:
        view.add_row(*row)
    console.print(view)


def fit_widths(natural: list[int], available: int) -> list[int]:
    """Column widths within ``available``: narrow columns whole, the rest share what is left
    equally (none under 3), so a long output column cannot squeeze doc_path to nothing."""
    widths = list(natural)
    left, open_ = available, sorted(range(len(natural)), key=natural.__getitem__)
    while open_:
        share = max(3, left // len(open_))
        index = open_[0]
        if natural[index] > share:
            for rest in open_:
                widths[rest] = share
            break
        widths[index] = natural[index]
        left -= natural[index]
        open_.pop(0)
    return widths
