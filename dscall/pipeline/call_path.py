"""The call path of a run, opened one way for ``dscall process`` and ``dscall compare``: the
transport, the pre-flight check, the result cache, the audit log, and the engine over them.

Order matters for "fail early, before money is spent": every local resource is opened and the
endpoint is asked for its models and balance before the first paid request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from dscall.calls.backend import Backend, EndpointInfo
from dscall.calls.breaker import CircuitBreaker
from dscall.calls.cache import ResultCache
from dscall.calls.caller import ChunkCaller
from dscall.calls.http import HttpBackend
from dscall.calls.limits import CallLimits
from dscall.calls.providers import Provider
from dscall.config import ProcessSettings
from dscall.errors import InsufficientBalance, RunStopped, TransportError, UsageError
from dscall.output.audit import AuditLog, default_caller
from dscall.pipeline.budget import BalanceWatch, Budget
from dscall.pipeline.engine import Engine
from dscall.pipeline.ledger import Ledger
from dscall.plans.base import Plan
from dscall.pricing import PriceTable
from dscall.stats import RunStats

Notify = Callable[[str], None]


@dataclass(slots=True)
class CallPath:
    backend: HttpBackend
    balance: BalanceWatch | None  # warns when the dispatched prompts pass the balance
    cache: ResultCache | None
    audit: AuditLog | None


async def open_call_path(
    stack: contextlib.AsyncExitStack,
    settings: ProcessSettings,
    api_key: str,
    run_id: str,
    prices: PriceTable,
    provider: Provider,
    notify: Notify,
    models: tuple[str, ...] | None = None,
) -> CallPath:
    """Open the transport (checked before anything else: ``models``, default the run's
    model), the cache and the audit log on ``stack``."""
    call = settings.call
    backend = await stack.enter_async_context(
        HttpBackend(api_key, call, pool_size=call.max_concurrency, provider=provider)
    )
    balance = None
    if settings.preflight:
        info = await preflight(backend, settings, notify, models)
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
                endpoint_host=backend.host,
            )
        )
    return CallPath(backend, balance, cache, audit)


def build_engine(
    path: CallPath,
    settings: ProcessSettings,
    stats: RunStats,
    plan: Plan,
    prices: PriceTable,
    budget: Budget | None,
    notify: Notify,
) -> Engine:
    """The engine of ``plan`` over limits, a circuit breaker and the caller of ``path``."""
    call = settings.call
    limits = CallLimits(call.concurrency, call.max_concurrency, rpm=call.rpm, tpm=call.tpm)
    stats.concurrency_limit = stats.concurrency_min = stats.concurrency_max = (
        limits.concurrency.limit
    )
    breaker = CircuitBreaker(asyncio.get_running_loop().time, max_outage=call.max_outage_s)
    engine: Engine | None = None

    def stop_requested() -> RunStopped | None:
        return engine.halts_attempts() if engine is not None else None

    caller = ChunkCaller(
        path.backend,
        limits,
        breaker,
        stats,
        call.max_retries,
        cache=path.cache,
        refresh=settings.cache.refresh,
        audit=path.audit,
        stop_requested=stop_requested,
    )
    ledger = Ledger(prices, stats, budget)
    engine = Engine(caller, plan, ledger, budget, path.balance, notify)
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
