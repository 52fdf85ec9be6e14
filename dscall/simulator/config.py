"""The behaviour controls of the simulator: one mutable dataclass, defaults = a well-behaved API.

Fields read on every request can be changed while the server runs (``sim.config.fail = {503:
1.0}`` starts an outage, ``{}`` ends it): latency_ms, jitter, tokens_per_second,
max_concurrency, rpm, retry_after_s, fail, fail_retry_after_s, reset_rate, stall_rate,
empty_rate, malformed_rate, insufficient_rate, keepalive_ms, keepalive_interval_ms,
balance_tokens, api_key, seed, stall_max_s, models, strict_models, retry_after_tolerance_s,
schema_violations, reject_unknown_fields.
Read once at start: prefix_cache_entries, max_tracked_bodies. A live change is not validated:
call ``validate()`` after one whose values come from outside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dscall.errors import UsageError

# Models offered by GET /models. The first two are the ones dscall prices; the last two are
# the names DeepSeek's API has long answered to, kept so that older clients work unchanged.
DEFAULT_MODELS: tuple[str, ...] = (
    "deepseek-flash",
    "deepseek-v4-pro",
    "deepseek-chat",
    "deepseek-reasoner",
)
DEFAULT_PORT = 8089
DEFAULT_HOST = "127.0.0.1"
DEFAULT_RETRY_AFTER_S = 1
DEFAULT_KEEPALIVE_INTERVAL_MS = 250.0
# A stalled request is held at most this long, so a client without any timeout does not keep a
# simulator (or a test) alive for ever.
DEFAULT_STALL_MAX_S = 600.0
DEFAULT_PREFIX_CACHE_ENTRIES = 200_000
DEFAULT_MAX_TRACKED_BODIES = 1_000_000
# Clock skew and scheduling noise between the client's timer and ours.
DEFAULT_RETRY_AFTER_TOLERANCE_S = 0.05

RATE_FIELDS = ("reset_rate", "stall_rate", "empty_rate", "malformed_rate", "insufficient_rate")


@dataclass(slots=True)
class SimulatorConfig:
    """How the simulated DeepSeek API behaves. Rates are probabilities per request, in [0, 1],
    and together (with the ``fail`` rates) at most 1: each request draws one fault at most."""

    latency_ms: float = 0.0  # base time to first byte
    jitter: float = 0.0  # sigma of a mean-preserving log-normal factor on the latency
    tokens_per_second: float = 0.0  # output generation rate; 0 = instant
    max_concurrency: int | None = None  # admitted requests in flight beyond this get 429
    rpm: int | None = None  # admitted requests per rolling minute beyond this get 429
    retry_after_s: int = DEFAULT_RETRY_AFTER_S  # Retry-After on 429s
    fail: dict[int, float] = field(default_factory=dict)  # HTTP status -> probability
    fail_retry_after_s: int | None = None  # Retry-After on injected 503s, when set
    reset_rate: float = 0.0  # connection dropped after the headers and part of the body
    stall_rate: float = 0.0  # no answer at all until the client gives up
    empty_rate: float = 0.0  # 200 with a whitespace-only body
    malformed_rate: float = 0.0  # 200 with broken JSON
    insufficient_rate: float = 0.0  # finish_reason insufficient_system_resource
    # Share of first answers to a schema (JSON mode) that break it: a required field missing,
    # a wrong type, or prose around the JSON. Drawn apart from the faults above (an answer can
    # be both reset and broken), so it is not part of their sum.
    schema_violations: float = 0.0
    keepalive_ms: float = 0.0  # blank lines (`: keep-alive` when streaming) before the body
    keepalive_interval_ms: float = DEFAULT_KEEPALIVE_INTERVAL_MS
    balance_tokens: int | None = None  # 402 once this many tokens have been billed
    api_key: str | None = None  # None: any non-empty Bearer key is accepted
    seed: int = 0
    stall_max_s: float = DEFAULT_STALL_MAX_S
    models: tuple[str, ...] = DEFAULT_MODELS
    strict_models: bool = False  # True: an unknown model gets 400 "Model Not Exist"
    # True: a chat request with a field OpenAI's API does not define (``thinking``) gets 400,
    # as from OpenAI or a LiteLLM proxy: a generic endpoint, not DeepSeek.
    reject_unknown_fields: bool = False
    retry_after_tolerance_s: float = DEFAULT_RETRY_AFTER_TOLERANCE_S
    prefix_cache_entries: int = DEFAULT_PREFIX_CACHE_ENTRIES
    max_tracked_bodies: int = DEFAULT_MAX_TRACKED_BODIES
    # Tests: keep the parsed JSON of the first N request bodies (``Simulator.requests``).
    keep_requests: int = 0

    def validate(self) -> SimulatorConfig:
        """Raise ``UsageError`` for a value the simulator cannot honour; return self."""
        _non_negative("latency_ms", self.latency_ms)
        _non_negative("jitter", self.jitter)
        _non_negative("tokens_per_second", self.tokens_per_second)
        _non_negative("keepalive_ms", self.keepalive_ms)
        _non_negative("--stall-max-s", self.stall_max_s)
        _non_negative("retry_after_tolerance_s", self.retry_after_tolerance_s)
        if not self.keepalive_interval_ms > 0:
            raise UsageError("--keepalive-interval-ms must be > 0")
        for name in ("max_concurrency", "rpm", "balance_tokens", "retry_after_s"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise UsageError(f"{_flag(name)} must be >= 0, got {value}")
        if self.fail_retry_after_s is not None and self.fail_retry_after_s < 0:
            raise UsageError(f"--fail-retry-after must be >= 0, got {self.fail_retry_after_s}")
        if self.prefix_cache_entries < 0 or self.max_tracked_bodies < 0:
            raise UsageError("prefix_cache_entries and max_tracked_bodies must be >= 0")
        if self.api_key is not None and not self.api_key:
            raise UsageError("--api-key must be non-empty (or None to accept any key)")
        total = 0.0
        for status, rate in self.fail.items():
            if not 400 <= status <= 599:
                raise UsageError(f"--fail status must be a 4xx or 5xx code, got {status}")
            total += _rate(f"--fail {status}", rate)
        for name in RATE_FIELDS:
            total += _rate(name, getattr(self, name))
        _rate("schema_violations", self.schema_violations)
        if total > 1.0 + 1e-9:
            raise UsageError(f"fault rates add up to {total:g}; they must add up to at most 1")
        return self


def parse_fail(spec: str) -> tuple[int, float]:
    """``"503=0.05"`` -> ``(503, 0.05)``; a ``UsageError`` names what is wrong."""
    status_text, sep, rate_text = spec.partition("=")
    try:
        if not sep:
            raise ValueError("missing '='")
        status, rate = int(status_text.strip()), float(rate_text.strip())
    except ValueError as exc:
        raise UsageError(f"--fail expects STATUS=P such as 503=0.05, got {spec!r}") from exc
    if not 400 <= status <= 599:
        raise UsageError(f"--fail status must be a 4xx or 5xx code, got {status}")
    return status, _rate(f"--fail {status}", rate)


def _flag(name: str) -> str:
    """Messages name the CLI flag (``reset_rate`` -> ``--reset-rate``): both kinds of user
    recognise it."""
    if name.startswith("--"):
        return name
    return "--" + name.removesuffix("_s").replace("_", "-")


def _rate(name: str, value: float) -> float:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise UsageError(f"{_flag(name)} must be a probability in [0, 1], got {value}")
    return value


def _non_negative(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise UsageError(f"{_flag(name)} must be a finite number >= 0, got {value}")
