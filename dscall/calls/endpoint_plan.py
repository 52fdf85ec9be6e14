"""The endpoints of a run, resolved before anything is opened: names, profiles, answer
sources, shares of the limits, keys. Pure (no network), so a dry run and the cache keys of
every request can be worked out from settings alone.

A run without ``--endpoint`` or ``[[endpoints]]`` has one endpoint, ``--base-url`` with
``--provider``, named after its host (``simulator`` for --mock): exactly the run it always was.

Limits: ``--max-concurrency`` and ``--concurrency`` are the run's totals, shared among the
primaries by weight (an endpoint's own ``max_concurrency`` wins); a fallback, which only takes
calls while no primary can, may use the whole run's limit. ``rpm``/``tpm`` are an endpoint's
own, or the run's ``--rpm``/``--tpm`` for a run with one endpoint.

Answer sources (SPEC §5): an endpoint's cache group, by default its normalised base URL, so two
endpoints share answers only when they name one ``cache_group``. The first endpoint's source is
the one every request's ``request_hash`` is made with; the others' keys are made alongside
(``CallRequest.other_hashes``), in ``sources`` order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from dscall.calls.providers import Provider, by_name, is_loopback
from dscall.calls.request import answer_source, normalise_base_url
from dscall.config import API_KEY_ENV, DEFAULT_MOCK_KEY, CallSettings, EndpointPriority
from dscall.errors import UsageError

# A key for a loopback endpoint whose variable is unset (a local vLLM or `dscall mock-server`
# usually wants none); never sent anywhere else.
LOOPBACK_PLACEHOLDER_KEY = "sk-none"


@dataclass(frozen=True, slots=True)
class EndpointPlan:
    name: str
    base_url: str
    provider: Provider
    key_env: str
    model: str | None
    weight: float
    priority: EndpointPriority
    concurrency: int  # where its adaptive limit starts
    max_concurrency: int
    rpm: int | None
    tpm: int | None
    prices: tuple[float, float, float] | None
    source_index: int  # its answer source in RunEndpoints.sources


@dataclass(frozen=True, slots=True)
class RunEndpoints:
    endpoints: tuple[EndpointPlan, ...]
    sources: tuple[str, ...]  # distinct answer sources, the first endpoint's first

    @property
    def provider(self) -> Provider:
        """The profile the run's request bodies are built for (the first endpoint's)."""
        return self.endpoints[0].provider

    @property
    def several(self) -> bool:
        return len(self.endpoints) > 1


def plan_endpoints(call: CallSettings, mock: bool) -> RunEndpoints:
    """The run's endpoints from its settings (see the module docstring)."""
    if not call.endpoints:
        host = urlsplit(call.base_url).hostname or call.base_url
        only = EndpointPlan(
            name="simulator" if mock else host,
            base_url=call.base_url,
            provider=by_name(call.provider, call.base_url, mock),
            key_env=API_KEY_ENV,
            model=None,
            weight=1.0,
            priority="primary",
            concurrency=call.concurrency,
            max_concurrency=call.max_concurrency,
            rpm=call.rpm,
            tpm=call.tpm,
            prices=None,
            source_index=0,
        )
        return RunEndpoints((only,), (answer_source(call, mock),))
    if mock:
        raise UsageError(
            "--mock runs one simulator: with several endpoints, point them at "
            "`dscall mock-server` instances instead"
        )
    primaries = [e for e in call.endpoints if e.priority == "primary"]
    total_weight = sum(e.weight for e in primaries)
    sources: list[str] = []
    planned = []
    for spec in call.endpoints:
        source = (
            f"group:{spec.cache_group}"
            if spec.cache_group is not None
            else normalise_base_url(spec.base_url)
        )
        if source not in sources:
            sources.append(source)
        share = spec.weight / total_weight if spec.priority == "primary" else 1.0
        maximum = spec.max_concurrency or max(1, round(call.max_concurrency * share))
        planned.append(
            EndpointPlan(
                name=spec.name,
                base_url=spec.base_url,
                provider=by_name(spec.provider, spec.base_url, mock=False),
                key_env=spec.api_key_env,
                model=spec.model,
                weight=spec.weight,
                priority=spec.priority,
                concurrency=max(1, min(maximum, round(call.concurrency * share))),
                max_concurrency=maximum,
                rpm=spec.rpm,
                tpm=spec.tpm,
                prices=spec.prices,
                source_index=sources.index(source),
            )
        )
    return RunEndpoints(tuple(planned), tuple(sources))


def endpoint_key(
    plan: EndpointPlan, explicit: str | None, mock: bool, several: bool, configured: bool
) -> str:
    """The API key for ``plan``: its ``api_key_env`` variable; ``--api-key`` (which reads
    DEEPSEEK_API_KEY) serves the endpoints that keep that default variable, every one when the
    run has one. An endpoint given with --endpoint or [[endpoints]] on loopback (a local vLLM,
    ``dscall mock-server``) may go without."""
    if not several or plan.key_env == API_KEY_ENV:
        key = explicit or os.environ.get(plan.key_env, "")
    else:
        key = os.environ.get(plan.key_env, "")
    if key:
        return key
    if mock:
        return DEFAULT_MOCK_KEY
    if configured and is_loopback((urlsplit(plan.base_url).hostname or "").lower()):
        return LOOPBACK_PLACEHOLDER_KEY
    if plan.key_env == API_KEY_ENV:
        raise UsageError(f"no API key: set {API_KEY_ENV} (or pass --mock to use the simulator)")
    raise UsageError(f"endpoint {plan.name}: no API key: set {plan.key_env} (its api_key_env)")
