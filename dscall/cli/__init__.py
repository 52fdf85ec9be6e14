"""Command-line interface. Each command lives in its own module and registers on ``app``;
heavy libraries (pyarrow, aiohttp, pypdf) are imported inside the commands so that
``dscall --help`` stays fast."""

from dscall.cli import (  # noqa: F401  (registers commands)
    cache,
    chunks,
    compare,
    config_cmd,
    export,
    mock_server,
    process,
    show,
)
from dscall.cli.app import app, main

__all__ = ["app", "main"]
