"""RunStats arithmetic and LatencyRecorder accuracy (against an exact nearest-rank computation)."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable

import pytest

from dscall.stats import LatencyRecorder, RunStats, StepFigures


def exact_percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


def test_no_samples_gives_none() -> None:
    rec = LatencyRecorder()
    assert rec.percentile(50) is None
    assert rec.percentiles() == {"p50": None, "p95": None, "p99": None}
    assert rec.mean_ms is None


def test_small_runs_are_exact() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100 ms
    random.Random(1).shuffle(values)
    rec = LatencyRecorder()
    for v in values:
        rec.record(v)
    assert rec.exact
    assert rec.percentiles() == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
    assert rec.percentile(100) == 100.0
    assert rec.percentile(0) == 1.0
    assert rec.mean_ms == pytest.approx(50.5)
    assert (rec.min_ms, rec.max_ms, rec.count) == (1.0, 100.0, 100)


@pytest.mark.parametrize(
    "draw",
    [
        pytest.param(lambda r: r.lognormvariate(6.0, 1.0), id="lognormal"),
        pytest.param(lambda r: r.uniform(5.0, 60_000.0), id="uniform"),
        pytest.param(
            lambda r: r.gauss(40.0, 3.0) if r.random() < 0.9 else r.gauss(9000.0, 500.0),
            id="bimodal",
        ),
    ],
)
def test_histogram_percentiles_within_one_percent(draw: Callable[[random.Random], float]) -> None:
    rng = random.Random(42)
    values = [max(0.05, draw(rng)) for _ in range(50_000)]
    rec = LatencyRecorder(exact_limit=1000)
    for v in values:
        rec.record(v)
    assert not rec.exact
    for p in (1.0, 50.0, 90.0, 95.0, 99.0, 99.9):
        got = rec.percentile(p)
        want = exact_percentile(values, p)
        assert got is not None
        assert abs(got - want) / want <= 0.01, (p, got, want)


def test_one_million_requests_bounded_memory_and_accurate() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(7.0, 0.8) for _ in range(1_000_000)]
    rec = LatencyRecorder()
    for v in values:
        rec.record(v)
    assert rec.count == 1_000_000
    assert not rec.exact
    # Bounded: a fixed histogram, not a million samples.
    assert len(rec._buckets) < 1200
    got = rec.percentiles()
    for key, p in (("p50", 50.0), ("p95", 95.0), ("p99", 99.0)):
        want = exact_percentile(values, p)
        value = got[key]
        assert value is not None
        assert abs(value - want) / want <= 0.01


def test_histogram_clamps_to_seen_range() -> None:
    rec = LatencyRecorder(exact_limit=1)
    for v in (0.0, 0.001, 5e8):  # below the histogram's floor and above its ceiling
        rec.record(v)
    low = rec.percentile(1)
    assert low is not None
    assert 0.0 <= low <= 0.0102  # the floor bucket: sub-10-microsecond latencies
    assert rec.percentile(100) == 5e8  # the top bucket reports the largest value seen


def finished_stats(elapsed: float) -> RunStats:
    stats = RunStats()
    stats.started_monotonic = 1000.0
    stats.finished_monotonic = 1000.0 + elapsed
    return stats


def test_rates_eta_and_error_rate() -> None:
    stats = finished_stats(10.0)
    stats.chunks_total = 100
    stats.chunks_done = 40
    stats.chunks_failed = 4
    stats.documents_failed = 1
    stats.requests_sent = 55
    assert stats.elapsed_s() == 10.0
    assert stats.throughput() == pytest.approx(4.0)
    assert stats.requests_per_s() == pytest.approx(5.5)
    assert stats.eta_s() == pytest.approx(15.0)  # 60 left at 4/s
    assert stats.eta_s(rate=12.0) == pytest.approx(5.0)
    assert stats.error_rate() == pytest.approx(5 / 41)


def test_eta_unknown_and_done() -> None:
    stats = finished_stats(0.0)
    assert stats.eta_s() is None  # nothing known yet
    stats.chunks_total = 5
    assert stats.eta_s() is None  # no speed yet
    stats.chunks_done = 5
    assert stats.eta_s() == 0.0
    assert stats.throughput() == 0.0
    assert stats.error_rate() == 0.0


def test_finish_is_idempotent() -> None:
    stats = RunStats()
    stats.finish()
    first = stats.finished_monotonic
    stats.finish()
    assert first is not None
    assert stats.finished_monotonic == first


SUMMARY_KEYS = {
    "wall_time_s",
    "documents",
    "chunks",
    "requests",
    "tokens",
    "cost_usd",
    "cost_complete",
    "latency_ms",
    "latency_exact",
    "throughput_chunks_per_s",
    "requests_per_s",
    "error_rate",
    "concurrency",
    "steps",
}


def test_summary_dict_keys_and_values() -> None:
    stats = finished_stats(4.0)
    stats.documents_seen, stats.documents_failed, stats.files_skipped = 3, 1, 2
    stats.front.ocr_pages = 5
    stats.chunks_total, stats.chunks_done, stats.chunks_ok = 10, 10, 8
    stats.chunks_failed, stats.chunks_cached = 2, 3
    stats.requests_sent, stats.retries, stats.throttled = 12, 4, 2
    stats.status_counts.update({200: 8, 429: 2, 500: 2})
    stats.prompt_tokens, stats.completion_tokens = 1000, 200
    stats.cache_hit_tokens, stats.cache_miss_tokens = 600, 400
    stats.cost_usd, stats.cost_unknown = 0.0123456789, True
    for ms in (100.0, 200.0, 300.0, 400.0):
        stats.latency.record(ms)
    summary = stats.summary_dict()
    assert set(summary) == SUMMARY_KEYS
    assert json.loads(json.dumps(summary)) == summary  # JSON-ready as is
    assert summary["wall_time_s"] == 4.0
    assert summary["documents"] == {
        "seen": 3,
        "failed": 1,
        "files_skipped": 2,
        "pages_ocr": 5,
        "from_manifest": 0,
    }
    assert summary["chunks"] == {"total": 10, "done": 10, "ok": 8, "failed": 2, "cached": 3}
    assert summary["requests"] == {
        "sent": 12,
        "retries": 4,
        "throttled": 2,
        "status_counts": {"200": 8, "429": 2, "500": 2},
    }
    assert summary["tokens"] == {
        "prompt": 1000,
        "completion": 200,
        "cache_hit": 600,
        "cache_miss": 400,
    }
    assert summary["cost_usd"] == pytest.approx(0.012346)
    assert summary["cost_complete"] is False
    assert summary["latency_ms"] == {
        "p50": 200.0,
        "p95": 400.0,
        "p99": 400.0,
        "mean": 250.0,
        "max": 400.0,
        "count": 4,
    }
    assert summary["latency_exact"] is True
    assert summary["throughput_chunks_per_s"] == 2.5
    assert summary["requests_per_s"] == 3.0
    assert summary["error_rate"] == pytest.approx(3 / 11, abs=1e-6)
    assert summary["steps"] == []


def test_summary_dict_has_each_steps_figures_in_chain_order() -> None:
    stats = finished_stats(1.0)
    stats.steps["map"] = StepFigures(calls=10, cached=2, failed=1, prompt_tokens=900)
    stats.steps["reduce"] = StepFigures(calls=3, completion_tokens=40, cost_usd=0.0012345678)
    steps = stats.summary_dict()["steps"]
    assert [step["name"] for step in steps] == ["map", "reduce"]
    assert steps[0] == {
        "name": "map",
        "calls": 10,
        "cached": 2,
        "failed": 1,
        "prompt_tokens": 900,
        "completion_tokens": 0,
        "cost_usd": 0.0,
    }
    assert steps[1]["cost_usd"] == pytest.approx(0.001235)


def test_summary_dict_with_no_requests() -> None:
    summary = finished_stats(1.0).summary_dict()
    assert summary["latency_ms"]["p50"] is None
    assert summary["latency_ms"]["max"] is None
    assert summary["cost_complete"] is True


def test_cumulative_counts_agree_in_exact_and_histogram_modes() -> None:
    samples = [0.5, 1.0, 2.0, 3.0, 50.0, 100.0, 200.0, 5000.0, 70000.0]
    bounds = [2.5, 60.0, 150.0, 1000.0, 10000.0, 100000.0]
    exact = LatencyRecorder()
    folded = LatencyRecorder(exact_limit=2)  # folded into the histogram after two samples
    for ms in samples:
        exact.record(ms)
        folded.record(ms)
    assert exact.exact
    assert not folded.exact
    want = [sum(1 for ms in samples if ms <= bound) for bound in bounds]
    assert exact.cumulative_ms(bounds) == want
    assert folded.cumulative_ms(bounds) == want
