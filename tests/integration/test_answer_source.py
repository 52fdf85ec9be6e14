"""Who answered is part of the cache key: simulator answers never serve a real endpoint, and one
endpoint's answers never serve another's (SPEC §5)."""

from __future__ import annotations

import json
from pathlib import Path

from dscall.simulator import SimulatorConfig, SimulatorThread
from tests.integration.conftest import Workspace, invoke, read_rows


def _mock_args(workspace: Workspace, summary: Path) -> list[str]:
    return [
        "process",
        str(workspace.corpus),
        "--out",
        str(workspace.out),
        "--cache-dir",
        str(workspace.cache),
        "--chunk-tokens",
        "64",
        "--overlap-tokens",
        "0",
        "--tokenizer",
        "estimate",
        "--summary-json",
        str(summary),
        "--mock",
        "--preview",
        "0",
    ]


def _sent(summary: Path) -> int:
    figures = json.loads(summary.read_text())
    return int(figures["requests"]["sent"])


def test_simulator_answers_do_not_serve_a_real_endpoint(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    summary = workspace.root / "summary.json"
    first = invoke(_mock_args(workspace, summary))
    assert first.exit_code == 0, first.stderr
    chunks = len(read_rows(workspace.out))
    assert _sent(summary) > 0
    # --mock listens on a new port each time, yet its answers are found again.
    again = invoke(_mock_args(workspace, summary))
    assert again.exit_code == 0, again.stderr
    assert _sent(summary) == 0
    # Another endpoint with the same cache and the same requests: nothing is served from the
    # simulator's answers; every distinct request is sent.
    real = invoke(workspace.args(sim, "--summary-json", str(summary)))
    assert real.exit_code == 0, real.stderr
    rows = read_rows(workspace.out)
    assert len(rows) == chunks
    unique = len({row["request_hash"] for row in rows})
    assert sim.stats()["requests_received"] == unique
    assert not any(row["cached"] and row["cost_usd"] for row in rows)


def test_one_endpoint_does_not_serve_another(sim: SimulatorThread, workspace: Workspace) -> None:
    first = invoke(workspace.args(sim))
    assert first.exit_code == 0, first.stderr
    hashes = {row["request_hash"] for row in read_rows(workspace.out)}
    with SimulatorThread(SimulatorConfig()) as other:
        second = invoke(workspace.args(other))
        assert second.exit_code == 0, second.stderr
        assert other.stats()["requests_received"] == len(hashes)
    assert not hashes & {row["request_hash"] for row in read_rows(workspace.out)}


def test_the_same_endpoint_spelt_differently_is_one_answer_source(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    first = invoke(workspace.args(sim))
    assert first.exit_code == 0, first.stderr
    sim.reset_stats()
    args = workspace.args(sim)
    at = args.index("--base-url") + 1
    args[at] = args[at].replace("http://", "HTTP://") + "/"
    second = invoke(args)
    assert second.exit_code == 0, second.stderr
    assert sim.stats()["requests_received"] == 0
    assert all(row["cached"] for row in read_rows(workspace.out))
