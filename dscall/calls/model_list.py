"""What `dscall models` shows: every endpoint's ``GET /models``, priced from the price table."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from dscall.calls.endpoint_plan import endpoint_key, plan_endpoints
from dscall.calls.http import HttpBackend
from dscall.config import CallSettings
from dscall.errors import DscallError, one_line
from dscall.pricing import load_prices


@dataclass(frozen=True, slots=True)
class EndpointModels:
    endpoint: str
    host: str
    models: tuple[tuple[str, str], ...] = ()  # (model, its price as text)
    error: str | None = None


async def list_models(
    call: CallSettings, api_key: str | None, mock: bool, prices_file: Path | None
) -> list[EndpointModels]:
    """Ask each endpoint of ``call`` for its models (``--mock``: an in-process simulator)."""
    prices = load_prices(prices_file)
    async with contextlib.AsyncExitStack() as stack:
        if mock:
            from dscall.simulator import SimulatorConfig, start_simulator

            sim = await stack.enter_async_context(start_simulator(SimulatorConfig()))
            call = replace(call, base_url=sim.base_url)
        planned = plan_endpoints(call, mock)
        listed = []
        for spec in planned.endpoints:
            key = endpoint_key(spec, api_key, mock, planned.several, bool(call.endpoints))
            backend = HttpBackend(
                key,
                replace(call, base_url=spec.base_url),
                pool_size=1,
                provider=spec.provider,
            )
            try:
                async with backend:
                    info = await backend.endpoint_info()
            except DscallError as exc:
                listed.append(EndpointModels(spec.name, backend.host, error=one_line(str(exc))))
                continue
            names = info.models if info.models is not None else ()
            priced = []
            for name in names:
                if spec.prices is not None and name == spec.model:
                    hit, miss, output = spec.prices
                    priced.append(
                        (
                            name,
                            f"${hit:g} hit / ${miss:g} miss / ${output:g} out per M tokens "
                            "(the endpoint's prices)",
                        )
                    )
                    continue
                rates = prices.models.get(name)
                if rates is None:
                    priced.append((name, "no price (cost unknown)"))
                    continue
                text = (
                    f"${rates.input_cache_hit:g} hit / ${rates.input_cache_miss:g} miss / "
                    f"${rates.output:g} out per M tokens"
                )
                factor = rates.off_peak_factor
                if factor is None and prices.peak_hours is not None:
                    factor = prices.peak_hours.off_peak_factor
                if factor is not None and factor != 1.0 and prices.peak_hours is not None:
                    text += f" (off-peak x{factor:g})"
                priced.append((name, text))
            listed.append(EndpointModels(spec.name, backend.host, tuple(priced)))
    return listed


def render_models(listed: list[EndpointModels], out: TextIO) -> None:
    """A rich table on a terminal; tab-separated lines otherwise."""
    rows = []
    for entry in listed:
        if entry.error is not None:
            rows.append((entry.endpoint, "-", f"error: {entry.error}"))
        elif not entry.models:
            rows.append((entry.endpoint, "-", "GET /models lists none"))
        rows += [(entry.endpoint, model, price) for model, price in entry.models]
    if out.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table("endpoint", "model", "price (at peak)")
        for row in rows:
            table.add_row(*row)
        Console(file=out, highlight=False).print(table)
        return
    out.write("endpoint\tmodel\tprice (at peak)\n")
    for row in rows:
        out.write("\t".join(row) + "\n")
