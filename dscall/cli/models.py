"""`dscall models`: each endpoint's models and their prices (SPEC §13), from the shell.

Asks every endpoint (``--base-url``, or several with ``--endpoint``) for ``GET /models`` and
prints one line per model with the price dscall would charge it at (per million tokens, at peak;
off-peak where the price table has off-peak hours). A model without a price says so: its cost
would be unknown, never a guess. An endpoint that cannot be reached is one line in the table,
and the exit code is 1; the others are still listed.
"""

from __future__ import annotations

from dscall import config
from dscall.cli import call_options
from dscall.cli.app import app, run


@app.command()
def models(
    base_url: call_options.BaseUrl = config.DEFAULT_BASE_URL,
    endpoint: call_options.Endpoints = None,
    provider: call_options.Provider = "auto",
    api_key: call_options.ApiKey = None,
    mock: call_options.Mock = False,
    prices: call_options.Prices = None,
    allow_insecure_http: call_options.AllowInsecureHttp = False,
) -> None:
    """List each endpoint's models with the prices dscall charges them at.

    Exit codes: 0 listed; 1 an endpoint could not be asked; 2 usage error.
    """

    def body() -> int:
        import asyncio
        import sys

        from dscall.calls.model_list import list_models, render_models

        call = config.CallSettings(
            base_url=base_url,
            provider=provider,
            allow_insecure_http=allow_insecure_http,
            endpoints=call_options.endpoint_settings(endpoint, base_url),
        )
        listed = asyncio.run(list_models(call, api_key, mock, prices))
        render_models(listed, sys.stdout)
        return 1 if any(entry.error for entry in listed) else 0

    run(body)
