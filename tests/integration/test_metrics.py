"""--metrics-port and --metrics-textfile against the simulator (SPEC §12): the families read
back with prometheus-client's own text parser, equal to what the run's summary reports."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from dscall.simulator import SimulatorThread
from tests.integration.conftest import Workspace, invoke


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(found: dict[str, Any], name: str, **labels: str) -> float:
    for sample in found[name].samples:
        if sample.name.endswith(("_bucket", "_created")):
            continue
        if all(sample.labels.get(k) == v for k, v in labels.items()):
            return float(sample.value)
    raise AssertionError(f"{name} {labels} not found")


def test_the_textfile_holds_what_the_summary_reports(
    sim: SimulatorThread, workspace: Workspace, tmp_path: Path
) -> None:
    textfile = tmp_path / "metrics" / "dscall.prom"
    summary_path = tmp_path / "summary.json"
    result = invoke(
        workspace.args(
            sim, "--metrics-textfile", str(textfile), "--summary-json", str(summary_path),
            "--quiet",
        )
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    found = families(textfile.read_text())
    summary = json.loads(summary_path.read_text())
    for code, count in summary["requests"]["status_counts"].items():
        assert value(found, "dscall_requests", code=code, endpoint="127.0.0.1") == count
    assert value(found, "dscall_retries") == summary["requests"]["retries"]
    tokens = summary["tokens"]
    assert value(found, "dscall_tokens", kind="completion") == tokens["completion"]
    assert value(found, "dscall_tokens", kind="prompt_cache_hit") == tokens["cache_hit"]
    assert value(found, "dscall_tokens", kind="prompt_cache_miss") == tokens["cache_miss"]
    assert abs(value(found, "dscall_cost_usd") - summary["cost_usd"]) < 1e-6
    assert value(found, "dscall_chunks", status="ok") == summary["chunks"]["ok"]
    assert value(found, "dscall_documents", status="seen") == summary["documents"]["seen"]
    latency = found["dscall_request_duration_seconds"]
    counts = {s.labels["le"]: s.value for s in latency.samples if s.name.endswith("_bucket")}
    assert counts["+Inf"] == summary["latency_ms"]["count"] == summary["requests"]["sent"]
    assert list(counts.values()) == sorted(counts.values())  # cumulative buckets
    assert value(found, "dscall_run_exit_code") == 0
    start = value(found, "dscall_run_start_timestamp_seconds")
    assert 0 < start <= value(found, "dscall_run_end_timestamp_seconds") <= time.time()


def test_a_failed_run_still_writes_its_exit_code(
    sim: SimulatorThread, workspace: Workspace, tmp_path: Path
) -> None:
    textfile = tmp_path / "dscall.prom"
    sim.config.api_key = "sk-right"  # the run's key is another: 401, the run stops
    stopped = invoke(workspace.args(sim, "--metrics-textfile", str(textfile), "--no-preflight"))
    assert stopped.exit_code == 3, stopped.stderr
    assert value(families(textfile.read_text()), "dscall_run_exit_code") == 3
    sim.config.api_key = None  # any key again
    empty = tmp_path / "empty"
    empty.mkdir()
    usage = invoke(workspace.args(sim, "--metrics-textfile", str(textfile), inputs=[str(empty)]))
    assert usage.exit_code == 2, usage.stderr
    assert value(families(textfile.read_text()), "dscall_run_exit_code") == 2


def test_the_textfile_never_replaces_an_input(sim: SimulatorThread, workspace: Workspace) -> None:
    victim = next(workspace.corpus.iterdir())
    before = victim.read_bytes()
    result = invoke(workspace.args(sim, "--metrics-textfile", str(victim)))
    assert result.exit_code == 2, result.stderr
    assert victim.read_bytes() == before
    assert sim.stats()["requests_received"] == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_metrics_are_served_while_the_run_lasts(
    sim: SimulatorThread, workspace: Workspace, tmp_path: Path
) -> None:
    sim.config.latency_ms = 150.0
    port = free_port()
    args = workspace.args(
        sim, "--metrics-port", str(port), "--concurrency", "2", "--max-concurrency", "2",
        "--quiet",
    )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "dscall", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        scraped = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                time.sleep(0.05)
                continue
            found = families(text)
            if value(found, "dscall_chunks", status="ok") > 0:
                scraped = found
                break
            time.sleep(0.05)
        assert scraped is not None, "no scrape while the run lasted"
        assert value(scraped, "dscall_run_exit_code") == -1  # still running
        assert value(scraped, "dscall_concurrency_limit") == 2
        assert value(scraped, "dscall_chunks_expected") >= value(
            scraped, "dscall_chunks", status="ok"
        )
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    try:  # the server is gone with the run
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1)
        raise AssertionError("still serving after the run")
    except OSError:
        pass


def test_several_endpoints_are_labelled_each(tmp_path: Path, workspace: Workspace) -> None:
    from dscall.simulator import SimulatorConfig

    textfile = tmp_path / "dscall.prom"
    summary_path = tmp_path / "summary.json"
    with SimulatorThread(SimulatorConfig()) as a, SimulatorThread(SimulatorConfig()) as b:
        args = workspace.args(a, "--metrics-textfile", str(textfile))
        at = args.index("--base-url")
        del args[at : at + 2]
        args += ["--endpoint", f"a={a.base_url}", "--endpoint", f"b={b.base_url}"]
        result = invoke([*args, "--summary-json", str(summary_path), "--quiet"])
    assert result.exit_code == 0, result.stderr
    found = families(textfile.read_text())
    summary = json.loads(summary_path.read_text())
    for name in ("a", "b"):
        figures = summary["endpoints"][name]
        assert value(found, "dscall_requests", endpoint=name, code="200") == figures["ok"]
        assert value(found, "dscall_breaker_state", endpoint=name, state="closed") == 1
        assert value(found, "dscall_breaker_state", endpoint=name, state="open") == 0
        limit = value(found, "dscall_endpoint_concurrency_limit", endpoint=name)
        assert limit == figures["concurrency_limit"]
    assert value(found, "dscall_retries", endpoint="all") == summary["requests"]["retries"]
