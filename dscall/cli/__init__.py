"""Command-line interface. Each command lives in its own module and registers on ``app``;
heavy libraries (pyarrow, aiohttp, pypdf) are imported inside the commands so that
``dscall --help`` stays fast."""

from dscall.cli import cache, chunks, compare, mock_server, process  # noqa: F401  (registers commands)
from dscall.cli.app import app, main

__all__ = ["app", "main"]
