"""The audit log: line content, buffering, permissions, failures, and two appending processes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from dscall.errors import UsageError
from dscall.output.audit import AuditLog, default_caller
from tests.conftest import TEST_API_KEY

REPO = Path(__file__).resolve().parents[2]
FIELDS = [
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
]


def attempt(log: AuditLog, i: int = 0, **overrides: Any) -> None:
    values: dict[str, Any] = {
        "request_hash": f"{i:064x}",
        "doc_path": "reports/q3 [draft].pdf",
        "chunk_index": i,
        "model": "deepseek-flash",
        "status": 200,
        "attempt": 1,
        "latency_ms": 812.3456789,
        "prompt_tokens": 900,
        "completion_tokens": 120,
        "cached": False,
        "error_type": None,
    }
    values.update(overrides)
    log.record(**values)


def open_log(path: Path, **kwargs: Any) -> AuditLog:
    return AuditLog(
        path,
        run_id="run-1",
        caller="ann@host",
        namespace="team-a",
        endpoint_host="api.deepseek.com",
        **kwargs,
    )


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_one_line_per_attempt_with_every_field(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    before = datetime.now(timezone.utc)
    with open_log(path) as log:
        attempt(log, 0)
        attempt(log, 1, status=429, attempt=2, error_type="HTTPStatusError", prompt_tokens=0)
        attempt(log, 2, status=None, error_type="TransportError", cached=False)
    lines = read_lines(path)
    assert len(lines) == 3
    first, second, third = lines
    assert list(first) == FIELDS
    assert first["run_id"] == "run-1"
    assert first["caller"] == "ann@host"
    assert first["namespace"] == "team-a"
    assert first["endpoint_host"] == "api.deepseek.com"
    assert first["doc_path"] == "reports/q3 [draft].pdf"
    assert first["latency_ms"] == 812.345
    assert (first["status"], first["attempt"], first["error_type"]) == (200, 1, None)
    assert (second["status"], second["attempt"], second["error_type"]) == (
        429,
        2,
        "HTTPStatusError",
    )
    assert third["status"] is None
    stamp = datetime.fromisoformat(first["timestamp"].replace("Z", "+00:00"))
    assert stamp.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= stamp <= datetime.now(timezone.utc)


def test_never_the_key_nor_the_text(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with open_log(path) as log:
        attempt(log)
    content = path.read_text()
    assert TEST_API_KEY not in content
    assert "Bearer" not in content
    assert set(read_lines(path)[0]) == set(FIELDS)  # no field could carry text or output


def test_control_characters_in_paths_stay_inside_the_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with open_log(path) as log:
        attempt(log, doc_path='evil\n{"forged": 1}\x1b[2J.pdf')
    raw = path.read_bytes()
    assert raw.count(b"\n") == 1
    assert b"\x1b" not in raw
    assert read_lines(path)[0]["doc_path"] == 'evil\n{"forged": 1}\x1b[2J.pdf'


def test_lines_wait_in_the_buffer_until_flush(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = open_log(path, flush_interval_s=3600, buffer_bytes=1 << 20)
    try:
        attempt(log)
        attempt(log, 1)
        assert path.read_bytes() == b""
        log.flush()
        assert len(read_lines(path)) == 2
        attempt(log, 2)
        assert len(read_lines(path)) == 2
    finally:
        log.close()
    assert len(read_lines(path)) == 3
    assert log.lines_written == 3


def test_full_buffer_is_written_in_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with open_log(path, flush_interval_s=3600, buffer_bytes=2000) as log:
        written = []
        for i in range(20):
            attempt(log, i)
            content = path.read_bytes()
            assert content == b"" or content.endswith(b"\n")  # never half a line
            written.append(content.count(b"\n"))
        assert written[0] == 0  # one line does not fill the buffer
        assert written[-1] > 0  # twenty do, long before close
    assert [line["chunk_index"] for line in read_lines(path)] == list(range(20))


def test_interval_passed_writes_at_the_next_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with open_log(path, flush_interval_s=0.0) as log:
        attempt(log)
        assert len(read_lines(path)) == 1


def test_appends_to_an_existing_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with open_log(path) as log:
        attempt(log, 0)
    with open_log(path) as log:
        attempt(log, 1)
    assert [line["chunk_index"] for line in read_lines(path)] == [0, 1]


def test_created_owner_only_despite_loose_umask(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "audit.jsonl"  # the folder is created too
    old = os.umask(0)
    try:
        with open_log(path) as log:
            attempt(log)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_unwritable_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot write the audit log"):
        open_log(tmp_path)  # a folder
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="cannot write the audit log"):
        open_log(blocker / "audit.jsonl")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_failed_writes_are_reported_at_close() -> None:
    log = open_log(Path("/dev/full"), flush_interval_s=3600)
    attempt(log)
    attempt(log, 1)
    log.flush()  # ENOSPC: counted, not raised into the run
    assert log.lines_lost == 2
    attempt(log, 2)
    with pytest.raises(UsageError, match="3 line"):
        log.close()


def test_default_caller_is_user_at_host() -> None:
    user, _, host = default_caller().partition("@")
    assert user
    assert host


APPENDER = """
import sys, time
from pathlib import Path
from dscall.output.audit import AuditLog
path, me, other, n = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
(path.parent / f"ready-{me}").touch()
deadline = time.monotonic() + 60
while not (path.parent / f"ready-{other}").exists():
    if time.monotonic() > deadline:
        sys.exit("the other writer never started")
    time.sleep(0.001)
# A small buffer: hundreds of separate appends from each process, racing.
with AuditLog(path, me, "w@h", "ns", "host", flush_interval_s=3600, buffer_bytes=4096) as log:
    for i in range(n):
        log.record(request_hash="h" * 64, doc_path=f"{me}/" + "d" * (i % 300), chunk_index=i,
                   model="m", status=200, attempt=1, latency_ms=1.0, prompt_tokens=i,
                   completion_tokens=0, cached=False, error_type=None)
"""


def test_two_processes_never_tear_lines(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    n = 20_000
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(APPENDER), str(path), me, other, str(n)],
            cwd=REPO,
            stderr=subprocess.PIPE,
        )
        for me, other in (("a", "b"), ("b", "a"))
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=100)
        assert proc.returncode == 0, err.decode()
    lines = read_lines(path)  # every line parses
    assert len(lines) == 2 * n
    for run in ("a", "b"):
        indexes = [line["chunk_index"] for line in lines if line["run_id"] == run]
        assert indexes == list(range(n))  # each writer's lines complete and in order
        assert all(
            line["doc_path"] == f"{run}/" + "d" * (line["chunk_index"] % 300)
            for line in lines
            if line["run_id"] == run
        )
