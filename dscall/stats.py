"""The run's counters: incremented by the engine on the hot path, read by progress and summary.

``RunStats`` is a plain mutable slots dataclass: the engine does ``stats.chunks_ok += 1``
directly, which costs a few tens of nanoseconds and needs no lock (one event-loop thread writes;
the progress thread only reads, and a figure one update stale on screen is harmless).

Latency percentiles come from ``LatencyRecorder`` (``dscall.latency``), in bounded memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from dscall.latency import LatencyRecorder as LatencyRecorder  # re-exported


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
    from_manifest: int = 0  # documents recalled from the manifest, not read again


@dataclass(slots=True)
class EndpointFigures:
    """One endpoint's share of a run with several (SPEC §11), for progress and summary."""

    priority: str = "primary"
    requests: int = 0  # attempts sent to it
    ok: int = 0
    throttled: int = 0
    in_flight: int = 0
    concurrency_limit: int = 0
    breaker: str = "closed"
    disabled: str | None = None  # why it takes no more calls (401, 402, a refused parameter)
    latency: LatencyRecorder = field(default_factory=LatencyRecorder)
    status_counts: dict[int, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        lat = self.latency.percentiles()
        return {
            "priority": self.priority,
            "requests": self.requests,
            "ok": self.ok,
            "throttled": self.throttled,
            "concurrency_limit": self.concurrency_limit,
            "breaker": self.breaker,
            "disabled": self.disabled,
            "latency_ms": {key: _round(value) for key, value in lat.items()},
        }


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
    # By endpoint name, with several endpoints (empty with one: the run's figures are its own).
    endpoints: dict[str, EndpointFigures] = field(default_factory=dict)
    off_peak_wait_until: str | None = None  # --off-peak wait: held until then (a label)
    breaker_state: str = "closed"  # the one endpoint's circuit breaker (several: per endpoint)

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
            documents                {seen, failed, files_skipped, pages_ocr,
                                     from_manifest (recalled, not read again)}
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
            endpoints                {name: {priority, requests, ok, throttled,
                                     concurrency_limit, breaker, disabled, latency_ms}} with
                                     several endpoints (absent with one)
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
                "from_manifest": self.front.from_manifest,
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
            **(
                {"endpoints": {name: ep.summary() for name, ep in self.endpoints.items()}}
                if self.endpoints
                else {}
            ),
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
