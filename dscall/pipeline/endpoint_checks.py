"""What a run with several endpoints checks before paying, and how each endpoint's calls are
priced.

Pre-flight, per endpoint: a key the endpoint rejects (401) or no balance takes that endpoint
out of the run from the start (one line says so); an endpoint that cannot be reached is only
warned about (its breaker decides once calls begin: it may be back by then); a model the
endpoint does not offer is a usage error, as with one endpoint, because it is a mistake in the
configuration. Every endpoint unusable: the run stops before the first call (exit 3). A run
with one endpoint that cannot be reached is a usage error, as it always was.

Prices: an endpoint's own ``prices`` (per million tokens at peak; DeepSeek's off-peak factor
applies only to a ``deepseek`` endpoint), or the price table's for the model name it is sent
(``model``), or the run's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dscall.calls.backend import Backend
from dscall.calls.endpoint_plan import RunEndpoints
from dscall.calls.failover import ENDPOINT_ERRORS, disable_reason
from dscall.config import ProcessSettings
from dscall.errors import NoEndpointLeft, TransportError, UsageError
from dscall.pricing import ModelPrice, PriceTable

Notify = Callable[[str], None]


async def preflight_several(
    planned: RunEndpoints,
    backends: Sequence[Backend],
    settings: ProcessSettings,
    notify: Notify,
    models: tuple[str, ...] | None = None,
) -> dict[str, str]:
    """Ask every endpoint; the ones to disable from the start, with why."""
    disabled: dict[str, str] = {}
    run_model = settings.prompt.model
    for spec, backend in zip(planned.endpoints, backends, strict=True):
        try:
            info = await backend.endpoint_info()
        except ENDPOINT_ERRORS as exc:
            disabled[spec.name] = disable_reason(exc, spec.key_env)
            continue
        except TransportError as exc:
            if not planned.several:  # nothing to go on with: a configuration problem, as ever
                raise UsageError(
                    f"endpoint {spec.name}: {exc.message} (pre-flight check; check its "
                    "base_url and the network, or skip the check with --no-preflight)"
                ) from exc
            notify(
                f"warning: endpoint {spec.name}: {exc.message} (pre-flight check); it takes "
                "calls once it answers"
            )
            continue
        for model in models or (run_model,):
            name = spec.model if spec.model is not None and model == run_model else model
            if info.models is not None and name not in info.models:
                offered = ", ".join(info.models) or "none"
                raise UsageError(
                    f"endpoint {spec.name}: model {name!r} is not offered by {backend.host} "
                    f"(offered: {offered}); set the endpoint's model"
                )
        if info.balance_available is False:
            disabled[spec.name] = "it reports no available balance"
        elif info.balance_usd is not None and info.balance_usd <= 0:
            notify(f"warning: endpoint {spec.name} reports a balance of ${info.balance_usd:.2f}")
    if len(disabled) == len(planned.endpoints):
        listed = "; ".join(f"{name}: {why}" for name, why in disabled.items())
        raise NoEndpointLeft(f"no endpoint can take calls ({listed})")
    return disabled


def endpoint_prices(
    planned: RunEndpoints, prices: PriceTable, run_model: str
) -> dict[str, tuple[PriceTable, str | None]]:
    """The endpoints priced otherwise than the run's table for the run's model: name ->
    (table, the name the run's model is priced as there; None: as asked)."""
    special: dict[str, tuple[PriceTable, str | None]] = {}
    for spec in planned.endpoints:
        if spec.prices is not None:
            hit, miss, output = spec.prices
            peak = prices.peak_hours if spec.provider.name == "deepseek" else None
            own = PriceTable({run_model: ModelPrice(hit, miss, output)}, peak)
            special[spec.name] = (own, None)
        elif spec.model is not None and spec.model != run_model:
            special[spec.name] = (prices, spec.model)
    return special


def dearest_prices(planned: RunEndpoints, prices: PriceTable, run_model: str) -> PriceTable:
    """The price table ``--budget-usd`` reserves with: the run's, where an endpoint's own
    prices are dearer than its price for the run's model, those (a reservation must cover
    whichever endpoint a call ends up on)."""
    own = [spec.prices for spec in planned.endpoints if spec.prices is not None]
    if not own:
        return prices
    base = prices.models.get(run_model)
    rates = [(base.input_cache_hit, base.input_cache_miss, base.output)] if base else []
    hit, miss, output = (max(column) for column in zip(*(rates + own), strict=True))
    models = dict(prices.models)
    factor = base.off_peak_factor if base is not None else None
    models[run_model] = ModelPrice(hit, miss, output, factor)
    return PriceTable(models, prices.peak_hours, prices.checked, prices.source)
