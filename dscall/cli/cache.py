"""`dscall cache stats|clear`: look at and empty the result cache (SPEC §5)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dscall import config
from dscall.cli.app import app, run
from dscall.errors import EXIT_OK, EXIT_SOME_FAILED, UsageError

cache_app = typer.Typer(
    name="cache",
    help="Inspect or empty the result cache (the checkpoint that makes reruns free).",
    no_args_is_help=True,
)
app.add_typer(cache_app, name="cache")

CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Result cache folder (default: $XDG_CACHE_HOME/dscall, else ~/.cache/dscall).",
        show_default=False,
    ),
]


def _human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


@cache_app.command("stats")
def stats(
    cache_dir: CacheDirOption = None,
    namespace: Annotated[
        str | None,
        typer.Option(help="Show only this namespace (default: every namespace)."),
    ] = None,
) -> None:
    """Entries and disk size per namespace."""

    def command() -> int:
        from rich.console import Console
        from rich.table import Table

        from dscall.calls.cache_maintenance import cache_stats
        from dscall.progress import safe_text

        directory = cache_dir or config.default_cache_dir()
        found = cache_stats(directory, namespace)
        console = Console(highlight=False)
        if not found:
            which = f"namespace {namespace!r}" if namespace is not None else "any namespace"
            console.print(f"no cache for {safe_text(which)} under {safe_text(str(directory))}")
            return EXIT_OK
        table = Table(title=f"result cache: {safe_text(str(directory))}", title_justify="left")
        table.add_column("namespace")
        table.add_column("entries", justify="right")
        table.add_column("size", justify="right")
        table.add_column("folder")
        for item in found:
            table.add_row(
                safe_text(item.namespace),
                f"{item.entries:,}",
                _human_bytes(item.bytes),
                safe_text(item.path.name),
            )
        if len(found) > 1:
            table.add_section()
            table.add_row(
                "total",
                f"{sum(i.entries for i in found):,}",
                _human_bytes(sum(i.bytes for i in found)),
                "",
            )
        console.print(table)
        return EXIT_OK

    run(command)


@cache_app.command("clear")
def clear(
    cache_dir: CacheDirOption = None,
    namespace: Annotated[
        str | None,
        typer.Option(help="Remove the entries of this namespace."),
    ] = None,
    all_namespaces: Annotated[
        bool,
        typer.Option("--all", help="Remove the entries of every namespace."),
    ] = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", "-y", help="Do not ask for confirmation (required when not on a terminal)."
        ),
    ] = False,
) -> None:
    """Remove cached answers: the next run pays for them again."""

    def command() -> int:
        from dscall.calls.cache_maintenance import cache_stats, clear_cache
        from dscall.progress import escape_controls

        if (namespace is None) == (not all_namespaces):
            raise UsageError("say what to clear: --namespace NS or --all (not both)")
        directory = cache_dir or config.default_cache_dir()
        where = escape_controls(str(directory))
        which = "every namespace" if all_namespaces else f"namespace {namespace!r}"
        which = escape_controls(which)
        found = cache_stats(directory, namespace)
        entries = sum(item.entries for item in found)
        if not entries:
            typer.echo(f"nothing to clear: no cached entries for {which} under {where}")
            return EXIT_OK
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    "refusing to clear the cache without confirmation: stdin is not a terminal "
                    "(pass --yes)"
                )
            prompt = f"Remove {entries:,} cached entries ({which}) under {where}?"
            if not typer.confirm(prompt, default=False, err=True):
                typer.echo("nothing removed", err=True)
                return EXIT_SOME_FAILED
        removed = clear_cache(directory, namespace)
        typer.echo(f"removed {removed:,} cached entries ({which}) under {where}")
        return EXIT_OK

    run(command)
