"""Which fault a request gets, how long it waits, and the admission limits (concurrency, rpm).

Faults are drawn from a hash of (seed, request body, attempt number) rather than from one
random stream in arrival order. The effect is the same as a seeded ``random.Random`` for a
sequential client, and better for a concurrent one: the n-th attempt at a given chunk gets the
same fault on every run with the same seed, whatever order the requests arrived in, so a failing
run can be replayed exactly.
"""

from __future__ import annotations

import math
from collections import deque
from statistics import NormalDist

from dscall.simulator.config import SimulatorConfig

# Fault kinds other than an HTTP status; a status fault is the int itself.
RESET = "reset"
STALL = "stall"
EMPTY = "empty"
MALFORMED = "malformed"
INSUFFICIENT = "insufficient"

Fault = int | str | None

_SCALE = float(1 << 64)
_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_NORMAL = NormalDist()
RPM_WINDOW_S = 60.0


def draws(seed: int, digest: bytes, attempt: int) -> tuple[float, float]:
    """Two independent uniforms in [0, 1) for one attempt (fault, then latency jitter): the
    body's sha256 mixed with seed and attempt through SplitMix64's finaliser, which is a
    fraction of the cost of another cryptographic hash and plenty for fault draws."""
    state = int.from_bytes(digest[:8], "little") ^ (seed * _GOLDEN) ^ (attempt * _MIX2)
    first = _mix(state & _MASK)
    second = _mix((state + _GOLDEN) & _MASK)
    return first / _SCALE, second / _SCALE


def schema_draws(seed: int, digest: bytes) -> tuple[float, float]:
    """Two uniforms in [0, 1) for a schema violation (whether, then which), from the body's
    digest bytes the fault draw does not read: so the schema violation rate leaves every
    other fault where it was. Per body, not per attempt: a violation belongs to an answer, and
    a transport retry of the same body gets the same answer."""
    state = int.from_bytes(digest[8:16], "little") ^ (seed * _GOLDEN)
    first = _mix(state & _MASK)
    second = _mix((state + _GOLDEN) & _MASK)
    return first / _SCALE, second / _SCALE


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK
    return z ^ (z >> 31)


def choose_fault(config: SimulatorConfig, draw: float) -> Fault:
    """The fault for a uniform ``draw``: the rates are laid end to end on [0, 1), so each
    request gets at most one fault and each fault happens at exactly its rate."""
    edge = 0.0
    for status in sorted(config.fail):
        edge += config.fail[status]
        if draw < edge:
            return status
    for kind, rate in (
        (RESET, config.reset_rate),
        (STALL, config.stall_rate),
        (EMPTY, config.empty_rate),
        (MALFORMED, config.malformed_rate),
        (INSUFFICIENT, config.insufficient_rate),
    ):
        edge += rate
        if draw < edge:
            return kind
    return None


def latency_s(config: SimulatorConfig, draw: float) -> float:
    """Base latency times a log-normal factor of mean 1 (sigma = ``jitter``)."""
    base = config.latency_ms / 1000.0
    sigma = config.jitter
    if base <= 0.0 or sigma <= 0.0:
        return base
    z = _NORMAL.inv_cdf(min(max(draw, 1e-12), 1.0 - 1e-12))
    return base * math.exp(sigma * z - sigma * sigma / 2.0)


def generation_s(config: SimulatorConfig, tokens: int) -> float:
    """How long generating ``tokens`` output tokens takes at ``tokens_per_second``."""
    rate = config.tokens_per_second
    return tokens / rate if rate > 0 else 0.0


class RpmWindow:
    """Admissions in the last minute, for ``--rpm``. O(1) amortised per request."""

    __slots__ = ("_times",)

    def __init__(self) -> None:
        self._times: deque[float] = deque()

    def admit(self, now: float, limit: int | None) -> float | None:
        """Record an admission and return None, or return how many seconds until one of the
        last minute's ``limit`` admissions leaves the window."""
        if limit is None:  # not counted: an rpm switched on live starts from an empty minute
            return None
        times = self._times
        horizon = now - RPM_WINDOW_S
        while times and times[0] <= horizon:
            times.popleft()
        if len(times) >= limit:
            if limit == 0:
                return RPM_WINDOW_S
            return times[len(times) - limit] + RPM_WINDOW_S - now
        times.append(now)
        return None

    def clear(self) -> None:
        self._times.clear()
