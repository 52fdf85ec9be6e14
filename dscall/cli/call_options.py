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
AllowInsecureHttp = Annotated[
    bool,
    typer.Option(
        # One form only: a pair is wider than 80 columns of --help allow, and an opt-in to
        # sending the key in clear has nothing to turn off.
        "--allow-insecure-http",
        help="Allow sending the key over plain http to a non-local host.",
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
Endpoints = Annotated[
    list[str] | None,
    typer.Option(
        "--endpoint",
        metavar="NAME=URL",
        help="One of several endpoints (repeat it); calls are shared and fail over between "
        "them. Weights, priorities, keys and limits: [[endpoints]] in the config file.",
        show_default=False,
        rich_help_panel=CALLS,
    ),
]
OffPeak = Annotated[
    config.OffPeakChoice,
    typer.Option(
        metavar="WHEN",
        help="any or wait: wait holds new requests during DeepSeek's peak hours (calls in "
        "flight finish) and resumes off-peak.",
        rich_help_panel=CALLS,
    ),
]


def endpoint_settings(
    flags: list[str] | None, base_url: str
) -> tuple[config.EndpointSettings, ...]:
    """The run's endpoints: ``--endpoint`` flags, else the settings file's ``[[endpoints]]``
    tables, else none (one endpoint: ``--base-url``)."""
    from dscall.calls.endpoint_specs import (
        check_endpoints,
        parse_endpoint_flag,
        parse_endpoint_table,
    )
    from dscall.cli.config_file import config_tables

    if flags:
        endpoints = [parse_endpoint_flag(flag) for flag in flags]
    else:
        tables = config_tables("endpoints")
        endpoints = [parse_endpoint_table(t.values, t.origin, t.key_origins) for t in tables]
    if not endpoints:
        return ()
    if base_url.rstrip("/") != config.DEFAULT_BASE_URL.rstrip("/"):
        from dscall.errors import UsageError

        raise UsageError(
            "--base-url (or base-url, DSCALL_BASE_URL) and several endpoints together: give "
            "every endpoint with --endpoint NAME=URL or an [[endpoints]] table"
        )
    return check_endpoints(endpoints)
