"""The endpoint goes down in the middle of a run: for longer than --max-outage (exit 3, every
finished chunk written exactly once and nothing else), or not as long (exit 0, nothing lost);
and while it is down, the circuit breaker stops sending.

Facts about the breaker used here (dscall/config.py): it opens after 20 consecutive failures
(BREAKER_CONSECUTIVE_FAILURES) and probes after a 5 s cooldown (BREAKER_COOLDOWN_S).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from dscall.config import BREAKER_CONSECUTIVE_FAILURES
from dscall.simulator import SimulatorThread
from tests.chaos.conftest import (
    Corpus,
    cache_entries,
    check_rows,
    check_server,
    process_args,
    text_corpus,
)
from tests.integration.conftest import invoke, read_rows

MAX_RETRIES = 50  # the breaker and --max-outage must decide these runs, not the retry limit


class Outage:
    """Answers every request with ``status`` once ``start_after_ok`` requests were answered 200;
    with ``lasting``, back to normal that many seconds after ``end_after_failures`` requests
    got ``status`` (so after the breaker has seen them)."""

    def __init__(
        self,
        sim: SimulatorThread,
        *,
        status: int = 503,
        start_after_ok: int = 0,
        lasting: float | None = None,
        end_after_failures: int = 0,
    ) -> None:
        self.sim = sim
        self.status = status
        self.start_after_ok = start_after_ok
        self.lasting = lasting
        self.end_after_failures = end_after_failures
        self.started = threading.Event()
        self.ended = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _count(self, status: int) -> int:
        return int(self.sim.stats()["responses_by_status"].get(str(status), 0))

    def _until(self, status: int, count: int) -> bool:
        while self._count(status) < count:
            if self._stop.wait(0.002):
                return False
        return True

    def _watch(self) -> None:
        if not self._until(200, self.start_after_ok):
            return
        self.sim.config.fail = {self.status: 1.0}
        self.started.set()
        if self.lasting is None or not self._until(self.status, self.end_after_failures):
            return
        if self._stop.wait(self.lasting):
            return
        self.sim.config.fail = {}
        self.ended.set()

    def __enter__(self) -> Outage:
        self._thread.start()
        if self.start_after_ok == 0:
            self.started.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return text_corpus(tmp_path_factory.mktemp("outage-big") / "corpus", docs=24)


@pytest.fixture(scope="module")
def few_corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """Fewer chunks than the concurrency: no request ever waits for a slot."""
    corpus = text_corpus(tmp_path_factory.mktemp("outage-few") / "corpus", docs=2)
    assert corpus.unique_texts < 16
    return corpus


def _run(
    sim: SimulatorThread, corpus: Corpus, tmp_path: Path, max_outage: float
) -> tuple[Any, Path, Path]:
    out, cache = tmp_path / "results.parquet", tmp_path / "cache"
    # Slow enough that an outage starting after the first answers has most chunks to go, and
    # wide enough that the breaker sees its consecutive failures within a fraction of a second.
    sim.config.latency_ms = 50
    args = process_args(
        sim,
        corpus,
        out,
        cache,
        "--concurrency",
        "16",
        "--max-concurrency",
        "16",
        "--max-retries",
        str(MAX_RETRIES),
        "--max-outage",
        str(max_outage),
    )
    return invoke(args), out, cache


def test_an_outage_longer_than_max_outage_stops_with_exit_3_keeping_what_finished(
    sim: SimulatorThread, big_corpus: Corpus, tmp_path: Path
) -> None:
    with Outage(sim, start_after_ok=16) as outage:
        result, out, cache = _run(sim, big_corpus, tmp_path, max_outage=2)
    assert outage.started.is_set()
    assert result.exit_code == 3, result.stderr
    assert "max-outage" in result.stderr
    rows = read_rows(out)
    ok, failed = check_rows(rows, big_corpus, complete=False)
    assert not failed, "an unfinished chunk must leave no row, not an error row"
    assert len(rows) < len(big_corpus.chunks)
    stats = sim.stats()
    check_server(stats, MAX_RETRIES)
    answered = int(stats["responses_by_status"]["200"])
    assert answered >= 16
    # Every answer that arrived was stored and written: nothing finished was lost.
    assert cache_entries(cache) == answered
    assert len({row["request_hash"] for row in ok}) == answered


def test_an_outage_shorter_than_max_outage_loses_nothing(
    sim: SimulatorThread, big_corpus: Corpus, tmp_path: Path
) -> None:
    with Outage(sim, start_after_ok=16, lasting=1.5) as outage:
        result, out, _ = _run(sim, big_corpus, tmp_path, max_outage=30)
    assert outage.ended.is_set()
    assert result.exit_code == 0, result.stderr
    _, failed = check_rows(read_rows(out), big_corpus)
    assert not failed
    stats = sim.stats()
    check_server(stats, MAX_RETRIES)
    assert stats["responses_by_status"]["503"] >= BREAKER_CONSECUTIVE_FAILURES


def test_an_endpoint_back_before_max_outage_is_probed_before_giving_up(
    sim: SimulatorThread, few_corpus: Corpus, tmp_path: Path
) -> None:
    # 500, not 503: the adaptive limit does not shrink, so no request waits for a slot and
    # the breaker alone decides when the next request goes out.
    with Outage(
        sim, status=500, lasting=0.5, end_after_failures=BREAKER_CONSECUTIVE_FAILURES
    ) as outage:
        result, out, _ = _run(sim, few_corpus, tmp_path, max_outage=3)
    assert outage.ended.is_set()
    # The endpoint answered again 2.5 s before --max-outage ran out: the run must finish.
    assert result.exit_code == 0, result.stderr
    _, failed = check_rows(read_rows(out), few_corpus)
    assert not failed


def test_an_open_breaker_stops_sending(
    sim: SimulatorThread, big_corpus: Corpus, tmp_path: Path
) -> None:
    with Outage(sim, start_after_ok=16) as outage:
        result, _, _ = _run(sim, big_corpus, tmp_path, max_outage=3)
    assert outage.started.is_set()
    assert result.exit_code == 3, result.stderr
    stats = sim.stats()
    # Before it opens, the breaker needs its consecutive failures; requests on the wire at
    # that moment may still come back; then nothing but one probe at most (its cooldown is
    # longer than --max-outage here).
    allowed = BREAKER_CONSECUTIVE_FAILURES + int(stats["max_in_flight"]) + 1
    assert stats["responses_by_status"]["503"] <= allowed
