"""The cache is the checkpoint: reruns pay nothing, and any change to the request misses."""

from __future__ import annotations

from dscall.simulator import SimulatorThread
from tests.integration.conftest import Workspace, invoke, read_rows


def _run(sim: SimulatorThread, workspace: Workspace, *extra: str) -> list[dict[str, object]]:
    sim.reset_stats()
    result = invoke(workspace.args(sim, *extra))
    assert result.exit_code == 0, result.stderr
    return read_rows(workspace.out)


def _requests(sim: SimulatorThread) -> int:
    return int(sim.stats()["requests_received"])


def test_second_run_sends_nothing_and_writes_the_same_outputs(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    first = _run(sim, workspace)
    assert _requests(sim) == len({row["request_hash"] for row in first})
    second = _run(sim, workspace)
    assert _requests(sim) == 0
    assert all(row["cached"] and row["attempts"] == 0 for row in second)
    assert [(r["request_hash"], r["output"]) for r in first] == [
        (r["request_hash"], r["output"]) for r in second
    ]
    assert all(row["cost_usd"] == 0.0 for row in second)


def test_namespaces_do_not_share_entries(sim: SimulatorThread, workspace: Workspace) -> None:
    first = _run(sim, workspace, "--namespace", "tenant-a")
    paid = _requests(sim)
    assert paid > 0
    _run(sim, workspace, "--namespace", "tenant-b")
    assert _requests(sim) == paid  # nothing reused across tenants
    again = _run(sim, workspace, "--namespace", "tenant-a")
    assert _requests(sim) == 0
    # The request hash includes the namespace, so the two tenants' rows differ there too.
    assert [r["output"] for r in again] == [r["output"] for r in first]


def test_changing_prompt_or_model_misses_the_cache(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    base = _run(sim, workspace)
    paid = _requests(sim)
    changed_prompt = _run(sim, workspace, "--prompt", "List the key facts in {text}")
    assert _requests(sim) == paid
    assert {r["request_hash"] for r in changed_prompt}.isdisjoint(r["request_hash"] for r in base)
    _run(sim, workspace, "--model", "deepseek-v4-pro")
    assert _requests(sim) == paid
    _run(sim, workspace, "--max-tokens", "100")
    assert _requests(sim) == paid
    _run(sim, workspace)  # back to the first settings: all cached
    assert _requests(sim) == 0


def test_refresh_and_no_cache(sim: SimulatorThread, workspace: Workspace) -> None:
    _run(sim, workspace)
    paid = _requests(sim)
    _run(sim, workspace, "--refresh")
    assert _requests(sim) == paid
    _run(sim, workspace, "--no-cache")
    assert _requests(sim) == paid
    _run(sim, workspace)
    assert _requests(sim) == 0


def test_streamed_and_plain_runs_share_the_cache(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    _run(sim, workspace, "--stream")
    assert _requests(sim) > 0
    rows = _run(sim, workspace)
    assert _requests(sim) == 0
    assert all(row["cached"] for row in rows)


def test_failures_are_not_cached(sim: SimulatorThread, workspace: Workspace) -> None:
    sim.config.fail = {400: 1.0}  # every request rejected: a permanent, per-chunk failure
    sim.reset_stats()
    result = invoke(workspace.args(sim))
    assert result.exit_code == 1
    rows = read_rows(workspace.out)
    assert rows
    assert all(r["status"] == "error" and r["error_type"] == "PermanentCallError" for r in rows)
    assert sim.stats()["max_attempts_per_body"] == 1  # 400 is never retried
    sim.config.fail = {}
    healed = _run(sim, workspace)
    assert _requests(sim) > 0
    assert all(r["status"] == "ok" for r in healed)
