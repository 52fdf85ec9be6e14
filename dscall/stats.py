"""The run's counters: incremented by the engine on the hot path, read by progress and summary.

``RunStats`` is a plain mutable slots dataclass: the engine does ``stats.chunks_ok += 1``
directly, which costs a few tens of nanoseconds and needs no lock (one event-loop thread writes;
the progress thread only reads, and a figure one update stale on screen is harmless).

Latency percentiles come from ``LatencyRecorder``: the first ``exact_limit`` samples are kept
exactly (small runs report true percentiles); past that they fold into a log-bucket histogram
whose buckets are 2% wide, so any percentile is within 1% of the true value while memory stays a
fixed ~1,100 integers whether the run makes ten requests or ten million.
"""

from __future__ import annotations

import bisect
import math
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

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

    @property
    def mean_ms(self) -> float | None:
        return self.total_ms / self.count if self.count else None


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(slots=True)
class StepFigures:
    """The calls of one step of a chain (SPEC §9): how many, how they ended, what they cost."""

    calls: int = 0
    cached: int = 0
    failed: int = 0
    prompt_tokens: int = 0  # paid in this run
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(slots=True)
class FrontTally:
    """What the front half (discover -> extract -> chunk, ``documents.stage``) read, counted
    as each outcome is handed on; ``dscall chunks`` reports it, ``RunStats`` holds one."""

    documents: int = 0  # outcomes handed on: read or failed
    failed: int = 0  # documents extraction could not read (FailedDocument)
    pages: int = 0
    chunks: int = 0
    tokens: int = 0  # counted or estimated tokens of all chunks
    no_text_pages: int = 0
    ocr_pages: int = 0  # pages whose text came from --ocr
    skipped: int = 0  # files discovery passed over (unsupported, unreadable, loops)


