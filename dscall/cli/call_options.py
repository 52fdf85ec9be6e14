"""The call and cache options ``dscall process`` and ``dscall compare`` share, declared once
(``Annotated`` aliases, as ``cli/options.py`` does for the input and chunking options), so the
two commands cannot drift apart in wording or limits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dscall import config

CALLS = "Calls and limits"
CACHE = "Cache"

# Typer reads these aliases at run time: each must be an expression it can evaluate.
BaseUrl = Annotated[
    str,
    typer.Option(
        envvar="DSCALL_BASE_URL",
        metavar="URL",
        help="Any OpenAI-compatible endpoint.",
        rich_help_panel=CALLS,
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        metavar="KEY",
        help=f"API key. Prefer the {config.API_KEY_ENV} variable: flags land in shell history.",
        show_default=False,
        rich_help_panel=CALLS,
    ),
]
Provider = Annotated[
    config.ProviderChoice,
    typer.Option(
        envvar="DSCALL_PROVIDER",
        metavar="PROFILE",  # the choices, in the help: a wide metavar would squeeze the panel
        help="Endpoint profile, auto, deepseek or openai: deepseek sends `thinking` and checks "
        "the balance; openai sends "
        "standard fields only. auto: deepseek for *.deepseek.com, --mock and loopback hosts "
        "(the simulator), openai for any other host.",
        rich_help_panel=CALLS,
    ),
]
Mock = Annotated[
    bool,
    typer.Option(
        help="Run against the built-in simulator on a free local port.", rich_help_panel=CALLS
    ),
]
Concurrency = Annotated[
    int,
    typer.Option(
        help="Requests in flight at the start (adapts to 429/503).", min=1, rich_help_panel=CALLS
    ),
]
MaxRetries = Annotated[
    int,
    typer.Option(help="Retries per call for transient failures.", min=0, rich_help_panel=CALLS),
]
BudgetUsd = Annotated[
    float | None,
    typer.Option(
        metavar="USD",
        help="Stop dispatching before the spend would pass this (exit 3).",
        rich_help_panel=CALLS,
    ),
]
Prices = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE", help="JSON file adding or overriding model prices.", rich_help_panel=CALLS
    ),
]
NoPreflight = Annotated[
    bool,
    typer.Option(
        "--no-preflight", help="Skip the GET /models and balance checks.", rich_help_panel=CALLS
    ),
]
CacheDir = Annotated[
    Path | None,
    typer.Option(
        metavar="DIR", help="Result cache folder (default: ~/.cache/dscall).", rich_help_panel=CACHE
    ),
]
Namespace = Annotated[
    str,
    typer.Option(help="Cache namespace; namespaces never share entries.", rich_help_panel=CACHE),
]
CacheUrl = Annotated[
    str | None,
    typer.Option(
        envvar="DSCALL_CACHE_URL",
        metavar="URL",
        help="Shared cache tier behind the local one, redis://HOST:PORT/DB (needs dscall[redis]).",
        show_default=False,
        rich_help_panel=CACHE,
    ),
]
