"""The call path of a run, opened one way for ``dscall process`` and ``dscall compare``: the
transport, the pre-flight check, the result cache, the audit log, and the engine over them.

Order matters for "fail early, before money is spent": every local resource is opened and the
endpoint is asked for its models and balance before the first paid request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from dscall.calls.backend import Backend, EndpointInfo
from dscall.calls.breaker import CircuitBreaker
from dscall.calls.cache import ResultCache
from dscall.calls.caller import ChunkCaller
from dscall.calls.endpoint_plan import RunEndpoints, endpoint_key, plan_endpoints
from dscall.calls.endpoints import Endpoint, body_rewrite
from dscall.calls.http import HttpBackend
from dscall.calls.limits import CallLimits
from dscall.calls.router import Router
from dscall.config import ProcessSettings
from dscall.errors import InsufficientBalance, RunStopped, TransportError, UsageError
from dscall.output.audit import AuditLog, default_caller
from dscall.pipeline.budget import BalanceWatch, Budget
from dscall.pipeline.endpoint_checks import endpoint_prices, preflight_several
from dscall.pipeline.engine import Engine
from dscall.pipeline.ledger import Ledger
from dscall.plans.base import Plan
from dscall.pricing import PriceTable
from dscall.stats import RunStats

if TYPE_CHECKING:
    from dscall.traces.spans import RunTraces

Notify = Callable[[str], None]


@dataclass(slots=True)
class CallPath:
    endpoints: RunEndpoints
    backends: tuple[HttpBackend, ...]  # one per endpoint, in the run's order
    balance: BalanceWatch | None  # warns when the dispatched prompts pass the balance
    cache: ResultCache | None
    audit: AuditLog | None
    disabled: dict[str, str]  # endpoints the pre-flight check found unusable, and why

    @property
    def backend(self) -> HttpBackend:
        return self.backends[0]


async def open_call_path(
    stack: contextlib.AsyncExitStack,
    settings: ProcessSettings,
    api_key: str | None,
    run_id: str,
    prices: PriceTable,
    notify: Notify,
    models: tuple[str, ...] | None = None,
) -> CallPath:
    """Open the transports (checked before anything else: ``models``, default the run's
    model), the cache and the audit log on ``stack``. ``api_key``: the run's key with one
    endpoint; with several, each endpoint's comes from its own variable."""
    call = settings.call
    planned = plan_endpoints(call, settings.mock)
    backends = []
    for endpoint in planned.endpoints:
        if call.endpoints:
            key = endpoint_key(endpoint, api_key, settings.mock, planned.several, True)
        else:
            key = api_key or ""  # resolved by the run, as it always was
        endpoint_call = replace(call, base_url=endpoint.base_url)
        backends.append(
            await stack.enter_async_context(
                HttpBackend(
                    key,
                    endpoint_call,
                    pool_size=endpoint.max_concurrency,
                    provider=endpoint.provider,
                )
            )
        )
    balance = None
    disabled: dict[str, str] = {}
    if settings.preflight:
        if call.endpoints:  # each endpoint checked with its own model name and profile
            disabled = await preflight_several(planned, backends, settings, notify, models)
        else:
            info = await preflight(backends[0], settings, notify, models)
            if info.balance_usd is not None:
                balance = BalanceWatch(info.balance_usd, prices, notify)
    cache = None
    if settings.cache.enabled:
        cache = await stack.enter_async_context(  # async: the shared tier's client
            ResultCache(
                settings.cache.directory,
                settings.cache.namespace,
                on_error=notify,
                run_id=run_id,
                on_notice=notify,
                cache_url=settings.cache.cache_url,
            )
        )
    audit = None
    if settings.output.audit_log is not None:
        audit = stack.enter_context(
            AuditLog(
                settings.output.audit_log,
                run_id=run_id,
                caller=settings.caller or default_caller(),
                namespace=settings.cache.namespace,
                endpoint_host=backends[0].host,
            )
        )
    return CallPath(planned, tuple(backends), balance, cache, audit, disabled)


def build_engine(
    path: CallPath,
    settings: ProcessSettings,
    stats: RunStats,
    plan: Plan,
    prices: PriceTable,
    budget: Budget | None,
    notify: Notify,
    traces: RunTraces | None = None,
) -> Engine:
    """The engine of ``plan`` over the endpoints (limits, a circuit breaker and a transport
    each) and the caller of ``path``."""
    call = settings.call
    clock = asyncio.get_running_loop().time
    planned = path.endpoints
    endpoints = []
    for spec, backend in zip(planned.endpoints, path.backends, strict=True):
        limits = CallLimits(spec.concurrency, spec.max_concurrency, rpm=spec.rpm, tpm=spec.tpm)
        breaker = CircuitBreaker(clock, max_outage=call.max_outage_s)
        rewrite = body_rewrite(
            settings.prompt.model,
            spec.model,
            spec.provider.sends_thinking,
            planned.provider.sends_thinking,
            settings.prompt.thinking,
        )
        endpoint = Endpoint(
            spec.name,
            backend,
            limits,
            breaker,
            priority=spec.priority,
            weight=spec.weight,
            source_index=spec.source_index,
            rewrite=rewrite,
            key_env=spec.key_env,
        )
        endpoint.figures.concurrency_limit = limits.concurrency.limit
        endpoints.append(endpoint)
        if planned.several:
            stats.endpoints[spec.name] = endpoint.figures
    router = Router(endpoints, notify)
    for endpoint in endpoints:
        reason = path.disabled.get(endpoint.name)
        if reason is not None:
            router.disable(endpoint, reason)
    stats.concurrency_limit = stats.concurrency_min = stats.concurrency_max = router.total_limit()
    engine: Engine | None = None

    def stop_requested() -> RunStopped | None:
        return engine.halts_attempts() if engine is not None else None

    gate = None
    if call.off_peak == "wait":
        from dscall.pipeline.off_peak import OffPeakGate

        gate = OffPeakGate(prices, stats, notify)
    caller = ChunkCaller(
        router,
        stats,
        call.max_retries,
        cache=path.cache,
        refresh=settings.cache.refresh,
        audit=path.audit,
        stop_requested=stop_requested,
        gate=gate,
        traces=traces,
    )
    ledger = Ledger(prices, stats, budget, endpoint_prices(planned, prices, settings.prompt.model))
    engine = Engine(caller, plan, ledger, budget, path.balance, notify, traces)
    return engine


async def preflight(
    backend: Backend,
    settings: ProcessSettings,
    notify: Notify,
    models: tuple[str, ...] | None = None,
) -> EndpointInfo:
    """Ask the endpoint before paying: is it reachable, is the key good, is there money, and
    does it offer ``models`` (default: the run's model)?"""
    try:
        info = await backend.endpoint_info()
    except TransportError as exc:
        # Nothing was sent or written yet: a configuration problem, not a failed run.
        raise UsageError(
            f"{exc.message} (pre-flight check; check --base-url and the network, or skip the "
            "check with --no-preflight)"
        ) from exc
    for model in models or (settings.prompt.model,):
        if info.models is not None and model not in info.models:
            offered = ", ".join(info.models) or "none"
            raise UsageError(
                f"model {model!r} is not offered by {backend.host} (offered: {offered}); "
                "choose one with --model"
            )
    if info.balance_available is False:
        raise InsufficientBalance(f"{backend.host} reports no available balance; top up to go on")
    if info.balance_usd is not None and info.balance_usd <= 0:
        notify(f"warning: {backend.host} reports a balance of ${info.balance_usd:.2f}")
    return info
