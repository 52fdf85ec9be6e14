"""Several endpoints (SPEC §11) against several simulators on loopback: weights, failover when
one is killed, 429 storms on one, 401 on one, all down, fallbacks, generic endpoints."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dscall.config import (
    CacheSettings,
    CallSettings,
    ChunkSettings,
    EndpointSettings,
    OutputSettings,
    ProcessSettings,
)
from dscall.errors import EXIT_OK, EXIT_STOPPED
from dscall.pipeline.run import RunResult, run_process
from dscall.simulator import SimulatorConfig, SimulatorThread
from dscall.stats import RunStats
from tests.integration.conftest import assert_rows_complete, read_rows, write_corpus


def settings_for(
    tmp: Path, endpoints: list[EndpointSettings], docs: int = 40, **call: Any
) -> ProcessSettings:
    corpus = tmp / "corpus"
    if not corpus.exists():
        write_corpus(corpus, docs=docs)
    return ProcessSettings(
        inputs=(str(corpus),),
        chunk=ChunkSettings(chunk_tokens=64, overlap_tokens=0, tokenizer="estimate"),
        call=CallSettings(endpoints=tuple(endpoints), **call),
        cache=CacheSettings(directory=tmp / "cache"),
        output=OutputSettings(out=tmp / "out.parquet"),
    )


def run(settings: ProcessSettings) -> tuple[RunResult, RunStats, list[str]]:
    stats = RunStats()
    lines: list[str] = []
    result = asyncio.run(run_process(settings, None, stats, lines.append))
    return result, stats, lines


def ok_200(sim: SimulatorThread) -> int:
    return int(sim.stats()["responses_by_status"].get("200", 0))


@pytest.fixture
def two() -> Iterator[tuple[SimulatorThread, SimulatorThread]]:
    config = SimulatorConfig(latency_ms=5)
    with SimulatorThread(config) as a, SimulatorThread(config) as b:
        yield a, b


def test_weights_split_traffic_by_ratio(
    tmp_path: Path, two: tuple[SimulatorThread, SimulatorThread]
) -> None:
    a, b = two
    settings = settings_for(
        tmp_path,
        [
            EndpointSettings("a", a.base_url, weight=3.0),
            EndpointSettings("b", b.base_url, weight=1.0),
        ],
        # Started at the cap: 24 and 8 in flight. (While adaptive limits grow from a lower
        # --concurrency, the split follows each endpoint's limit of the moment.)
        concurrency=32,
        max_concurrency=32,
    )
    result, stats, _ = run(settings)
    assert result.exit_code == EXIT_OK
    rows = read_rows(settings.output.out)
    assert_rows_complete(rows)
    sent_a, sent_b = ok_200(a), ok_200(b)
    paid = [row for row in rows if not row["cached"]]  # the corpus repeats some chunks
    assert sent_a + sent_b == len(paid)  # every distinct request paid once
    assert abs(sent_a / (sent_a + sent_b) - 0.75) <= 0.075, (sent_a, sent_b)
    assert {row["endpoint"] for row in rows} == {"a", "b"}
    assert sum(1 for row in paid if row["endpoint"] == "a") == sent_a
    assert stats.endpoints["a"].ok == sent_a
    assert stats.endpoints["b"].ok == sent_b


def _mock_server_process(*flags: str) -> tuple[subprocess.Popen[str], str]:
    """``dscall mock-server`` in a process of its own (so that it can be killed), its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dscall", "mock-server", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().split()[-1]


def _server_stats(url: str) -> dict[str, Any]:
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url + "/stats", timeout=5) as response:  # noqa: S310 (loopback)
        stats: dict[str, Any] = json.loads(response.read())
    return stats


