"""Incremental reruns end to end (SPEC §14): the manifest in the cache folder lets a rerun hand
on unchanged files without reading them; only changed files are read, and only their requests
reach the simulator. Files get an mtime an hour back, as a folder a cron job rereads has: a
file modified just before it is read is not remembered (documents/manifest.py)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dscall.documents.manifest import MANIFEST_NAME
from dscall.simulator import SimulatorThread
from tests.integration.conftest import assert_rows_complete, invoke, read_rows

FILES = 300
HOUR_NS = 3600 * 10**9


def _write(path: Path, text: str, age_hours: float = 1.0) -> None:
    path.write_text(text, encoding="utf-8")
    then = time.time_ns() - int(age_hours * HOUR_NS)
    os.utime(path, ns=(then, then))


def _corpus(folder: Path, files: int = FILES) -> Path:
    folder.mkdir(parents=True)
    for n in range(files):
        _write(folder / f"doc_{n:04d}.txt", f"Document {n}. The board approved budget {n}.")
    return folder


def _args(tmp: Path, sim: SimulatorThread, *extra: str) -> list[str]:
    return [
        "process",
        str(tmp / "corpus"),
        "--out",
        str(tmp / "results.parquet"),
        "--base-url",
        sim.base_url,
        "--cache-dir",
        str(tmp / "cache"),
        "--tokenizer",
        "estimate",
        "--summary-json",
        str(tmp / "summary.json"),
        "--force",
        "--quiet",
        *extra,
    ]


def _run(tmp: Path, sim: SimulatorThread, *extra: str) -> tuple[dict[str, Any], int]:
    """One run: its summary and the requests the simulator received."""
    sim.reset_stats()
    result = invoke(_args(tmp, sim, *extra))
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads((tmp / "summary.json").read_text())
    return summary, int(sim.stats()["requests_received"])


def test_a_rerun_reads_and_sends_only_what_changed(sim: SimulatorThread, tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    first, sent = _run(tmp_path, sim)
    assert (first["documents"]["from_manifest"], sent) == (0, FILES)

    changed = [3, 77, 150, 151, 299]
    for n in changed:  # new bytes: read again, and their new requests paid for
        _write(corpus / f"doc_{n:04d}.txt", f"Document {n} was rewritten with new figures.")
    touched = [10, 200]
    for n in touched:  # same bytes, another mtime: read again, answered from the cache
        path = corpus / f"doc_{n:04d}.txt"
        os.utime(path, ns=(path.stat().st_mtime_ns - 10**9,) * 2)

    second, sent = _run(tmp_path, sim)
    assert second["documents"]["seen"] == FILES
    assert second["documents"]["from_manifest"] == FILES - len(changed) - len(touched)
    assert sent == len(changed)
    assert second["chunks"]["cached"] == FILES - len(changed)
    rows = read_rows(tmp_path / "results.parquet")
    assert_rows_complete(rows)
    assert [r["status"] for r in rows] == ["ok"] * FILES
    assert "rewritten" in rows[77]["chunk_text"]
    assert rows[76]["chunk_text"] == "Document 76. The board approved budget 76."

    third, sent = _run(tmp_path, sim)  # everything remembered now, the rewritten files too
    assert (third["documents"]["from_manifest"], sent) == (FILES, 0)
    same = ("doc_path", "doc_id", "chunk_index", "char_end", "chunk_text", "output")
    recalled = read_rows(tmp_path / "results.parquet")
    assert [[r[k] for k in same] for r in recalled] == [[r[k] for k in same] for r in rows]


@pytest.mark.slow
def test_the_issues_case_10000_cached_files_with_100_changed(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    files = 10_000
    corpus = _corpus(tmp_path / "corpus", files)
    _, sent = _run(tmp_path, sim, "--concurrency", "64")
    assert sent == files
    changed = range(37, files, files // 100)
    for n in changed:
        _write(corpus / f"doc_{n:04d}.txt", f"Document {n} was rewritten with new figures.")
    second, sent = _run(tmp_path, sim, "--concurrency", "64")
    # Extracted again: exactly the 100 changed files (the rest handed on from the manifest).
    assert second["documents"]["seen"] - second["documents"]["from_manifest"] == len(changed)
    assert sent == len(changed) == 100
    assert second["chunks"]["cached"] == files - 100


def test_other_chunk_settings_and_refresh_read_every_file(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    _corpus(tmp_path / "corpus", files=40)
    _run(tmp_path, sim)
    remembered, _ = _run(tmp_path, sim)
    assert remembered["documents"]["from_manifest"] == 40

    other, _ = _run(tmp_path, sim, "--chunk-tokens", "500")
    assert other["documents"]["from_manifest"] == 0

    refreshed, sent = _run(tmp_path, sim, "--refresh")
    assert (refreshed["documents"]["from_manifest"], sent) == (0, 40)

    uncached, sent = _run(tmp_path, sim, "--no-cache")
    assert (uncached["documents"]["from_manifest"], sent) == (0, 40)
    again, sent = _run(tmp_path, sim)  # --refresh remembered them afresh
    assert (again["documents"]["from_manifest"], sent) == (40, 0)


def test_a_corrupt_manifest_entry_is_read_again_with_one_warning(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    _corpus(tmp_path / "corpus", files=30)
    _run(tmp_path, sim)
    db = sqlite3.connect(tmp_path / "cache" / MANIFEST_NAME)
    with db:
        db.execute("UPDATE documents SET entry = ?", (b"\x78junk",))
    db.close()
    sim.reset_stats()
    arguments = [a for a in _args(tmp_path, sim) if a != "--quiet"]
    result = invoke(arguments)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "manifest entry" in line]
    assert len(warnings) == 1
    assert "corrupt" in warnings[0]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["documents"]["from_manifest"] == 0
    assert sim.stats()["requests_received"] == 0  # read again, answered from the cache
    again, _ = _run(tmp_path, sim)  # and rewritten
    assert again["documents"]["from_manifest"] == 30


def test_kill_9_mid_run_leaves_a_usable_manifest(sim: SimulatorThread, tmp_path: Path) -> None:
    _corpus(tmp_path / "corpus")
    sim.config.latency_ms = 50
    command = [sys.executable, "-m", "dscall", *_args(tmp_path, sim, "--concurrency", "2")]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = tmp_path / "cache" / MANIFEST_NAME
    try:
        while _entries(manifest) < 20:  # some batches committed, the run still going
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    db = sqlite3.connect(manifest)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        db.close()
    sim.config.latency_ms = 0
    rerun, sent = _run(tmp_path, sim)
    assert rerun["documents"]["from_manifest"] >= 20
    assert sent <= FILES - rerun["chunks"]["cached"]
    assert rerun["chunks"]["ok"] == FILES
    assert_rows_complete(read_rows(tmp_path / "results.parquet"))


def _entries(path: Path) -> int:
    if not path.exists():
        return 0
    db = sqlite3.connect(path, timeout=5)
    try:
        row = db.execute("SELECT count(*) FROM documents").fetchone()
    except sqlite3.OperationalError:  # the table is not created yet
        return 0
    finally:
        db.close()
    return int(row[0])
