"""Runs that stop early: interrupt, kill -9, bad key, no balance. What finished is never lost
and never paid for twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from dscall.calls.cache import ResultCache
from dscall.simulator import SimulatorThread
from tests.integration.conftest import Workspace, invoke, read_rows, write_corpus


def _start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dscall", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_answers(sim: SimulatorThread, count: int, proc: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answered = int(sim.stats()["responses_by_status"].get("200", 0))
        if answered >= count:
            return answered
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the run never got going")


def _cache_entries(workspace: Workspace) -> int:
    with ResultCache(workspace.cache, "default") as cache:
        return len(cache)


def test_sigint_stops_dispatching_finishes_in_flight_and_writes_them(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    sim.config.latency_ms = 400
    proc = _start(workspace.args(sim, "--concurrency", "4", "--no-cache"))
    try:
        _wait_for_answers(sim, 4, proc)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 3, stderr
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    rows = read_rows(workspace.out)
    stats = sim.stats()
    answered = stats["responses_by_status"]["200"]
    # Everything that was on the wire finished and was written; nothing new was started.
    assert len({r["request_hash"] for r in rows if not r["cached"]}) == answered
    assert stats["requests_received"] == answered
    assert answered < 40  # far from all 72 chunks: dispatch did stop
    assert all(r["status"] == "ok" for r in rows)


def test_sigkill_leaves_no_broken_file_and_the_rerun_pays_only_the_rest(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    # A previous complete result is at the output path; a killed run must not touch it.
    invoke(workspace.args(sim, "--no-cache", "--quiet"))
    previous = pq.read_table(str(workspace.out))
    sim.reset_stats()
    sim.config.latency_ms = 150
    proc = _start(workspace.args(sim, "--concurrency", "4", "--prompt", "Key facts: {text}"))
    try:
        _wait_for_answers(sim, 10, proc)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert pq.read_table(str(workspace.out)).equals(previous)
    stored = _cache_entries(workspace)
    # The simulator counts an answer as it sends it; the last few may not have reached the
    # cache when the kill came, but the earlier ones, 150 ms older, had.
    assert stored > 0
    sim.config.latency_ms = 0
    sim.reset_stats()
    result = invoke(workspace.args(sim, "--prompt", "Key facts: {text}", "--quiet"))
    assert result.exit_code == 0, result.stderr
    rows = read_rows(workspace.out)
    unique = len({r["request_hash"] for r in rows})
    assert sim.stats()["requests_received"] == unique - stored
    assert list(workspace.out.parent.glob(".*.tmp")) == []  # the killed run's temp file is gone


def test_a_bad_key_stops_before_any_paid_request(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    sim.config.api_key = "sk-the-real-one"
    result = invoke(workspace.args(sim))
    assert result.exit_code == 3
    assert "401" in result.stderr
    assert "DEEPSEEK_API_KEY" in result.stderr
    assert sim.stats()["requests_received"] == 0
    assert not workspace.out.exists()


def test_a_bad_key_without_preflight_stops_at_once(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    sim.config.api_key = "sk-the-real-one"
    result = invoke(workspace.args(sim, "--no-preflight", "--concurrency", "2"))
    assert result.exit_code == 3
    assert "401" in result.stderr
    assert sim.stats()["requests_received"] <= 2  # one wave at most, no retries
    assert read_rows(workspace.out) == []


def test_running_out_of_balance_part_way_keeps_the_finished_rows(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    write_corpus(workspace.corpus, docs=20)
    sim.config.balance_tokens = 3000
    result = invoke(workspace.args(sim, "--concurrency", "2", "--max-concurrency", "2"))
    assert result.exit_code == 3
    assert "balance" in result.stderr
    rows = read_rows(workspace.out)
    stats = sim.stats()
    answered = stats["responses_by_status"]["200"]
    assert answered > 0
    assert stats["responses_by_status"]["402"] >= 1
    assert len({r["request_hash"] for r in rows if not r["cached"]}) == answered
    assert all(r["status"] == "ok" for r in rows)
    # Only the requests already on the wire when the first 402 came back could follow it.
    assert stats["responses_by_status"]["402"] <= 2


def test_budget_stops_dispatch_before_the_limit(
    sim: SimulatorThread, workspace: Workspace, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.json"
    result = invoke(workspace.args(sim, "--budget-usd", "0.004", "--summary-json", str(summary)))
    assert result.exit_code == 3
    assert "budget" in result.stderr
    rows = read_rows(workspace.out)
    assert rows
    assert sum(r["cost_usd"] for r in rows) <= 0.004
    assert all(r["status"] == "ok" for r in rows)


def test_a_balance_smaller_than_the_prompts_is_announced_early(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    sim.config.balance_tokens = 1  # the simulator reports $0.001 at /user/balance
    sim.config.latency_ms = 300  # every chunk is dispatched before the first answer
    result = invoke(workspace.args(sim, "--concurrency", "4", "--max-concurrency", "4"))
    assert result.exit_code == 3
    assert "expect the endpoint to answer 402" in result.stderr
    assert "insufficient balance" in result.stderr
