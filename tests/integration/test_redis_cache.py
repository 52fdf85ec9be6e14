"""`dscall process --cache-url redis://...` end to end: runs on two "hosts" (separate local cache
dirs, one real redis-server) against the simulator, counted at the simulator: never paid twice,
also at the same time and when one of them is killed; Redis failing at the start or mid-run;
nothing secret in Redis or in anything the run prints or writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
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
from tests.conftest import TEST_API_KEY
from tests.integration.conftest import invoke, read_rows
from tests.redis_server import RedisServer, running_redis

PASSWORD = "hunter2-redis-secret"


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with running_redis(password=PASSWORD) as server:
        yield server


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    return text_corpus(tmp_path / "corpus", docs=12)


def run_on(
    host: str, sim: SimulatorThread, corpus: Corpus, root: Path, url: str | None, *extra: str
) -> list[str]:
    """`dscall process` as run on ``host``: its own output and local cache folder (notes shown:
    no --quiet)."""
    args = process_args(sim, corpus, root / f"{host}.parquet", root / f"cache-{host}", *extra)
    return [arg for arg in args if arg != "--quiet"] + (["--cache-url", url] if url else [])


def test_a_second_host_reads_the_first_hosts_answers_and_keeps_them_locally(
    sim: SimulatorThread, corpus: Corpus, redis_server: RedisServer, tmp_path: Path
) -> None:
    url = redis_server.url
    first = invoke(run_on("a", sim, corpus, tmp_path, url))
    assert first.exit_code == 0, first.stderr
    paid = sim.stats()["requests_received"]
    assert paid == corpus.unique_texts

    sim.reset_stats()
    second = invoke(run_on("b", sim, corpus, tmp_path, url))  # cold local cache, warm Redis
    assert second.exit_code == 0, second.stderr
    assert sim.stats()["requests_received"] == 0
    rows = read_rows(tmp_path / "b.parquet")
    check_rows(rows, corpus)
    assert all(row["cached"] for row in rows)
    metadata = b"".join((pq.read_schema(tmp_path / "b.parquet").metadata or {}).values())
    assert b"redis://:***@127.0.0.1" in metadata  # which Redis served: never its password
    assert PASSWORD.encode() not in metadata

    redis_server.kill()  # b's local cache alone now serves every answer
    third = invoke(run_on("b", sim, corpus, tmp_path, None, "--force"))
    assert third.exit_code == 0, third.stderr
    assert sim.stats()["requests_received"] == 0

    # The Redis password in nothing the runs printed.
    for run in (first, second, third):
        assert PASSWORD not in run.stdout + run.stderr


def test_redis_holds_answers_under_its_prefix_and_no_secret(
    sim: SimulatorThread, corpus: Corpus, redis_server: RedisServer, tmp_path: Path
) -> None:
    result = invoke(run_on("a", sim, corpus, tmp_path, redis_server.url))
    assert result.exit_code == 0, result.stderr
    stored = redis_server.items()
    assert len(stored) == corpus.unique_texts  # answers; every lease was given back
    for key, value in stored.items():
        assert key.startswith(b"dscall:v1:answer:")
        assert TEST_API_KEY.encode() not in key + value
        assert PASSWORD.encode() not in key + value
        assert set(json.loads(value)) >= {"v", "output", "usage"}


def test_two_hosts_at_the_same_time_pay_once_per_request(
    sim: SimulatorThread, corpus: Corpus, redis_server: RedisServer, tmp_path: Path
) -> None:
    sim.config.latency_ms = 500  # seconds of calls each: the runs overlap
    procs = {
        host: start_dscall(
            run_on(host, sim, corpus, tmp_path, redis_server.url, "--concurrency", "4"),
            stderr_path=tmp_path / f"{host}.err",
        )
        for host in ("a", "b")
    }
    for host, proc in procs.items():
        assert proc.wait(timeout=90) == 0, (tmp_path / f"{host}.err").read_text()
    stats = sim.stats()
    assert stats["bodies_paid_more_than_once"] == 0
    assert stats["requests_received"] == corpus.unique_texts
    cached = 0
    for host in procs:
        ok, failed = check_rows(read_rows(tmp_path / f"{host}.parquet"), corpus)
        assert not failed
        cached += sum(1 for row in ok if row["cached"])
    # They ran at the same time: one waited for a request the other had in flight (a run that
    # came second would have found every answer stored).
    waited = [(tmp_path / f"{host}.err").read_text() for host in procs]
    assert any("waiting for its answers instead of paying twice" in err for err in waited)
    # Each answer paid by one host, reused by the other (and by repeated chunks in one run).
    assert cached == 2 * len(corpus.chunks) - corpus.unique_texts


def test_a_host_killed_mid_call_loses_its_leases_and_the_other_takes_over(
    sim: SimulatorThread, corpus: Corpus, redis_server: RedisServer, tmp_path: Path
) -> None:
    sim.config.latency_ms = 3000  # the killed run's requests are all still on the wire
    killed = start_dscall(run_on("a", sim, corpus, tmp_path, redis_server.url))
    assert wait_until(lambda: sim.stats()["in_flight"] > 0, killed)
    holding = {k for k in redis_server.items() if k.startswith(b"dscall:v1:lease:")}
    assert holding
    kill_group(killed)
    in_flight_at_kill = sim.stats()["requests_received"]

    sim.config.latency_ms = 0
    survivor = invoke(run_on("b", sim, corpus, tmp_path, redis_server.url))
    assert survivor.exit_code == 0, survivor.stderr
    ok, failed = check_rows(read_rows(tmp_path / "b.parquet"), corpus)
    assert not failed
    # Paid twice at most for what was on the wire at the kill, never for anything else.
    assert sim.stats()["requests_received"] <= corpus.unique_texts + in_flight_at_kill
    assert len(ok) == len(corpus.chunks)


def test_redis_killed_mid_run_costs_a_warning_and_the_run_completes(
    sim: SimulatorThread, corpus: Corpus, redis_server: RedisServer, tmp_path: Path
) -> None:
    sim.config.latency_ms = 300
    err = tmp_path / "a.err"
    args = run_on("a", sim, corpus, tmp_path, redis_server.url, "--concurrency", "2")
    proc = start_dscall(args, stderr_path=err)
    assert wait_until(lambda: sim.stats()["requests_received"] >= 2, proc)
    redis_server.kill()
    assert proc.wait(timeout=90) == 0, err.read_text()
    warnings = [line for line in err.read_text().splitlines() if "shared cache" in line]
    assert len(warnings) == 1, warnings
    assert "going on with the local cache only" in warnings[0]
    assert PASSWORD not in err.read_text()
    ok, failed = check_rows(read_rows(tmp_path / "a.parquet"), corpus)
    assert not failed
    assert len(ok) == len(corpus.chunks)
    # Every answer reached the local cache: a rerun without Redis pays nothing.
    sim.reset_stats()
    rerun = invoke(run_on("a", sim, corpus, tmp_path, None, "--force"))
    assert rerun.exit_code == 0, rerun.stderr
    assert sim.stats()["requests_received"] == 0


def test_redis_unreachable_at_the_start_is_a_usage_error_naming_the_url(
    sim: SimulatorThread, corpus: Corpus, tmp_path: Path
) -> None:
    with running_redis() as server:
        port = server.port  # free again once it stopped
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    result = invoke(run_on("a", sim, corpus, tmp_path, url))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"redis://:***@127.0.0.1:{port}/0" in lines[0]
    assert PASSWORD not in result.stdout + result.stderr
    assert sim.stats()["requests_received"] == 0


def test_compare_shares_the_tier_too(
    sim: SimulatorThread, corpus: Corpus, redis_server: RedisServer, tmp_path: Path
) -> None:
    short, strict = tmp_path / "short.txt", tmp_path / "strict.txt"
    short.write_text("Summarise in one sentence.\n\n{text}", encoding="utf-8")
    strict.write_text("List the facts, strictly.\n\n{text}", encoding="utf-8")

    def compare_on(host: str) -> list[str]:
        args = ["compare", str(corpus.folder), "--variant", f"short={short}", "--variant"]
        args += [f"strict={strict}", "--sample", "5", "--seed", "7", "--out", str(tmp_path / host)]
        args += ["--base-url", sim.base_url, "--cache-dir", str(tmp_path / f"cache-{host}")]
        return args + [*corpus.chunk_args, "--cache-url", redis_server.url]

    first = invoke(compare_on("a.parquet"))
    assert first.exit_code == 0, first.output
    assert sim.stats()["requests_received"] > 0
    sim.reset_stats()
    second = invoke(compare_on("b.parquet"))  # another host: every answer from Redis
    assert second.exit_code == 0, second.output
    assert sim.stats()["requests_received"] == 0


def test_config_show_hides_the_password_of_the_cache_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSCALL_CACHE_URL", f"redis://:{PASSWORD}@127.0.0.1:6379/0")
    result = invoke(["config", "show"])
    assert result.exit_code == 0, result.output
    assert 'cache-url = "redis://:***@127.0.0.1:6379/0"' in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
