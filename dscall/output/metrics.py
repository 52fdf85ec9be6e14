"""Prometheus metrics of a run (SPEC §12): served on 127.0.0.1 while it lasts, and/or written
at its end for node_exporter's textfile collector.

The metrics are a view of the run's ``RunStats``, read when they are scraped (a custom
collector): the call path does not touch prometheus-client at all. Names follow Prometheus
conventions (``dscall_`` prefix, base units: seconds, USD, tokens). The run's start and end
timestamps and its exit code are gauges, so that an alert can fire on a cron run that failed
(``dscall_run_exit_code > 0``) or never ran (``time() - dscall_run_end_timestamp_seconds`` too
large). prometheus-client is the ``metrics`` extra: imported only when asked for.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dscall.errors import UsageError
from dscall.stats import RunStats

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

# Request duration buckets, seconds: from a cached-prefix answer to a long reasoning call.
BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
BREAKER_STATES = ("closed", "half_open", "open", "disabled")
MISSING = "prometheus-client is not installed: pip install 'dscall[metrics]'"


def _client() -> Any:
    try:
        import prometheus_client
        import prometheus_client.core  # the metric families of a custom collector
    except ImportError as exc:  # the extra is not installed
        raise UsageError(f"--metrics-port/--metrics-textfile need {MISSING}") from exc
    return prometheus_client


class RunMetrics:
    """The metric families of one run, read from ``stats`` at each scrape."""

    def __init__(self, stats: RunStats, endpoint: str) -> None:
        self._client = _client()
        self.stats = stats
        self.endpoint = endpoint
        self.started_at = time.time()
        self.ended_at: float | None = None
        self.exit_code: int | None = None
        self.registry: CollectorRegistry = self._client.CollectorRegistry(auto_describe=True)
        self.registry.register(self)
        self._server: Any = None

    def describe(self) -> list[Any]:
        return []  # the families depend on the run: described at collect time

    def collect(self) -> Iterator[Any]:
        core = self._client.core
        stats = self.stats
        endpoint = self.endpoint
        requests = core.CounterMetricFamily(
            "dscall_requests", "HTTP attempts by status code", labels=["endpoint", "code"]
        )
        by_endpoint = {name: e.status_counts for name, e in stats.endpoints.items()}
        for name, counts in (by_endpoint or {endpoint: stats.status_counts}).items():
            for code, count in sorted(counts.items()):
                requests.add_metric([name, str(code)], count)
        yield requests
        yield from self._endpoint_gauges(core)
        yield _counter(core, "dscall_retries", "Attempts retried", endpoint, stats.retries)
        tokens = core.CounterMetricFamily(
            "dscall_tokens", "Tokens paid in this run, by kind", labels=["endpoint", "kind"]
        )
        tokens.add_metric([endpoint, "prompt_cache_hit"], stats.cache_hit_tokens)
        tokens.add_metric([endpoint, "prompt_cache_miss"], stats.cache_miss_tokens)
        tokens.add_metric([endpoint, "completion"], stats.completion_tokens)
        yield tokens
        yield _counter(core, "dscall_cost_usd", "Money spent in this run", endpoint, stats.cost_usd)
        yield _counter(
            core,
            "dscall_cache_hits",
            "Chunks answered from the cache",
            endpoint,
            stats.chunks_cached,
        )
        chunks = core.CounterMetricFamily(
            "dscall_chunks", "Chunk rows by status", labels=["status"]
        )
        chunks.add_metric(["ok"], stats.chunks_ok)
        chunks.add_metric(["error"], stats.chunks_failed)
        yield chunks
        documents = core.CounterMetricFamily(
            "dscall_documents", "Documents read, and failed", labels=["status"]
        )
        documents.add_metric(["seen"], stats.documents_seen)
        documents.add_metric(["failed"], stats.documents_failed)
        yield documents
        yield self._latency(core)
        yield _gauge(core, "dscall_in_flight", "Requests on the wire", stats.in_flight)
        yield _gauge(
            core,
            "dscall_concurrency_limit",
            "The adaptive in-flight limit",
            stats.concurrency_limit,
        )
        yield _gauge(core, "dscall_chunks_expected", "Chunk rows to come", stats.chunks_total)
        yield _gauge(
            core, "dscall_run_start_timestamp_seconds", "When the run started", self.started_at
        )
        yield _gauge(
            core,
            "dscall_run_end_timestamp_seconds",
            "When the run ended (0 while it runs)",
            self.ended_at or 0.0,
        )
        yield _gauge(
            core,
            "dscall_run_exit_code",
            "The run's exit code (-1 while it runs)",
            -1 if self.exit_code is None else self.exit_code,
        )

    def _endpoint_gauges(self, core: Any) -> Iterator[Any]:
        """Each endpoint's in flight, adaptive limit and breaker state (one endpoint: the
        run's figures)."""
        stats = self.stats
        rows = [
            (name, e.in_flight, e.concurrency_limit, "disabled" if e.disabled else e.breaker)
            for name, e in stats.endpoints.items()
        ] or [(self.endpoint, stats.in_flight, stats.concurrency_limit, stats.breaker_state)]
        in_flight = core.GaugeMetricFamily(
            "dscall_endpoint_in_flight", "Requests on the wire, by endpoint", labels=["endpoint"]
        )
        limit = core.GaugeMetricFamily(
            "dscall_endpoint_concurrency_limit",
            "The adaptive in-flight limit, by endpoint",
            labels=["endpoint"],
        )
        breaker = core.GaugeMetricFamily(
            "dscall_breaker_state",
            "1 for the circuit breaker's current state (closed, half_open, open, disabled)",
            labels=["endpoint", "state"],
        )
        for name, flying, limit_now, state in rows:
            in_flight.add_metric([name], flying)
            limit.add_metric([name], limit_now)
            for each in BREAKER_STATES:
                breaker.add_metric([name, each], 1.0 if each == state else 0.0)
        yield in_flight
        yield limit
        yield breaker

    def _latency(self, core: Any) -> Any:
        latency = self.stats.latency
        counts = latency.cumulative_ms([bound * 1000.0 for bound in BUCKETS_S])
        buckets = [(repr(bound), count) for bound, count in zip(BUCKETS_S, counts, strict=True)]
        buckets.append(("+Inf", latency.count))
        family = core.HistogramMetricFamily(
            "dscall_request_duration_seconds",
            "Round trip of successful HTTP attempts",
            labels=["endpoint"],
        )
        family.add_metric([self.endpoint], buckets, latency.total_ms / 1000.0)
        return family

    # -- serving and writing ------------------------------------------------------------

    def serve(self, port: int) -> None:
        """Serve ``/metrics`` on 127.0.0.1:``port`` until ``close()``."""
        try:
            server, _ = self._client.start_http_server(
                port, addr="127.0.0.1", registry=self.registry
            )
        except OSError as exc:
            raise UsageError(f"--metrics-port {port}: cannot listen on 127.0.0.1 ({exc})") from exc
        self._server = server

    def finish(self, exit_code: int) -> None:
        self.ended_at = time.time()
        self.exit_code = exit_code

    def write_textfile(self, path: Path) -> None:
        """The final metrics, written to a temporary file renamed over ``path``."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._client.write_to_textfile(str(path), self.registry)
        except OSError as exc:
            raise UsageError(f"cannot write --metrics-textfile {path}: {exc}") from exc

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _counter(core: Any, name: str, documentation: str, endpoint: str, value: float) -> Any:
    family = core.CounterMetricFamily(name, documentation, labels=["endpoint"])
    family.add_metric([endpoint], value)
    return family


def _gauge(core: Any, name: str, documentation: str, value: float) -> Any:
    return core.GaugeMetricFamily(name, documentation, value=value)
