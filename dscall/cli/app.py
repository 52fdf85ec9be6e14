"""The Typer application object and the one place errors become messages and exit codes."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer

from dscall import __version__
from dscall.cli.help import HelpGroup
from dscall.errors import EXIT_SOME_FAILED, EXIT_STOPPED, DscallError, one_line

app = typer.Typer(
    name="dscall",
    help=(
        "Batch document processor for the DeepSeek API: PDF, Word and text files in, "
        "a Parquet table of model outputs out. Nothing lost, nothing paid for twice."
    ),
    no_args_is_help=True,
    cls=HelpGroup,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"dscall {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_version_callback,
        is_eager=True,
        help="Print the version.",
    ),
) -> None:
    """Batch document processor for the DeepSeek API."""


def fail(message: str, code: int) -> NoReturn:
    """Print a one-line red error on stderr and exit with ``code``."""
    from rich.console import Console
    from rich.text import Text

    from dscall.progress import escape_controls

    # The message is text, not markup: it may name a file whose name holds "[" or escape
    # sequences ("[redacted]" too would vanish as an unknown style).
    shown = Text.assemble(("error:", "bold red"), " ", escape_controls(one_line(message, 2000)))
    Console(stderr=True, highlight=False, soft_wrap=True).print(shown)
    raise typer.Exit(code)


@contextmanager
def errors_to_exit_codes() -> Iterator[None]:
    """Turn a DscallError into its one-line message and exit code; never show a traceback
    (set DSCALL_DEBUG=1 to see one for an unexpected error)."""
    try:
        yield
    except typer.Exit:
        raise
    except DscallError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", EXIT_STOPPED)
    except Exception as exc:  # a bug of ours: one line, unless debugging
        if os.environ.get("DSCALL_DEBUG"):
            raise
        fail(
            f"internal error ({type(exc).__name__}): {exc} (DSCALL_DEBUG=1 shows more)",
            EXIT_SOME_FAILED,
        )


def run(command: Callable[[], int]) -> None:
    """Run a command body under ``errors_to_exit_codes`` and exit with what it returns."""
    with errors_to_exit_codes():
        code = command()
    raise typer.Exit(code)


_standalone = False


def standalone() -> bool:
    """Whether this process is the dscall command itself, not a test driving the app
    in-process: then nothing needs restoring once a command is done, the process exits."""
    return _standalone


def main() -> None:
    """Console-script entry point."""
    global _standalone
    _standalone = True
    try:
        app()
    except BrokenPipeError:  # `dscall ... | head`: not an error worth a traceback
        sys.stderr.close()
        sys.exit(EXIT_SOME_FAILED)