def _killer(
    servers: list[tuple[subprocess.Popen[str], str]], requests: int, seen: list[dict[str, Any]]
) -> threading.Thread:
    """A thread that SIGKILLs every server once they have received ``requests`` in all (within
    30 s), keeping in ``seen`` their stats at that moment."""

    def kill_when_busy() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stats = [_server_stats(url) for _, url in servers]
            if sum(one["requests_received"] for one in stats) >= requests:
                seen.extend(stats)
                for process, _ in servers:
                    process.send_signal(signal.SIGKILL)  # the process is gone at once
                    process.wait()
                return
            time.sleep(0.005)

    return threading.Thread(target=kill_when_busy)


def test_killed_endpoint_fails_over_and_nothing_is_paid_twice(tmp_path: Path) -> None:
    doomed, doomed_url = _mock_server_process("--latency-ms", "20")
    try:
        with SimulatorThread(SimulatorConfig(latency_ms=20)) as b:
            settings = settings_for(
                tmp_path,
                [EndpointSettings("a", doomed_url), EndpointSettings("b", b.base_url)],
                concurrency=4,
                max_concurrency=8,
            )
            seen: list[dict[str, Any]] = []
            killer = _killer([(doomed, doomed_url)], 20, seen)
            killer.start()
            result, stats, _ = run(settings)
            killer.join()
            assert seen, "the run ended before the endpoint could be killed"
            # What the killed server answered: its count when the killer read it, or what the
            # run received from it, whichever is more (it may answer between the read and the
            # SIGKILL, and those answers were paid too).
            killed_ok = max(
                int(seen[0]["responses_by_status"].get("200", 0)), stats.endpoints["a"].ok
            )
            rows = read_rows(settings.output.out)
            assert_rows_complete(rows)
            assert result.exit_code == EXIT_OK
            assert all(row["status"] == "ok" for row in rows)
            paid = killed_ok + ok_200(b)
            distinct = sum(1 for row in rows if not row["cached"])
            # Answers lost with the killed process (on the wire at the kill: at most its share
            # of --max-concurrency, 4 of 8) may be paid again; nothing else is.
            assert distinct <= paid <= distinct + 4
            assert ok_200(b) > distinct // 2  # the other endpoint took over
            assert stats.endpoints["a"].breaker != "closed"
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait()
        assert doomed.stdout is not None
        doomed.stdout.close()


def test_429_storm_on_one_endpoint_cuts_its_concurrency_only(tmp_path: Path) -> None:
    with (
        SimulatorThread(SimulatorConfig(latency_ms=20, max_concurrency=2, retry_after_s=0)) as a,
        SimulatorThread(SimulatorConfig(latency_ms=20)) as b,
    ):
        settings = settings_for(
            tmp_path,
            [EndpointSettings("a", a.base_url), EndpointSettings("b", b.base_url)],
            docs=60,
            concurrency=16,
            max_concurrency=32,
        )
        result, stats, _ = run(settings)
        assert result.exit_code == EXIT_OK
        rows = read_rows(settings.output.out)
        assert_rows_complete(rows)
        figures_a, figures_b = stats.endpoints["a"], stats.endpoints["b"]
        assert figures_a.throttled > 0
        assert figures_b.throttled == 0
        assert figures_a.concurrency_limit < figures_b.concurrency_limit
        assert figures_b.concurrency_limit >= 8  # where it started: never cut
        assert ok_200(b) > ok_200(a)
        assert ok_200(a) + ok_200(b) == sum(1 for row in rows if not row["cached"])


@pytest.mark.parametrize("preflight", [True, False])
def test_401_on_one_endpoint_disables_it_and_the_run_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preflight: bool
) -> None:
    monkeypatch.setenv("KEY_A", "sk-wrong")
    monkeypatch.setenv("KEY_B", "sk-right")
    with (
        SimulatorThread(SimulatorConfig(api_key="sk-right")) as a,
        SimulatorThread(SimulatorConfig(api_key="sk-right")) as b,
    ):
        settings = settings_for(
            tmp_path,
            [
                EndpointSettings("a", a.base_url, api_key_env="KEY_A"),
                EndpointSettings("b", b.base_url, api_key_env="KEY_B"),
            ],
            docs=10,
        )
        if not preflight:
            from dataclasses import replace

            settings = replace(settings, preflight=False)
        result, stats, lines = run(settings)
        assert result.exit_code == EXIT_OK
        rows = read_rows(settings.output.out)
        assert_rows_complete(rows)
        assert {row["endpoint"] for row in rows} == {"b"}
        disabled = [line for line in lines if "endpoint a disabled" in line]
        assert len(disabled) == 1, lines
        assert "KEY_A" in disabled[0]
        assert "sk-wrong" not in " ".join(lines)
        assert stats.endpoints["a"].disabled is not None


