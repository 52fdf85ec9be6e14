"""Latency percentiles in bounded memory: the first ``exact_limit`` samples are kept exactly
(small runs report true percentiles); past that they fold into a log-bucket histogram whose
buckets are 2% wide, so any percentile is within 1% of the true value while memory stays a fixed
~1,100 integers whether the run makes ten requests or ten million.
"""

from __future__ import annotations

import bisect
import math
from array import array

# Histogram range and resolution. Bucket i covers [MIN * G**i, MIN * G**(i+1)); the reported
# value 2*L*G/(1+G) is off by at most (G-1)/(G+1) < 1% relative for any sample in the bucket.
_HIST_MIN_MS = 0.01
_HIST_MAX_MS = 1e7  # ~2.8 hours: far past the 15-minute attempt deadline
_GROWTH = 1.02
_LOG_MIN = math.log(_HIST_MIN_MS)
_INV_LOG_GROWTH = 1.0 / math.log(_GROWTH)
_BUCKETS = int(math.log(_HIST_MAX_MS / _HIST_MIN_MS) * _INV_LOG_GROWTH) + 1
_LAST = _BUCKETS - 1  # also holds everything above _HIST_MAX_MS
_MID_FACTOR = 2 * _GROWTH / (1 + _GROWTH)
# Exact samples kept before folding into the histogram: 80 KB of doubles.
DEFAULT_EXACT_LIMIT = 10_000


class LatencyRecorder:
    """Records latencies (milliseconds) and answers percentiles in bounded memory."""

    __slots__ = ("_buckets", "_exact", "_exact_limit", "count", "max_ms", "min_ms", "total_ms")

    def __init__(self, exact_limit: int = DEFAULT_EXACT_LIMIT) -> None:
        self._exact_limit = exact_limit
        self._exact: array[float] | None = array("d")
        self._buckets = [0] * _BUCKETS
        self.count = 0
        self.total_ms = 0.0
        self.min_ms = math.inf
        self.max_ms = 0.0

    @property
    def exact(self) -> bool:
        """True while every sample is still kept (percentiles are exact)."""
        return self._exact is not None

    def record(self, ms: float) -> None:
        self.count += 1
        self.total_ms += ms
        if ms < self.min_ms:
            self.min_ms = ms
        if ms > self.max_ms:
            self.max_ms = ms
        exact = self._exact
        if exact is not None:
            exact.append(ms)
            if len(exact) >= self._exact_limit:
                self._exact = None
                for value in exact:
                    self._add(value)
            return
        self._add(ms)

    def _add(self, ms: float) -> None:
        if ms <= _HIST_MIN_MS:
            self._buckets[0] += 1
            return
        index = int((math.log(ms) - _LOG_MIN) * _INV_LOG_GROWTH)
        self._buckets[index if index < _LAST else _LAST] += 1

    def percentile(self, p: float) -> float | None:
        """The nearest-rank ``p``-th percentile (``p`` in 0..100), or None with no samples."""
        if self.count == 0:
            return None
        rank = max(1, math.ceil(p / 100.0 * self.count))
        if self._exact is not None:
            return sorted(self._exact)[rank - 1]
        seen = 0
        for index, n in enumerate(self._buckets):
            seen += n
            if seen >= rank:
                if index == _LAST:  # the overflow bucket: its best witness is the max
                    return self.max_ms
                value = _HIST_MIN_MS * _GROWTH**index * _MID_FACTOR
                return min(max(value, self.min_ms), self.max_ms)
        return self.max_ms  # pragma: no cover - counts always add up to self.count

    def percentiles(self, ps: tuple[float, ...] = (50.0, 95.0, 99.0)) -> dict[str, float | None]:
        """``{"p50": ..., "p95": ..., "p99": ...}``; one sort for all of them in exact mode."""
        if self._exact is not None and self.count:
            ordered = sorted(self._exact)
            return {f"p{p:g}": ordered[max(1, math.ceil(p / 100.0 * self.count)) - 1] for p in ps}
        return {f"p{p:g}": self.percentile(p) for p in ps}

    def cumulative_ms(self, bounds_ms: list[float]) -> list[int]:
        """How many samples were at most each bound (a Prometheus histogram's buckets); exact
        while every sample is kept, else to the histogram's 2% resolution."""
        if self._exact is not None:
            ordered = sorted(self._exact)
            return [bisect.bisect_right(ordered, bound) for bound in bounds_ms]
        counts = []
        for bound in bounds_ms:
            if bound <= _HIST_MIN_MS:
                counts.append(self._buckets[0])
                continue
            below = min(int((math.log(bound) - _LOG_MIN) * _INV_LOG_GROWTH), _LAST)
            counts.append(sum(self._buckets[:below]))
        return counts

    def merge(self, other: LatencyRecorder) -> None:
        """Add ``other``'s samples to this one (the shards of a run, summed on the driver)."""
        if other._exact is not None:
            for value in other._exact:
                self.record(value)
            return
        if self._exact is not None:  # the other is folded already: fold this one too
            exact, self._exact = self._exact, None
            for value in exact:
                self._add(value)
        self._buckets = [a + b for a, b in zip(self._buckets, other._buckets, strict=True)]
        self.count += other.count
        self.total_ms += other.total_ms
        self.min_ms = min(self.min_ms, other.min_ms)
        self.max_ms = max(self.max_ms, other.max_ms)

    @property
    def mean_ms(self) -> float | None:
        return self.total_ms / self.count if self.count else None
