"""Provider profiles end to end: a generic (openai) endpoint that rejects unknown fields, as
OpenAI and a LiteLLM proxy do, never receives ``thinking``; sending it anyway stops the run at
the first 400 with one line that says how to turn it off."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pyarrow.parquet as pq
import pytest

from dscall.simulator import SimulatorConfig, SimulatorThread
from tests.integration.conftest import Workspace, invoke, read_rows

CHAT_LIMIT = 1000


@pytest.fixture
def generic() -> Iterator[SimulatorThread]:
    """A simulator that answers like a generic OpenAI-compatible endpoint."""
    config = SimulatorConfig(reject_unknown_fields=True, keep_requests=CHAT_LIMIT)
    with SimulatorThread(config) as running:
        yield running


def test_an_openai_endpoint_never_receives_thinking(
    generic: SimulatorThread, workspace: Workspace
) -> None:
    summary = workspace.root / "summary.json"
    args = ["--provider", "openai", "--thinking", "--summary-json", str(summary)]
    result = invoke(workspace.args(generic, *args))
    assert result.exit_code == 0, result.stderr
    assert "--thinking is not sent" in result.stderr
    rows = read_rows(workspace.out)
    assert rows
    assert all(row["status"] == "ok" for row in rows)
    bodies = generic.requests()
    # Chunks with the same text are one request (single flight).
    assert 0 < len(bodies) == generic.stats()["requests_received"] <= len(rows)
    assert all("thinking" not in body for body in bodies)
    stats = generic.stats()
    assert set(stats["responses_by_status"]) == {"200"}
    assert stats["other_requests"] == 1  # GET /models; an openai endpoint has no balance call
    # Cached tokens come from prompt_tokens_details (the simulator reports both shapes).
    assert sum(row["cache_hit_tokens"] for row in rows) > 0
    meta = json.loads(pq.read_metadata(str(workspace.out)).metadata[b"dscall"])
    assert meta["provider"] == "openai"  # the profile used
    assert meta["settings"]["provider"] == "openai"  # what was asked
    assert json.loads(summary.read_text("utf-8"))["provider"] == "openai"


@pytest.mark.parametrize("provider", [[], ["--provider", "deepseek"]], ids=["auto", "deepseek"])
def test_thinking_sent_to_a_generic_endpoint_stops_the_run_at_the_first_400(
    generic: SimulatorThread, workspace: Workspace, provider: list[str]
) -> None:
    # A loopback host detects as deepseek (the simulator): a local proxy is told, on the
    # first answer, which option to pass.
    result = invoke(workspace.args(generic, *provider, "--concurrency", "2", "--no-cache"))
    assert result.exit_code == 3, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("stopped:")]
    assert len(lines) == 1, result.stderr
    assert "parameter 'thinking'" in lines[0]
    assert "--provider openai" in lines[0]
    assert "does not support parameters" in lines[0]  # the server's own words follow
    stats = generic.stats()
    sent = stats["requests_received"]
    assert 1 <= sent <= 4  # the requests already on the wire when the first 400 came back
    assert stats["responses_by_status"] == {"400": sent}
    assert all("thinking" in body for body in generic.requests())


def test_process_and_compare_both_take_provider() -> None:
    for command in ("process", "compare"):
        result = invoke([command, "--help"])
        assert result.exit_code == 0
        assert "--provider" in result.stdout, command
        assert "auto" in result.stdout


def test_compare_sends_an_openai_endpoint_standard_fields_only(
    generic: SimulatorThread, workspace: Workspace
) -> None:
    short, facts = workspace.root / "short.txt", workspace.root / "facts.txt"
    short.write_text("Summarise in one sentence.\n\n{text}", encoding="utf-8")
    facts.write_text("List the facts.\n\n{text}", encoding="utf-8")
    args = [
        "compare",
        str(workspace.corpus),
        "--variant",
        f"short={short}",
        "--variant",
        f"facts={facts}",
        "--sample",
        "4",
        "--out",
        str(workspace.out),
        "--base-url",
        generic.base_url,
        "--provider",
        "openai",
        "--cache-dir",
        str(workspace.cache),
        "--chunk-tokens",
        "64",
        "--overlap-tokens",
        "0",
        "--tokenizer",
        "estimate",
    ]
    result = invoke(args)
    assert result.exit_code == 0, result.stderr
    bodies = generic.requests()
    assert bodies
    assert all("thinking" not in body for body in bodies)
    assert set(generic.stats()["responses_by_status"]) == {"200"}