def test_every_endpoint_down_stops_with_exit_3_after_max_outage(tmp_path: Path) -> None:
    with SimulatorThread(SimulatorConfig()) as a, SimulatorThread(SimulatorConfig()) as b:
        urls = a.base_url, b.base_url
    # Both processes are gone: every connection is refused.
    settings = settings_for(
        tmp_path,
        [EndpointSettings("a", urls[0]), EndpointSettings("b", urls[1])],
        docs=4,
        max_outage_s=0.5,
    )
    result, _, _ = run(settings)
    assert result.exit_code == EXIT_STOPPED
    assert "every endpoint is down" in str(result.stop_reason)


def test_fallback_takes_calls_only_while_no_primary_can(tmp_path: Path) -> None:
    config = SimulatorConfig(latency_ms=10)
    with SimulatorThread(config) as primary, SimulatorThread(config) as fallback:
        endpoints = [
            EndpointSettings("main", primary.base_url),
            EndpointSettings("spare", fallback.base_url, priority="fallback"),
        ]
        result, _, _ = run(settings_for(tmp_path / "healthy", endpoints, docs=10))
        assert result.exit_code == EXIT_OK
        assert ok_200(fallback) == 0
        assert ok_200(primary) > 0
        primary.stop()
        result, _, _ = run(settings_for(tmp_path / "primary-down", endpoints, docs=10))
        assert result.exit_code == EXIT_OK
        assert ok_200(fallback) > 0


def test_generic_endpoint_never_receives_thinking(tmp_path: Path) -> None:
    with (
        SimulatorThread(SimulatorConfig()) as deepseek,
        SimulatorThread(
            SimulatorConfig(reject_unknown_fields=True, keep_requests=500, models=("ds-local",))
        ) as generic,
    ):
        settings = settings_for(
            tmp_path,
            [
                EndpointSettings("ds", deepseek.base_url, provider="deepseek"),
                EndpointSettings("vllm", generic.base_url, provider="openai", model="ds-local"),
            ],
            docs=10,
        )
        result, _, _ = run(settings)
        assert result.exit_code == EXIT_OK
        sent = generic.requests()
        assert sent, "the generic endpoint got no calls"
        assert all("thinking" not in body for body in sent)
        assert {body["model"] for body in sent} == {"ds-local"}
        assert generic.stats()["responses_by_status"].get("400", 0) == 0


def test_cache_groups_share_answers_only_when_declared(tmp_path: Path) -> None:
    with SimulatorThread(SimulatorConfig()) as a, SimulatorThread(SimulatorConfig()) as b:
        first = settings_for(tmp_path, [EndpointSettings("a", a.base_url, cache_group="v3")])
        assert run(first)[0].exit_code == EXIT_OK
        paid = ok_200(a)
        assert paid > 0
        # Another host of the same model, in the same group: every answer is reused.
        shared = settings_for(tmp_path, [EndpointSettings("b", b.base_url, cache_group="v3")])
        assert run(shared)[0].exit_code == EXIT_OK
        assert ok_200(b) == 0
        rows = read_rows(shared.output.out)
        assert all(row["cached"] for row in rows)
        assert {row["endpoint"] for row in rows} == {"b"}
        # The same host without the group: its own answer source, so it pays.
        apart = settings_for(tmp_path, [EndpointSettings("b", b.base_url)])
        assert run(apart)[0].exit_code == EXIT_OK
        assert ok_200(b) == paid


