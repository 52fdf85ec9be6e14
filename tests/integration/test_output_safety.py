"""No file of the user's is replaced by accident; usage errors come before anything is paid for
and before any progress line; the output's metadata says how the run ended."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dscall.config import DEFAULT_SYSTEM_PROMPT
from dscall.output.parquet import read_metadata
from dscall.simulator import SimulatorThread, expected_answer
from tests.integration.conftest import Workspace, invoke, read_rows


def _refused(result: object, *words: str) -> str:
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert result.exit_code == 2, stderr  # type: ignore[attr-defined]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr  # one line, and no progress line before it
    assert lines[0].startswith("error:")
    for word in words:
        assert word in lines[0]
    return lines[0]


def test_out_naming_an_input_document_is_refused_and_the_input_kept(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    notes = workspace.corpus / "doc_0000.txt"
    before = notes.read_bytes()
    result = invoke([*workspace.args(sim), "--out", str(notes)])
    _refused(result, ".parquet")
    assert notes.read_bytes() == before
    assert sim.stats()["requests_received"] == 0


@pytest.mark.parametrize("name", ["r.csv", "-", "results.parquet.bak"])
def test_out_must_end_in_parquet(sim: SimulatorThread, workspace: Workspace, name: str) -> None:
    result = invoke([*workspace.args(sim), "--out", str(workspace.root / name)])
    _refused(result, "--out", ".parquet")
    assert not (workspace.root / name).exists()
    assert sim.stats()["requests_received"] == 0


@pytest.mark.parametrize("option", ["--audit-log", "--summary-json"])
def test_audit_log_or_summary_naming_an_input_is_refused_even_with_force(
    sim: SimulatorThread, workspace: Workspace, option: str
) -> None:
    notes = workspace.corpus / "doc_0003.txt"
    before = notes.read_bytes()
    result = invoke([*workspace.args(sim), option, str(notes), "--force"])
    _refused(result, option, "input document")
    assert notes.read_bytes() == before
    assert sim.stats()["requests_received"] == 0


def test_a_symlink_to_an_input_is_the_input(sim: SimulatorThread, workspace: Workspace) -> None:
    link = workspace.root / "audit.jsonl"
    link.symlink_to(workspace.corpus / "doc_0001.txt")
    before = (workspace.corpus / "doc_0001.txt").read_bytes()
    result = invoke([*workspace.args(sim), "--audit-log", str(link), "--force"])
    _refused(result, "--audit-log", "input document")
    assert (workspace.corpus / "doc_0001.txt").read_bytes() == before


def test_an_audit_log_inside_the_input_folder_would_be_read_as_a_document(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    result = invoke([*workspace.args(sim), "--audit-log", str(workspace.corpus / "audit.txt")])
    _refused(result, "inside the input folder")
    assert not (workspace.corpus / "audit.txt").exists()


def test_an_existing_file_that_is_not_a_dscall_output_is_kept_unless_force(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    workspace.out.parent.mkdir(parents=True)
    workspace.out.write_bytes(b"someone else's data")
    result = invoke(workspace.args(sim))
    _refused(result, "not a dscall output", "--force")
    assert workspace.out.read_bytes() == b"someone else's data"
    assert sim.stats()["requests_received"] == 0
    forced = invoke([*workspace.args(sim), "--force"])
    assert forced.exit_code == 0, forced.stderr
    assert read_rows(workspace.out)


def test_a_parquet_file_dscall_did_not_write_is_kept(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    import pyarrow as pa

    workspace.out.parent.mkdir(parents=True)
    pq.write_table(pa.table({"x": [1, 2, 3]}), str(workspace.out))
    before = workspace.out.read_bytes()
    _refused(invoke(workspace.args(sim)), "not a dscall output")
    assert workspace.out.read_bytes() == before


def test_a_previous_dscall_output_is_replaced(sim: SimulatorThread, workspace: Workspace) -> None:
    first = invoke(workspace.args(sim))
    assert first.exit_code == 0, first.stderr
    second = invoke(workspace.args(sim, "--prompt", "Key facts: {text}"))
    assert second.exit_code == 0, second.stderr
    assert read_metadata(workspace.out)["run_id"] != ""


def test_an_existing_non_dscall_audit_log_is_not_appended_to(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    diary = workspace.root / "diary.jsonl"
    diary.write_text('{"entry": "dear diary"}\n')
    _refused(invoke(workspace.args(sim, "--audit-log", str(diary))), "not a dscall audit log")
    assert diary.read_text() == '{"entry": "dear diary"}\n'
    # One of dscall's own audit logs is appended to, run after run.
    audit = workspace.root / "audit.jsonl"
    for _ in range(2):
        result = invoke(workspace.args(sim, "--audit-log", str(audit), "--refresh"))
        assert result.exit_code == 0, result.stderr
    runs = {json.loads(line)["run_id"] for line in audit.read_text().splitlines()}
    assert len(runs) == 2


def test_out_and_documents_out_must_differ(sim: SimulatorThread, workspace: Workspace) -> None:
    result = invoke(workspace.args(sim, "--documents-out", str(workspace.out)))
    _refused(result, "same file")


def test_summary_json_dash_writes_to_stdout(sim: SimulatorThread, workspace: Workspace) -> None:
    result = invoke(workspace.args(sim, "--summary-json", "-", "--quiet"))
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["exit_code"] == 0
    assert summary["complete"] is True
    assert summary["rows_written"] == len(read_rows(workspace.out))
    assert not Path("-").exists()


def test_an_unknown_placeholder_is_a_usage_error_before_anything_is_sent(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    line = _refused(invoke(workspace.args(sim, "--prompt", "Summarise: {txt}")), "{txt}")
    assert "{text}" in line  # the known ones are listed
    assert sim.stats()["requests_received"] == 0
    assert not workspace.out.exists()


def test_braces_that_are_not_placeholders_stay_literal(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    template = 'Answer as {"summary": "..."} and keep {{txt}} as written: {text}'
    result = invoke(workspace.args(sim, "--prompt", template, "--no-cache"))
    assert result.exit_code == 0, result.stderr
    row = read_rows(workspace.out)[0]
    # The simulator's answer is a hash of exactly what it was sent.
    sent = 'Answer as {"summary": "..."} and keep {txt} as written: ' + row["chunk_text"]
    assert row["output"] == expected_answer(
        [
            {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
            {"role": "user", "content": sent},
        ]
    )


def test_unreachable_endpoint_at_preflight_is_exit_2_without_progress_line(
    workspace: Workspace,
) -> None:
    args = [
        sys.executable,
        "-m",
        "dscall",
        "process",
        str(workspace.corpus),
        "--out",
        str(workspace.out),
        "--base-url",
        "http://127.0.0.1:9",
        "--cache-dir",
        str(workspace.cache),
    ]
    proc = subprocess.run(
        args, capture_output=True, text=True, timeout=60, env={**os.environ}, check=False
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr  # no "[0:00:00] done: ..." line first
    assert "cannot reach 127.0.0.1" in lines[0]
    assert "--no-preflight" in lines[0]
    assert not workspace.out.exists()


def test_metadata_of_a_complete_run_is_plain_json(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    result = invoke(workspace.args(sim))
    assert result.exit_code == 0, result.stderr
    raw = pq.read_metadata(str(workspace.out)).metadata[b"dscall"]
    meta = json.loads(raw)  # one json.loads, no JSON inside JSON
    rows = read_rows(workspace.out)
    assert meta["complete"] is True
    assert meta["stop_reason"] is None
    assert meta["exit_code"] == 0
    assert meta["rows_by_status"] == {"ok": len(rows)}
    assert meta["chunks_not_sent"] == 0
    assert meta["run_id"] == rows[0]["run_id"]
    assert isinstance(meta["settings"], dict)
    assert meta["settings"]["chunk_tokens"] == 64


def test_metadata_of_a_stopped_run_says_it_is_incomplete(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    result = invoke(
        workspace.args(sim, "--budget-usd", "0.0004", "--max-tokens", "50", "--concurrency", "1")
    )
    assert result.exit_code == 3, result.stderr
    meta = read_metadata(workspace.out)
    assert meta["complete"] is False
    assert "budget" in meta["stop_reason"]
    assert meta["exit_code"] == 3
    rows = read_rows(workspace.out)
    assert sum(meta["rows_by_status"].values()) == len(rows)
    assert meta["chunks_not_sent"] > 0


def test_chunks_refuses_the_same_outputs(workspace: Workspace) -> None:
    notes = workspace.corpus / "doc_0000.txt"
    before = notes.read_bytes()
    _refused(invoke(["chunks", str(notes), "--out", str(notes)]), ".parquet")
    assert notes.read_bytes() == before
    other = workspace.root / "other.parquet"
    other.write_bytes(b"not ours")
    _refused(invoke(["chunks", str(workspace.corpus), "--out", str(other)]), "--force")
    assert other.read_bytes() == b"not ours"
    forced = invoke(["chunks", str(workspace.corpus), "--out", str(other), "--force", "-q"])
    assert forced.exit_code == 0, forced.stderr
    assert read_rows(other)
