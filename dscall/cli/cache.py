"""`dscall cache stats|clear`: look at and empty the result cache (SPEC §5), and the stores
beside it: the manifest of incremental reruns and the shared Redis tier
(``calls/store_maintenance``).

Where the cache is comes from ``--cache-dir`` and ``--cache-url``, else from the settings files
and ``DSCALL_CACHE_DIR`` / ``DSCALL_CACHE_URL`` as for ``process`` (``cli/config_params``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dscall import config
from dscall.cli.app import app, run
from dscall.errors import EXIT_OK, EXIT_SOME_FAILED, UsageError
from dscall.secret_urls import public_url

if TYPE_CHECKING:
    from dscall.calls.store_maintenance import StoreStats

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
        metavar="DIR",
        help="Result cache folder (default: $XDG_CACHE_HOME/dscall, else ~/.cache/dscall).",
        show_default=False,
    ),
]
CacheUrlOption = Annotated[
    str | None,
    typer.Option(
        "--cache-url",
        envvar="DSCALL_CACHE_URL",
        metavar="URL",
        help="The shared tier, redis://HOST:PORT/DB: its dscall keys too (needs dscall[redis]).",
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
    cache_url: CacheUrlOption = None,
    namespace: Annotated[
        str | None,
        typer.Option(help="Show only this namespace (default: every namespace)."),
    ] = None,
) -> None:
    """Entries and disk size per namespace, and of the manifest and of Redis."""

    def command() -> int:
        from rich.console import Console
        from rich.table import Table

        from dscall.calls.cache_maintenance import cache_stats
        from dscall.progress import safe_text

        directory = cache_dir or config.default_cache_dir()
        found = cache_stats(directory, namespace)
        # Shared by every namespace (calls.store_maintenance): shown only when no namespace
        # is asked for.
        others = [] if namespace is not None else _other_stats(directory, cache_url)
        console = Console(highlight=False)
        if not found and not others:
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
        if others:
            table.add_section()
        for other in others:
            table.add_row(
                f"({other.name})",
                f"{other.entries:,}",
                _human_bytes(other.bytes),
                safe_text(other.where),
            )
        console.print(table)
        return EXIT_OK

    run(command)


def _other_stats(directory: Path, cache_url: str | None) -> list[StoreStats]:
    from dscall.calls import store_maintenance as stores

    found = [stores.manifest_stats(directory)]
    found += stores.redis_stats(cache_url) if cache_url else []
    return [item for item in found if item is not None]


@cache_app.command("clear")
def clear(
    cache_dir: CacheDirOption = None,
    cache_url: CacheUrlOption = None,
    namespace: Annotated[
        str | None,
        typer.Option(help="Remove the entries of this namespace."),
    ] = None,
    all_namespaces: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Remove the entries of every namespace, the manifest of incremental reruns, "
            "and with --cache-url dscall's answers in Redis (no other key).",
        ),
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
        from dscall.calls import store_maintenance as stores
        from dscall.calls.cache_maintenance import cache_stats, clear_cache
        from dscall.progress import escape_controls

        if (namespace is None) == (not all_namespaces):
            raise UsageError("say what to clear: --namespace NS or --all (not both)")
        directory = cache_dir or config.default_cache_dir()
        where = escape_controls(str(directory))
        which = "every namespace" if all_namespaces else f"namespace {namespace!r}"
        which = escape_controls(which)
        entries = sum(item.entries for item in cache_stats(directory, namespace))
        # The manifest and Redis serve every namespace alike (calls.store_maintenance): only --all.
        manifest = stores.manifest_stats(directory) if all_namespaces else None
        shared = 0
        if cache_url and all_namespaces:
            shared = stores.redis_stats(cache_url)[0].entries
        elif cache_url:
            typer.echo(
                "note: Redis keeps its answers: they do not say their namespace "
                "(cache clear --all removes them)",
                err=True,
            )
        url = escape_controls(public_url(cache_url)) if cache_url else ""
        also = _also(manifest.entries if manifest is not None else None, shared, url)
        if not entries and not also:
            typer.echo(f"nothing to clear: no cached entries for {which} under {where}")
            return EXIT_OK
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    "refusing to clear the cache without confirmation: stdin is not a terminal "
                    "(pass --yes)"
                )
            prompt = f"Remove {entries:,} cached entries ({which}) under {where}{also}?"
            if not typer.confirm(prompt, default=False, err=True):
                typer.echo("nothing removed", err=True)
                return EXIT_SOME_FAILED
        removed = clear_cache(directory, namespace)
        documents = stores.clear_manifest(directory) if manifest is not None else None
        shared = stores.clear_redis(cache_url) if cache_url and all_namespaces else 0
        done = _also(documents, shared, url)
        typer.echo(f"removed {removed:,} cached entries ({which}) under {where}{done}")
        return EXIT_OK

    run(command)


def _also(manifest: int | None, shared: int, url: str) -> str:
    """What a clear removes besides the namespaces' entries, as the end of its sentence."""
    parts = [] if manifest is None else [f"the manifest ({manifest:,} documents)"]
    parts += [f"{shared:,} answers in {url}"] if shared else []
    return "".join(f", {part}" for part in parts)
