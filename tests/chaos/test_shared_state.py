"""Two dscall processes at once, sharing one --cache-dir and one --audit-log, on overlapping
corpora: no chunk paid for twice (cross-process single flight), no corrupted cache entry (a
third run of each reads every answer back and sends nothing), no interleaved or torn audit line
(each line is one whole JSON object with every field, and there is one per request the endpoint
received).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.corpus import document_text
from dscall.simulator import SimulatorThread
from tests.chaos.conftest import (
    Corpus,
    cache_entries,
    check_rows,
    known_corpus,
    process_args,
    start_dscall,
)
from tests.integration.conftest import invoke, read_rows

AUDIT_FIELDS = {
    "timestamp",
    "run_id",
    "caller",
    "namespace",
    "request_hash",
    "doc_path",
    "chunk_index",
    "step",
    "reask",
    "model",
    "endpoint",
    "endpoint_host",
    "status",
    "attempt",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "cached",
    "error_type",
}
MAX_RETRIES = 8


def _corpus(root: Path, name: str, first: int, count: int) -> Corpus:
    folder = root / name
    folder.mkdir()
    for index in range(first, first + count):
        (folder / f"doc_{index:04d}.txt").write_text(document_text(index, 200), encoding="utf-8")
    return known_corpus(folder, root / f"{name}-chunks.parquet")


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> tuple[Corpus, Corpus]:
    """Documents 0-99 and 50-149: half of each corpus is the other's, byte for byte."""
    root = tmp_path_factory.mktemp("shared")
    return _corpus(root, "alice", 0, 100), _corpus(root, "bob", 50, 100)


def _audit_lines(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the audit log ends in the middle of a line"
    lines = []
    for number, raw in enumerate(data.split(b"\n")[:-1], 1):
        line = json.loads(raw)  # a torn or interleaved line is not JSON
        assert isinstance(line, dict), f"line {number}"
        assert set(line) == AUDIT_FIELDS, f"line {number}: {sorted(set(line) ^ AUDIT_FIELDS)}"
        lines.append(line)
    return lines


def test_two_processes_share_a_cache_and_an_audit_log(
    sim: SimulatorThread, corpora: tuple[Corpus, Corpus], tmp_path: Path
) -> None:
    sim.config.latency_ms = 10
    sim.config.fail = {503: 0.1}  # retries: more attempts, more audit lines, more cache traffic
    cache, audit = tmp_path / "cache", tmp_path / "audit.jsonl"
    runs = {
        name: process_args(
            sim,
            corpus,
            tmp_path / f"{name}.parquet",
            cache,
            "--audit-log",
            str(audit),
            "--caller",
            name,
            "--concurrency",
            "16",
            "--max-retries",
            str(MAX_RETRIES),
        )
        for name, corpus in zip(("alice", "bob"), corpora, strict=True)
    }
    procs = {
        name: start_dscall(args, stderr_path=tmp_path / f"{name}.err")
        for name, args in runs.items()
    }
    for name, proc in procs.items():
        assert proc.wait(timeout=90) == 0, (tmp_path / f"{name}.err").read_text()

    stats = sim.stats()
    # The processes share single flight through the cache's leases: a chunk they have in
    # common is sent by one of them (retried by it, or, if its call failed, by the other).
    assert stats["max_attempts_per_body"] <= 2 * (MAX_RETRIES + 1)
    assert stats["bodies_paid_more_than_once"] == 0
    assert stats["responses_by_status"]["503"] > 0
    hashes: set[str] = set()
    for name, corpus in zip(runs, corpora, strict=True):
        ok, failed = check_rows(read_rows(tmp_path / f"{name}.parquet"), corpus)
        assert not failed
        hashes |= {row["request_hash"] for row in ok}

    lines = _audit_lines(audit)
    assert len(lines) == stats["requests_received"]
    assert {line["caller"] for line in lines} == {"alice", "bob"}
    by_run: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_run.setdefault(line["run_id"], []).append(line)
    assert len(by_run) == 2
    # The two runs really wrote at the same time: their spans of lines overlap.
    spans = sorted((min(map(_ts, run)), max(map(_ts, run))) for run in by_run.values())
    assert spans[1][0] < spans[0][1], spans
    assert {line["request_hash"] for line in lines} == hashes

    # Every answer either process stored is whole: each corpus again, sequentially, pays nothing.
    assert cache_entries(cache) == len(hashes)
    sim.config.fail = {}
    for name, corpus in zip(runs, corpora, strict=True):
        sim.reset_stats()
        result = invoke(runs[name])
        assert result.exit_code == 0, result.stderr
        assert sim.stats()["requests_received"] == 0
        rows = read_rows(tmp_path / f"{name}.parquet")
        check_rows(rows, corpus)
        assert all(row["cached"] for row in rows)
    assert len(_audit_lines(audit)) == len(lines)  # cache hits are not attempts


def _ts(line: dict[str, Any]) -> str:
    return str(line["timestamp"])