@dataclass(slots=True)
class RunStats:
    """Everything counted during one run. Fields are incremented directly by their owners.

    ``front`` is counted by the front half (``documents.stage``); ``documents_seen``,
    ``files_skipped`` and ``chunks_total`` are its figures under the names the progress display
    and the summary read. ``documents_failed`` is the engine's (or the dry run's) own count: in
    a run it also holds documents with no text and documents that changed while being sent.
    """

    front: FrontTally = field(default_factory=FrontTally)
    documents_failed: int = 0
    chunks_done: int = 0  # rows produced for chunks: ok + failed (cached ones included)
    chunks_ok: int = 0
    chunks_failed: int = 0
    chunks_cached: int = 0  # answered from the cache or by an identical request in flight
    in_flight: int = 0
    concurrency_limit: int = 0  # the adaptive limit now
    concurrency_min: int = 0  # lowest and highest the limit went during the run
    concurrency_max: int = 0
    requests_sent: int = 0  # HTTP attempts, retries included
    retries: int = 0
    throttled: int = 0  # 429s
    status_counts: dict[int, int] = field(default_factory=dict)
    prompt_tokens: int = 0  # paid in this run (cached answers excluded)
    completion_tokens: int = 0
    cache_hit_tokens: int = 0
    cache_miss_tokens: int = 0
    cost_usd: float = 0.0
    cost_unknown: bool = False  # some rows had no price: cost_usd is then a lower bound
    started_monotonic: float = field(default_factory=time.monotonic)
    finished_monotonic: float | None = None
    latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    steps: dict[str, StepFigures] = field(default_factory=dict)  # by step name, in chain order
    rows_per_chunk: int = 1  # chunk-level steps of the chain (a pipeline may have several)
    schema_checked: bool = False  # --schema: answers are checked against it
    schema_reasks: int = 0  # answers asked again with their validation errors
    schema_invalid: int = 0  # rows whose last answer still did not follow the schema

    @property
    def documents_seen(self) -> int:
        return self.front.documents

    @documents_seen.setter
    def documents_seen(self, value: int) -> None:
        self.front.documents = value

    @property
    def files_skipped(self) -> int:
        return self.front.skipped

    @files_skipped.setter
    def files_skipped(self, value: int) -> None:
        self.front.skipped = value

    @property
    def chunks_total(self) -> int:
        """Chunk rows to come: grows while extraction is still finding chunks (one row per
        chunk and chunk-level step of a chain)."""
        return self.front.chunks * self.rows_per_chunk

    @chunks_total.setter
    def chunks_total(self, value: int) -> None:
        self.front.chunks = value // self.rows_per_chunk

    def finish(self) -> None:
        """Stop the clock (idempotent: the first call wins)."""
        if self.finished_monotonic is None:
            self.finished_monotonic = time.monotonic()

    def elapsed_s(self) -> float:
        end = self.finished_monotonic if self.finished_monotonic is not None else time.monotonic()
        return max(0.0, end - self.started_monotonic)

    def throughput(self) -> float:
        """Chunks finished per second of wall time, since the start."""
        elapsed = self.elapsed_s()
        return self.chunks_done / elapsed if elapsed > 0 else 0.0

    def requests_per_s(self) -> float:
        elapsed = self.elapsed_s()
        return self.requests_sent / elapsed if elapsed > 0 else 0.0

    def error_rate(self) -> float:
        """Failed rows over all rows: failed chunks plus documents that could not be read."""
        rows = self.chunks_done + self.documents_failed
        return (self.chunks_failed + self.documents_failed) / rows if rows else 0.0

    def eta_s(self, rate: float | None = None) -> float | None:
        """Seconds left at ``rate`` chunks/s (default: the run's average), or None if unknown.

        ``chunks_total`` grows while documents are still being read, so this is a lower bound
        until extraction finishes.
        """
        remaining = self.chunks_total - self.chunks_done
        if remaining <= 0:
            return 0.0 if self.chunks_total else None
        speed = self.throughput() if rate is None else rate
        return remaining / speed if speed > 0 else None

    def _schema_summary(self) -> dict[str, Any]:
        if not self.schema_checked:
            return {}
        return {"schema": {"reasks": self.schema_reasks, "invalid": self.schema_invalid}}

    def summary_dict(self) -> dict[str, Any]:
        """The end-of-run figures, JSON-ready (what ``--summary-json`` writes).

        Keys::

            wall_time_s              seconds from start to finish (or to now, while running)
            documents                {seen, failed, files_skipped}
            chunks                   {total, done, ok, failed, cached}
            requests                 {sent, retries, throttled, status_counts: {"200": n, ...}}
            tokens                   {prompt, completion, cache_hit, cache_miss}  (paid this run)
            cost_usd                 dollars spent this run (a lower bound if cost_complete is
                                     false)
            cost_complete            false when some rows had no known price
            latency_ms               {p50, p95, p99, mean, max, count} over HTTP attempts;
                                     values are null when no request was sent
            latency_exact            true when percentiles are exact (else within 1%)
            throughput_chunks_per_s  chunks done / wall time
            requests_per_s           HTTP attempts / wall time
            error_rate               failed rows / rows (0..1)
            concurrency              {final, min, max} of the adaptive in-flight limit
            schema                   {reasks, invalid} with --schema (absent without)
            steps                    [{name, calls, cached, failed, prompt_tokens,
                                     completion_tokens, cost_usd}] per step of the chain, in
                                     chain order (``map`` alone in --mode map)
        """
        lat = self.latency
        latency: dict[str, float | int | None] = {
            key: _round(value) for key, value in lat.percentiles().items()
        }
        latency["mean"] = _round(lat.mean_ms)
        latency["max"] = _round(lat.max_ms) if lat.count else None
        latency["count"] = lat.count
        return {
            "wall_time_s": round(self.elapsed_s(), 3),
            "documents": {
                "seen": self.documents_seen,
                "failed": self.documents_failed,
                "files_skipped": self.files_skipped,
                "pages_ocr": self.front.ocr_pages,
            },
            "chunks": {
                "total": self.chunks_total,
                "done": self.chunks_done,
                "ok": self.chunks_ok,
                "failed": self.chunks_failed,
                "cached": self.chunks_cached,
            },
            "requests": {
                "sent": self.requests_sent,
                "retries": self.retries,
                "throttled": self.throttled,
                "status_counts": {str(k): v for k, v in sorted(dict(self.status_counts).items())},
            },
            "tokens": {
                "prompt": self.prompt_tokens,
                "completion": self.completion_tokens,
                "cache_hit": self.cache_hit_tokens,
                "cache_miss": self.cache_miss_tokens,
            },
            "cost_usd": round(self.cost_usd, 6),
            "cost_complete": not self.cost_unknown,
            "latency_ms": latency,
            "latency_exact": lat.exact,
            "throughput_chunks_per_s": round(self.throughput(), 3),
            "requests_per_s": round(self.requests_per_s(), 3),
            "error_rate": round(self.error_rate(), 6),
            "concurrency": {
                "final": self.concurrency_limit,
                "min": self.concurrency_min,
                "max": self.concurrency_max,
            },
            **self._schema_summary(),
            "steps": [
                {
                    "name": name,
                    "calls": step.calls,
                    "cached": step.cached,
                    "failed": step.failed,
                    "prompt_tokens": step.prompt_tokens,
                    "completion_tokens": step.completion_tokens,
                    "cost_usd": round(step.cost_usd, 6),
                }
                for name, step in self.steps.items()
            ],
        }