def test_adding_an_endpoint_keeps_the_answers_of_the_one_before(tmp_path: Path) -> None:
    with SimulatorThread(SimulatorConfig()) as a, SimulatorThread(SimulatorConfig()) as b:
        single = settings_for(tmp_path, [], base_url=a.base_url)
        assert run(single)[0].exit_code == EXIT_OK
        paid = ok_200(a)
        for order in (["a", "b"], ["b", "a"]):
            urls = {"a": a.base_url, "b": b.base_url}
            both = settings_for(tmp_path, [EndpointSettings(n, urls[n]) for n in order])
            assert run(both)[0].exit_code == EXIT_OK
            assert (ok_200(a), ok_200(b)) == (paid, 0), order
            rows = read_rows(both.output.out)
            assert {row["endpoint"] for row in rows} == {"a"}


def test_models_lists_every_endpoint_with_prices(tmp_path: Path) -> None:
    from tests.integration.conftest import invoke

    with SimulatorThread(SimulatorConfig()) as live, SimulatorThread(SimulatorConfig()) as gone:
        dead = gone.base_url
    with SimulatorThread(SimulatorConfig()) as live:
        result = invoke(["models", "--endpoint", f"ok={live.base_url}", "--endpoint", f"x={dead}"])
    lines = result.stdout.splitlines()
    assert lines[0] == "endpoint\tmodel\tprice (at peak)"
    assert "ok\tdeepseek-flash\t$0.006 hit / $0.3 miss / $1.2 out per M tokens" in result.stdout
    assert "ok\tdeepseek-chat\tno price (cost unknown)" in lines
    assert any(line.startswith("x\t-\terror: cannot reach") for line in lines), lines
    assert result.exit_code == 1


def test_endpoints_from_the_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.conftest import invoke

    monkeypatch.delenv("DSCALL_NO_CONFIG", raising=False)
    monkeypatch.setenv("PRIMARY_KEY", "sk-primary")
    with (
        SimulatorThread(SimulatorConfig(api_key="sk-primary")) as primary,
        SimulatorThread(SimulatorConfig(models=("deepseek-ai/DeepSeek-V3",))) as spare,
    ):
        config = tmp_path / "dscall.toml"
        config.write_text(
            f"""
chunk-tokens = 64
overlap-tokens = 0
tokenizer = "estimate"
cache-dir = "cache"

[[endpoints]]
name = "deepseek"
base_url = "{primary.base_url}"
api_key_env = "PRIMARY_KEY"
weight = 3

[[endpoints]]
name = "vllm"
base_url = "{spare.base_url}"
model = "deepseek-ai/DeepSeek-V3"
provider = "openai"
priority = "fallback"
prices = {{ hit = 0, miss = 0, output = 0 }}
""",
            encoding="utf-8",
        )
        corpus = write_corpus(tmp_path / "corpus", docs=6)
        out = tmp_path / "out.parquet"
        result = invoke(["process", str(corpus), "--out", str(out), "--config", str(config)])
        assert result.exit_code == 0, result.output
        rows = read_rows(out)
        assert {row["endpoint"] for row in rows} == {"deepseek"}
        assert ok_200(spare) == 0  # a fallback, and the primary could take every call
        bad = tmp_path / "bad.toml"
        bad.write_text('[[endpoints]]\nname = "x"\nbase_url = "http://127.0.0.1:9"\nwieght = 2\n')
        result = invoke(["process", str(corpus), "--out", str(out), "--config", str(bad)])
        assert result.exit_code == 2
        message = result.stderr.strip()
        assert "bad.toml:4" in message
        assert "did you mean 'weight'" in message
        assert "\n" not in message


