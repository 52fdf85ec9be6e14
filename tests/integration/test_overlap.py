"""Two `dscall process` runs over the same inputs and the same cache at once (a cron job that
overlaps its previous run): the second waits for the answers the first has in flight instead of
paying for them again (cross-process single flight, SPEC §5), and takes over the leases of a
first run that is killed.

Real processes, the real simulator over HTTP on 127.0.0.1; the simulator's per-body billing is
the proof of who paid for what.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from dscall.simulator import SimulatorThread
from tests.chaos.conftest import (
    Corpus,
    check_rows,
    kill_group,
    process_args,
    start_dscall,
    text_corpus,
    wait_until,
)
from tests.integration.conftest import read_rows

LATENCY_MS = 600.0  # 86 distinct requests, 6 at a time: the first run lasts ~9 s
CONCURRENCY = 6
PREFLIGHT_REQUESTS = 2  # GET /models and GET /user/balance, per run
TAKEOVER_S = 5.0  # a dead holder's leases are taken at the next poll, long before they expire


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    return text_corpus(tmp_path / "corpus", docs=40, paragraphs=2)


def _args(sim: SimulatorThread, corpus: Corpus, out: Path, cache: Path) -> list[str]:
    return process_args(
        sim,
        corpus,
        out,
        cache,
        "--concurrency",
        str(CONCURRENCY),
        "--max-concurrency",
        str(CONCURRENCY),
    )


def _err(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _check_all_ok(rows: list[dict[str, Any]], corpus: Corpus) -> None:
    ok, failed = check_rows(rows, corpus)
    assert not failed, failed[:3]
    assert len(ok) == len(corpus.chunks)


def test_an_overlapping_run_waits_instead_of_paying_twice(
    sim: SimulatorThread, corpus: Corpus, tmp_path: Path
) -> None:
    sim.config.latency_ms = LATENCY_MS
    cache = tmp_path / "cache"
    first_err, second_err = tmp_path / "first.err", tmp_path / "second.err"
    first = start_dscall(
        _args(sim, corpus, tmp_path / "first.parquet", cache), stderr_path=first_err
    )
    try:
        # Mid-run: a couple of rounds answered, most of the corpus still to go.
        assert wait_until(lambda: sim.stats()["requests_received"] >= 2 * CONCURRENCY, first)
        second = start_dscall(
            _args(sim, corpus, tmp_path / "second.parquet", cache), stderr_path=second_err
        )
        try:
            assert first.wait(timeout=60) == 0, _err(first_err)
            assert second.wait(timeout=60) == 0, _err(second_err)
        finally:
            kill_group(second)
    finally:
        kill_group(first)

    stats = sim.stats()
    assert stats["other_requests"] == 2 * PREFLIGHT_REQUESTS  # both runs really ran
    assert stats["bodies_paid_more_than_once"] == 0
    assert stats["requests_received"] == corpus.unique_texts  # each request sent once in all
    first_rows = read_rows(tmp_path / "first.parquet")
    second_rows = read_rows(tmp_path / "second.parquet")
    _check_all_ok(first_rows, corpus)
    _check_all_ok(second_rows, corpus)
    # The second run paid for nothing the first had in flight: each request was paid once, by
    # one of the two runs, and the other's row of it costs 0.
    paid = {row["request_hash"] for row in first_rows + second_rows if not row["cached"]}
    assert len(paid) == corpus.unique_texts
    assert all(
        row["cost_usd"] == 0.0 and row["attempts"] == 0 for row in second_rows if row["cached"]
    )
    assert sum(row["cached"] for row in second_rows) > len(second_rows) // 2


def test_a_killed_run_s_leases_are_taken_over_at_once(
    sim: SimulatorThread, corpus: Corpus, tmp_path: Path
) -> None:
    sim.config.latency_ms = LATENCY_MS
    cache = tmp_path / "cache"
    second_err = tmp_path / "second.err"
    first = start_dscall(_args(sim, corpus, tmp_path / "first.parquet", cache))
    try:
        assert wait_until(lambda: sim.stats()["requests_received"] >= CONCURRENCY, first)
        second = start_dscall(
            _args(sim, corpus, tmp_path / "second.parquet", cache), stderr_path=second_err
        )
        try:
            # The second run is up (its pre-flight is done) and waits on the first's leases.
            assert wait_until(
                lambda: sim.stats()["other_requests"] >= 2 * PREFLIGHT_REQUESTS, second
            )
            time.sleep(1.0)
            assert first.poll() is None, "the first run ended before it could be killed"
            kill_group(first)  # SIGKILL: no release, no flush, nothing
            killed_at = sim.stats()["uptime_s"]
            assert second.wait(timeout=60) == 0, _err(second_err)
        finally:
            kill_group(second)
    finally:
        kill_group(first)

    bodies = sim.stats(bodies=True)["bodies"].values()
    after = [t for body in bodies for t in body["arrived_s"] if t > killed_at]
    assert after, "the second run sent nothing after the kill"
    # Taken over at the second run's next poll (the holder's pid is gone), not at expiry.
    assert min(after) - killed_at < TAKEOVER_S, (min(after), killed_at)
    for body in bodies:
        before_kill = sum(1 for t in body["arrived_s"] if t <= killed_at)
        # The second run sent each request at most once, and paid again only for what the
        # killed run had already sent (answered to a dead process, or not yet stored).
        assert body["attempts"] - before_kill <= 1, body
        assert body["paid"] <= 1 or (body["paid"] == 2 and before_kill == 1), body
    _check_all_ok(read_rows(tmp_path / "second.parquet"), corpus)


def test_the_same_output_twice_refuses_or_waits(
    sim: SimulatorThread, corpus: Corpus, tmp_path: Path
) -> None:
    sim.config.latency_ms = LATENCY_MS
    cache, out = tmp_path / "cache", tmp_path / "results.parquet"
    refused_err, waiting_err = tmp_path / "refused.err", tmp_path / "waiting.err"
    first = start_dscall(_args(sim, corpus, out, cache))
    try:
        assert wait_until(lambda: sim.stats()["requests_received"] >= CONCURRENCY, first)
        refused = start_dscall(_args(sim, corpus, out, cache), stderr_path=refused_err)
        assert refused.wait(timeout=30) == 2
        message = " ".join(_err(refused_err).split())  # rich may wrap the line
        assert f"another dscall run (pid {first.pid}, since " in message, message
        assert f"is writing {out}; pass --wait-lock to wait for it" in message, message
        assert first.poll() is None, "the refusal came only because the first run was over"
        waiting = start_dscall(
            [*_args(sim, corpus, out, cache), "--wait-lock"], stderr_path=waiting_err
        )
        try:
            assert first.wait(timeout=60) == 0
            assert waiting.poll() is None, "it did not wait for the first run to finish"
            assert waiting.wait(timeout=60) == 0, _err(waiting_err)
        finally:
            kill_group(waiting)
    finally:
        kill_group(first)
    stats = sim.stats()
    assert stats["other_requests"] == 2 * PREFLIGHT_REQUESTS  # the refused run sent nothing
    assert stats["bodies_paid_more_than_once"] == 0
    rows = read_rows(out)  # the waiting run's, written after the first run's
    _check_all_ok(rows, corpus)
    assert all(row["cached"] for row in rows)
