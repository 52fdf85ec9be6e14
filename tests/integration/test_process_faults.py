"""Faults the real API shows, against real HTTP: every chunk still ends as exactly one right row."""

from __future__ import annotations

import json
import threading
import time

from dscall.simulator import SimulatorThread
from tests.integration.conftest import (
    Workspace,
    assert_rows_complete,
    expected_output,
    invoke,
    read_rows,
    write_corpus,
)

MAX_RETRIES = 8


def test_mixed_faults_lose_nothing_and_respect_retry_after(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    write_corpus(workspace.corpus, docs=30)
    config = sim.config
    config.seed = 7
    config.fail = {503: 0.10, 429: 0.05}
    config.reset_rate = 0.02
    config.empty_rate = 0.01
    config.stall_rate = 0.01
    config.stall_max_s = 20
    result = invoke(
        workspace.args(
            sim,
            "--concurrency",
            "16",
            "--timeout",
            "1",
            "--max-retries",
            str(MAX_RETRIES),
        )
    )
    assert result.exit_code == 0, result.stderr
    rows = read_rows(workspace.out)
    assert_rows_complete(rows)
    assert len(rows) == sum(1 for _ in workspace.corpus.iterdir()) * rows[0]["chunk_count"]
    assert all(row["status"] == "ok" for row in rows)
    assert all(row["output"] == expected_output(row["chunk_text"]) for row in rows)
    stats = sim.stats()
    faults = stats["faults"]
    assert faults.get("reset", 0) > 0, faults
    assert faults.get("stall", 0) > 0, faults
    assert stats["responses_by_status"].get("503", 0) > 0
    assert stats["responses_by_status"].get("429", 0) > 0
    assert stats["max_attempts_per_body"] <= MAX_RETRIES + 1
    assert stats["retry_after_violations"] == 0
    assert max(row["attempts"] for row in rows) > 1  # retries did happen


def test_keepalive_blank_lines_before_the_body(sim: SimulatorThread, workspace: Workspace) -> None:
    sim.config.keepalive_ms = 300
    sim.config.keepalive_interval_ms = 50
    result = invoke(workspace.args(sim, "--no-cache"))
    assert result.exit_code == 0, result.stderr
    rows = read_rows(workspace.out)
    assert all(
        r["status"] == "ok" and r["output"] == expected_output(r["chunk_text"]) for r in rows
    )


def test_malformed_and_insufficient_resource_answers_are_retried(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    sim.config.seed = 3
    # Rates a chunk rarely fails four times in a row at: the run's wall is its unluckiest
    # chunk's backoff (0.25 s, 0.5 s, 1 s ... on average), and this is about the retry, not luck.
    sim.config.malformed_rate = 0.1
    sim.config.insufficient_rate = 0.1
    result = invoke(workspace.args(sim, "--max-retries", str(MAX_RETRIES)))
    assert result.exit_code == 0, result.stderr
    rows = read_rows(workspace.out)
    assert all(r["status"] == "ok" and r["finish_reason"] == "stop" for r in rows)
    assert sim.stats()["max_attempts_per_body"] > 1


def test_mid_stream_disconnects_are_retried(sim: SimulatorThread, workspace: Workspace) -> None:
    sim.config.seed = 5
    sim.config.reset_rate = 0.12
    result = invoke(workspace.args(sim, "--stream", "--max-retries", str(MAX_RETRIES)))
    assert result.exit_code == 0, result.stderr
    rows = read_rows(workspace.out)
    assert all(r["output"] == expected_output(r["chunk_text"]) for r in rows)
    assert sim.stats()["faults"].get("reset", 0) > 0


def test_exhausted_retries_give_an_error_row_and_exit_1(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    sim.config.seed = 11
    sim.config.fail = {500: 0.5}  # about half the chunks fail their only attempt
    result = invoke(workspace.args(sim, "--max-retries", "0", "--no-cache"))
    assert result.exit_code == 1, result.stderr
    rows = read_rows(workspace.out)
    assert_rows_complete(rows)
    failed = [r for r in rows if r["status"] == "error"]
    assert failed
    assert len(failed) < len(rows)
    assert {r["error_type"] for r in failed} == {"HTTPStatusError"}
    assert all("500" in r["error_message"] for r in failed)
    assert sim.stats()["max_attempts_per_body"] == 1
    tolerated = invoke(
        workspace.args(sim, "--max-retries", "0", "--no-cache", "--max-failures", "1000")
    )
    assert tolerated.exit_code == 0


def test_an_endpoint_down_past_max_outage_stops_with_exit_3(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    sim.config.fail = {503: 1.0}
    started = time.monotonic()
    result = invoke(workspace.args(sim, "--max-outage", "2", "--max-retries", "50"))
    assert result.exit_code == 3, result.stderr
    assert "max-outage" in result.stderr
    assert time.monotonic() - started < 30
    # Everything that finished (here: nothing) is written; the file is valid.
    assert read_rows(workspace.out) == []


def test_an_endpoint_back_before_max_outage_loses_nothing(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    sim.config.fail = {503: 1.0}
    timer = threading.Timer(1.5, lambda: setattr(sim.config, "fail", {}))
    timer.start()
    try:
        result = invoke(
            workspace.args(sim, "--max-outage", "60", "--max-retries", "8", "--concurrency", "8")
        )
    finally:
        timer.cancel()
    assert result.exit_code == 0, result.stderr
    rows = read_rows(workspace.out)
    assert_rows_complete(rows)
    assert all(r["status"] == "ok" for r in rows)
    assert sim.stats()["responses_by_status"]["503"] > 0


def test_a_burst_of_429s_lowers_concurrency_and_it_recovers(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    write_corpus(workspace.corpus, docs=100)
    sim.config.latency_ms = 25
    sim.config.max_concurrency = 4  # the burst: anything past 4 in flight gets 429
    peaks = {"limited": 0, "open": 0}
    done = threading.Event()

    def watch() -> None:
        phase = "limited"
        start: float | None = None  # the burst's clock starts at the first request, not
        while not done.is_set():  # while dscall is still starting up
            stats = sim.stats()
            peaks[phase] = max(peaks[phase], int(stats["in_flight"]))
            if start is None and stats["requests_received"]:
                start = time.monotonic()
            if phase == "limited" and start is not None and time.monotonic() - start > 1.5:
                sim.config.max_concurrency = None  # the burst is over
                phase = "open"
            time.sleep(0.01)

    summary = workspace.root / "summary.json"
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = invoke(
            workspace.args(
                sim,
                "--no-cache",
                "--concurrency",
                "32",
                "--max-concurrency",
                "64",
                "--max-retries",
                "20",
                "--summary-json",
                str(summary),
            )
        )
    finally:
        done.set()
        watcher.join()
    assert result.exit_code == 0, result.stderr
    assert all(row["status"] == "ok" for row in read_rows(workspace.out))
    concurrency = json.loads(summary.read_text())["concurrency"]
    assert concurrency["min"] <= 8, concurrency  # cut from 32 towards the server's 4
    assert concurrency["final"] > concurrency["min"], concurrency  # grew back afterwards
    assert peaks["open"] > 4, peaks  # more than the burst allowed once it was over
    assert sim.stats()["responses_by_status"]["429"] > 0
