"""`dscall process` end to end against the simulator: rows, order, outputs, reports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dscall.output.parquet import read_metadata
from dscall.simulator import SimulatorThread
from tests.conftest import TEST_API_KEY
from tests.integration.conftest import (
    Workspace,
    assert_rows_complete,
    expected_output,
    invoke,
    read_rows,
)


def test_every_chunk_is_one_ok_row_with_its_own_answer(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    result = invoke(workspace.args(sim, "--concurrency", "8"))
    assert result.exit_code == 0, result.stderr
    rows = read_rows(workspace.out)
    assert len(rows) > 12  # several chunks per document
    assert_rows_complete(rows)
    assert {row["status"] for row in rows} == {"ok"}
    for row in rows:
        assert row["output"] == expected_output(row["chunk_text"])
        assert row["prompt_tokens"] > 0
        assert row["model"] == "deepseek-flash"
        if row["cached"]:  # an identical chunk earlier in the run paid for it
            assert row["attempts"] == 0
            assert row["cost_usd"] == 0.0
        else:
            assert row["attempts"] == 1
            assert row["cost_usd"] > 0
    paid = [row for row in rows if not row["cached"]]
    assert len(paid) == len({row["request_hash"] for row in rows})
    stats = sim.stats()
    assert stats["responses_by_status"] == {"200": len(paid)}
    assert stats["max_attempts_per_body"] == 1


def test_order_is_deterministic_whatever_order_calls_finish_in(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    sim.config.latency_ms = 20
    sim.config.jitter = 1.0  # answers come back in a scrambled order
    first = invoke(workspace.args(sim, "--concurrency", "16", "--no-cache"))
    assert first.exit_code == 0, first.stderr
    rows_first = read_rows(workspace.out)
    second = invoke(workspace.args(sim, "--concurrency", "3", "--no-cache"))
    assert second.exit_code == 0, second.stderr
    rows_second = read_rows(workspace.out)
    # Timing differs run to run, and so does the simulated prefix cache (warmer the second time).
    strip = (
        "run_id",
        "latency_ms",
        "started_at",
        "finished_at",
        "cache_hit_tokens",
        "cache_miss_tokens",
        "cost_usd",
    )
    assert [{k: v for k, v in r.items() if k not in strip} for r in rows_first] == [
        {k: v for k, v in r.items() if k not in strip} for r in rows_second
    ]
    assert_rows_complete(rows_first)


def test_samples_folder_processes_every_format(
    sim: SimulatorThread, workspace: Workspace, samples_dir: Path
) -> None:
    result = invoke(workspace.args(sim, inputs=[str(samples_dir)]))
    assert result.exit_code == 0, result.stderr
    rows = read_rows(workspace.out)
    assert {row["doc_type"] for row in rows} == {"pdf", "docx", "txt", "md"}
    assert all(row["status"] == "ok" for row in rows)
    pdf_rows = [row for row in rows if row["doc_type"] == "pdf"]
    assert all(row["page_start"] >= 1 for row in pdf_rows)
    assert all(row["page_start"] is None for row in rows if row["doc_type"] != "pdf")


def test_documents_out_merges_outputs_in_chunk_order(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    docs_out = workspace.root / "docs.parquet"
    result = invoke(workspace.args(sim, "--documents-out", str(docs_out)))
    assert result.exit_code == 0, result.stderr
    rows = read_rows(workspace.out)
    docs = read_rows(docs_out)
    assert [d["doc_path"] for d in docs] == sorted({r["doc_path"] for r in rows})
    for doc in docs:
        mine = [r for r in rows if r["doc_path"] == doc["doc_path"]]
        assert doc["status"] == "ok"
        assert doc["chunk_count"] == len(mine) == doc["chunks_ok"]
        assert doc["output"] == "\n\n".join(r["output"] for r in mine)
        assert doc["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in mine))


def test_summary_json_and_metadata(sim: SimulatorThread, workspace: Workspace) -> None:
    summary = workspace.root / "summary.json"
    result = invoke(workspace.args(sim, "--summary-json", str(summary)))
    assert result.exit_code == 0, result.stderr
    data = json.loads(summary.read_text())
    rows = read_rows(workspace.out)
    assert data["chunks"]["ok"] == len(rows) == data["rows_written"]
    paid = [r for r in rows if not r["cached"]]
    assert data["tokens"]["prompt"] == sum(r["prompt_tokens"] for r in paid)
    assert data["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in rows), abs=1e-6)
    for p in ("p50", "p95", "p99"):
        assert data["latency_ms"][p] is not None
        assert data["latency_ms"][p] >= 0
    assert data["exit_code"] == 0
    assert data["stop_reason"] is None
    meta = read_metadata(workspace.out)
    assert meta["run_id"] == data["run_id"] == rows[0]["run_id"]
    assert meta["settings"]["model"] == "deepseek-flash"
    assert meta["settings"]["chunk_tokens"] == 64


def test_no_text_leaves_the_chunk_text_out(sim: SimulatorThread, workspace: Workspace) -> None:
    result = invoke(workspace.args(sim, "--no-text"))
    assert result.exit_code == 0, result.stderr
    schema = pq.read_schema(str(workspace.out))
    assert "chunk_text" not in schema.names
    assert "output" in schema.names


def test_duplicate_documents_are_called_once(sim: SimulatorThread, workspace: Workspace) -> None:
    for copy in ("copy_a.txt", "copy_b.txt"):
        shutil.copy(workspace.corpus / "doc_0000.txt", workspace.corpus / copy)
    result = invoke(workspace.args(sim, "--no-cache"))
    assert result.exit_code == 0, result.stderr
    rows = read_rows(workspace.out)
    unique = {row["request_hash"] for row in rows}
    assert sim.stats()["requests_received"] == len(unique) < len(rows)
    copies = [r for r in rows if r["doc_path"] in ("copy_a.txt", "copy_b.txt", "doc_0000.txt")]
    paid = [r for r in copies if not r["cached"]]
    assert len(paid) == len(copies) // 3  # one of the three copies paid for each chunk
    assert all(r["status"] == "ok" and r["output"] for r in copies)
    assert all(r["cost_usd"] == 0.0 for r in copies if r["cached"])


def test_json_mode_answers_are_json_objects(sim: SimulatorThread, workspace: Workspace) -> None:
    result = invoke(workspace.args(sim, "--json", "--prompt", "Return a JSON summary of {text}"))
    assert result.exit_code == 0, result.stderr
    for row in read_rows(workspace.out):
        assert isinstance(json.loads(row["output"]), dict)


def test_streaming_gives_the_same_answers(sim: SimulatorThread, workspace: Workspace) -> None:
    result = invoke(workspace.args(sim, "--stream", "--no-cache"))
    assert result.exit_code == 0, result.stderr
    rows = read_rows(workspace.out)
    assert all(row["output"] == expected_output(row["chunk_text"]) for row in rows)
    assert all(row["completion_tokens"] > 0 for row in rows)  # usage from the last event


def test_dry_run_estimates_and_calls_nothing(sim: SimulatorThread, workspace: Workspace) -> None:
    result = invoke(workspace.args(sim, "--dry-run"))
    assert result.exit_code == 0, result.stderr
    assert "dry run" in result.stdout
    assert "total" in result.stdout
    assert sim.stats()["requests_received"] == 0
    assert not workspace.out.exists()


def test_the_key_never_leaves_the_request_header(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    audit = workspace.root / "audit.jsonl"
    docs_out = workspace.root / "docs.parquet"
    summary = workspace.root / "summary.json"
    sim.config.fail = {503: 0.3}  # error paths too
    result = invoke(
        workspace.args(
            sim,
            "--audit-log",
            str(audit),
            "--documents-out",
            str(docs_out),
            "--summary-json",
            str(summary),
            "--max-retries",
            "1",
            "--max-failures",
            "1000",
        )
    )
    assert result.exit_code == 0, result.stderr
    assert TEST_API_KEY not in result.stdout + result.stderr
    for path in [workspace.out, docs_out, audit, summary, *workspace.cache.rglob("*")]:
        if path.is_file():
            assert TEST_API_KEY.encode() not in path.read_bytes(), path
    assert audit.read_text().count("\n") == sim.stats()["requests_received"]


def test_plain_progress_lines_when_stderr_is_not_a_terminal(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    sim.config.latency_ms = 150
    result = invoke(workspace.args(sim, "--concurrency", "2", "--progress-interval", "0.2"))
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "chunks" in line and "req/s" in line]
    assert len(lines) >= 3, result.stderr
    assert "\x1b[" not in result.stderr  # no terminal escapes in a log


def test_quiet_prints_nothing_on_success(sim: SimulatorThread, workspace: Workspace) -> None:
    result = invoke(workspace.args(sim, "--quiet"))
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == ""