def test_every_endpoint_killed_mid_run_stops_with_what_finished_written(tmp_path: Path) -> None:
    servers = [_mock_server_process("--latency-ms", "20") for _ in range(2)]
    try:
        settings = settings_for(
            tmp_path,
            [EndpointSettings(f"e{n}", url) for n, (_, url) in enumerate(servers)],
            concurrency=4,
            max_concurrency=8,
            max_outage_s=1.0,
        )
        killer = _killer(servers, 30, [])
        killer.start()
        result, _, _ = run(settings)
        killer.join()
        assert result.exit_code == EXIT_STOPPED
        assert "every endpoint is down" in str(result.stop_reason)
        rows = read_rows(settings.output.out)
        answered = [row for row in rows if row["status"] == "ok"]
        assert answered, "the answers received before the outage must be written"
        assert len(rows) < 40 * 4  # the run did stop early
    finally:
        for process, _ in servers:
            if process.poll() is None:
                process.kill()
                process.wait()
            assert process.stdout is not None
            process.stdout.close()


def test_off_peak_wait_from_the_command_line(tmp_path: Path, workspace: Any) -> None:
    from tests.integration.conftest import invoke

    with SimulatorThread(SimulatorConfig()) as sim:
        always_off_peak = tmp_path / "prices.json"
        always_off_peak.write_text(
            json.dumps({"peak_hours": {"windows_utc": [], "off_peak_factor": 0.5}})
        )
        args = workspace.args(sim, "--off-peak", "wait", "--prices", str(always_off_peak))
        result = invoke(args)
        assert result.exit_code == 0, result.stderr  # off-peak now: nothing waits
        assert "off-peak wait" not in result.stderr
        no_hours = tmp_path / "flat.json"
        no_hours.write_text(json.dumps({"peak_hours": None}))
        result = invoke(workspace.args(sim, "--off-peak", "wait", "--prices", str(no_hours)))
        assert result.exit_code == 2
        assert "--off-peak wait needs peak hours" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_calls_in_flight_follow_the_growing_limits(tmp_path: Path) -> None:
    config = SimulatorConfig(latency_ms=30)
    with SimulatorThread(config) as a, SimulatorThread(config) as b:
        settings = settings_for(
            tmp_path,
            [EndpointSettings("a", a.base_url), EndpointSettings("b", b.base_url)],
            concurrency=4,  # 2 each at the start
            max_concurrency=64,
        )
        result, stats, _ = run(settings)
        assert result.exit_code == EXIT_OK
        most = a.stats()["max_in_flight"] + b.stats()["max_in_flight"]
        assert most > 8, most  # the limits grew, and the calls on the wire with them
        assert stats.concurrency_max > 4


def test_one_configured_endpoint_keeps_its_model_profile_and_prices(tmp_path: Path) -> None:
    # One [[endpoints]] table is an endpoint like any other: its model name, its provider
    # profile and its prices hold, as they do when it is one of several.
    with SimulatorThread(
        SimulatorConfig(reject_unknown_fields=True, keep_requests=500, models=("ds-local",))
    ) as local:
        settings = settings_for(
            tmp_path,
            [
                EndpointSettings(
                    "vllm",
                    local.base_url,
                    provider="openai",
                    model="ds-local",
                    prices=(0.0, 0.0, 0.0),
                )
            ],
            docs=6,
        )
        result, stats, _ = run(settings)
        assert result.exit_code == EXIT_OK, result.stop_reason
        sent = local.requests()
        assert sent, "the endpoint got no calls"
        assert {body["model"] for body in sent} == {"ds-local"}
        assert all("thinking" not in body for body in sent)
        rows = read_rows(settings.output.out)
        assert {row["endpoint"] for row in rows} == {"vllm"}
        assert all(row["cost_usd"] == 0.0 for row in rows)  # its own prices, not the table's
        assert stats.cost_usd == 0.0


def test_one_configured_endpoint_that_cannot_be_reached_is_a_usage_error(tmp_path: Path) -> None:
    from dscall.errors import UsageError

    with SimulatorThread(SimulatorConfig()) as gone:
        dead = gone.base_url
    settings = settings_for(tmp_path, [EndpointSettings("only", dead)], docs=2)
    with pytest.raises(UsageError, match=r"endpoint only: .*\(pre-flight check"):
        run(settings)
