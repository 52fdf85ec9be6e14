"""The fault matrix: each fault a real endpoint shows, alone, against real HTTP.

For every cell: every chunk ends as exactly one row, ok rows carry the answer to their own
chunk, no request is sent more than --max-retries + 1 times, no retry comes sooner than its
Retry-After, nothing is paid for twice, and the exit code is the documented one (0 or 1).
The endpoint going down altogether (exit 3, or back in time) is in test_outage.py.

Faults are drawn from (seed, request body, attempt number), so each cell replays the same
faults on every run; only the client's backoff jitter varies. Rates are chosen so that each
fault happens many times in a cell while no chunk is likely to need more than three or four
attempts: a cell takes a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dscall.simulator import SimulatorThread
from tests.chaos.conftest import (
    Corpus,
    check_rows,
    check_server,
    process_args,
    text_corpus,
)
from tests.integration.conftest import invoke, read_rows


@dataclass(frozen=True)
class Cell:
    """One fault: the simulator's behaviour, the run's flags, and what must come out."""

    sim: dict[str, Any]
    args: tuple[str, ...] = ()
    max_retries: int = 6
    exit_code: int = 0
    # Counters of GET /stats that must be non-zero, proving the fault really happened:
    # "faults.<kind>" or "status.<code>".
    evidence: tuple[str, ...] = ()
    error_type: str | None = None  # the error rows' type when exit_code is 1
    small: bool = False  # use the one-document corpus (for cells where every attempt fails)


CELLS: dict[str, Cell] = {
    "429-storm-retry-after": Cell(
        {"fail": {429: 0.3}, "retry_after_s": 1}, evidence=("status.429",)
    ),
    "429-concurrency-limit": Cell(
        {"max_concurrency": 3, "retry_after_s": 1, "latency_ms": 50},
        args=("--concurrency", "24"),
        max_retries=20,
        evidence=("faults.concurrency_429",),
    ),
    "503-burst-retry-after": Cell(
        {"fail": {503: 0.3}, "fail_retry_after_s": 1}, evidence=("status.503",)
    ),
    "503-burst-backoff": Cell({"fail": {503: 0.3}}, evidence=("status.503",)),
    "500-burst": Cell({"fail": {500: 0.3}}, evidence=("status.500",)),
    "500-retries-exhausted": Cell(
        {"fail": {500: 0.5}},
        max_retries=1,
        exit_code=1,
        evidence=("status.500",),
        error_type="HTTPStatusError",
    ),
    "connection-reset": Cell({"reset_rate": 0.2}, evidence=("faults.reset",)),
    "stall-past-deadline": Cell(
        {"stall_rate": 0.15, "stall_max_s": 60}, args=("--timeout", "1"), evidence=("faults.stall",)
    ),
    "whitespace-only-200": Cell({"empty_rate": 0.25}, evidence=("faults.empty",)),
    "whitespace-only-200-stream": Cell(
        {"empty_rate": 0.25}, args=("--stream",), evidence=("faults.empty",)
    ),
    # DeepSeek holds a queued request open with blank lines for minutes; scaled to 3 s here.
    "keepalive-lines-3s": Cell(
        {"keepalive_ms": 3000, "keepalive_interval_ms": 100},
        args=("--timeout", "10", "--concurrency", "64"),
    ),
    "keepalive-comments-3s-stream": Cell(
        {"keepalive_ms": 3000, "keepalive_interval_ms": 100},
        args=("--stream", "--timeout", "10", "--concurrency", "64"),
    ),
    # Keep-alive lines keep a read timeout happy for ever: only a wall-clock deadline ends it.
    "keepalive-past-deadline": Cell(
        {"keepalive_ms": 3000, "keepalive_interval_ms": 100},
        args=("--timeout", "1"),
        max_retries=1,
        exit_code=1,
        error_type="AttemptTimeout",
        small=True,
    ),
    "malformed-json": Cell({"malformed_rate": 0.25}, evidence=("faults.malformed",)),
    "malformed-json-stream": Cell(
        {"malformed_rate": 0.25}, args=("--stream",), evidence=("faults.malformed",)
    ),
    "mid-stream-disconnect": Cell(
        {"reset_rate": 0.25}, args=("--stream",), evidence=("faults.reset",)
    ),
    "insufficient-system-resource": Cell(
        {"insufficient_rate": 0.25}, evidence=("faults.insufficient",)
    ),
    "insufficient-system-resource-stream": Cell(
        {"insufficient_rate": 0.25}, args=("--stream",), evidence=("faults.insufficient",)
    ),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return text_corpus(tmp_path_factory.mktemp("matrix") / "corpus", docs=8)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return text_corpus(tmp_path_factory.mktemp("matrix-small") / "corpus", docs=1)


def _counter(stats: dict[str, Any], name: str) -> int:
    group, _, key = name.partition(".")
    table = stats["faults"] if group == "faults" else stats["responses_by_status"]
    return int(table.get(key, 0))


@pytest.mark.parametrize("name", list(CELLS))
def test_fault_cell(
    name: str,
    sim: SimulatorThread,
    corpus: Corpus,
    small_corpus: Corpus,
    tmp_path: Path,
) -> None:
    cell = CELLS[name]
    used = small_corpus if cell.small else corpus
    for key, value in cell.sim.items():
        setattr(sim.config, key, value)
    sim.config.validate()
    out = tmp_path / "results.parquet"
    args = process_args(sim, used, out, tmp_path / "cache")
    result = invoke([*args, "--max-retries", str(cell.max_retries), *cell.args])

    assert result.exit_code == cell.exit_code, result.stderr
    ok, failed = check_rows(read_rows(out), used)
    stats = sim.stats()
    check_server(stats, cell.max_retries)
    for counter in cell.evidence:
        assert _counter(stats, counter) > 0, f"{counter} never happened: {stats['faults']}"
    if cell.evidence:
        assert stats["max_attempts_per_body"] > 1, "no request was retried"
    # Each distinct request reached the server (none was dropped on the floor), and none
    # that no chunk asked for.
    assert stats["distinct_bodies"] == len({row["request_hash"] for row in ok + failed})
    if cell.exit_code == 0:
        assert not failed, [(r["error_type"], r["error_message"]) for r in failed[:3]]
    else:
        assert failed, "the cell was meant to exhaust the retries of some chunks"
        assert {row["error_type"] for row in failed} == {cell.error_type}
        # A failure is final only once every allowed attempt was made (by the one row that
        # sent the request; identical chunks follow it with attempts = 0).
        attempts: dict[str, int] = {}
        for row in failed:
            attempts[row["request_hash"]] = max(
                attempts.get(row["request_hash"], 0), row["attempts"]
            )
        assert set(attempts.values()) == {cell.max_retries + 1}
    if any(code in cell.sim.get("fail", {}) for code in (429, 503)) and (
        cell.sim.get("retry_after_s") or cell.sim.get("fail_retry_after_s")
    ):
        assert stats["retries_after_retry_after"] > 0  # the Retry-After check had work to do
