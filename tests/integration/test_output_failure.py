"""The output itself fails (a real full disk: a small tmpfs): the run stops dispatching at once,
exits 3 with one line, leaves no temporary file, and what was answered stays in the cache."""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dscall.calls.cache import ResultCache
from dscall.simulator import SimulatorThread
from tests.integration.conftest import Workspace, invoke, read_rows


def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            check=True,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {exc}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "small"
    _mount_tmpfs(where, "1m")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, timeout=30)


def _fill(disk: Path, leave_bytes: int) -> None:
    """Fill the file system until only about ``leave_bytes`` are free."""
    info = os.statvfs(disk)
    free = info.f_bavail * info.f_frsize
    (disk / "filler").write_bytes(b"\0" * max(0, free - leave_bytes))


def _entries(cache: Path) -> int:
    with ResultCache(cache, "default") as store:
        return len(store)


def _one_line_stop(stderr: str, out: Path) -> None:
    stops = [line for line in stderr.splitlines() if line.startswith("stopped:")]
    assert stops == [f"stopped: cannot write {out}: No space left on device"], stderr
    assert "Traceback" not in stderr
    assert "internal error" not in stderr


def test_disk_full_at_the_final_write_keeps_the_previous_output_and_the_answers(
    sim: SimulatorThread, workspace: Workspace, small_disk: Path
) -> None:
    out = small_disk / "results.parquet"
    previous = invoke([*workspace.args(sim, "--no-cache"), "--out", str(out)])
    assert previous.exit_code == 0, previous.stderr
    before = out.read_bytes()
    chunks = len(read_rows(out))
    sim.reset_stats()
    _fill(small_disk, leave_bytes=8 * 1024)  # the new output needs more than this
    result = invoke([*workspace.args(sim), "--out", str(out)])
    assert result.exit_code == 3, result.stderr
    _one_line_stop(result.stderr, out)
    assert "wrote" not in result.stderr
    assert out.read_bytes() == before  # the previous complete output, untouched
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "results.parquet"]
    answered = int(sim.stats()["responses_by_status"]["200"])
    assert answered > 0
    assert _entries(workspace.cache) == answered  # every answer is in the cache
    # Once there is room, the same command pays for nothing again.
    (small_disk / "filler").unlink()
    sim.reset_stats()
    again = invoke([*workspace.args(sim), "--out", str(out)])
    assert again.exit_code == 0, again.stderr
    assert sim.stats()["requests_received"] == 0
    rows = read_rows(out)
    assert len(rows) == chunks
    assert all(row["status"] == "ok" for row in rows)


def _random_text(path: Path, megabytes: int) -> None:
    rng = random.Random(7)
    words = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(4000)
    ]
    with path.open("w", encoding="utf-8") as handle:
        written = 0
        while written < megabytes * 1024 * 1024:
            sentence = " ".join(rng.choices(words, k=12)).capitalize() + ". "
            if rng.random() < 0.1:
                sentence += "\n\n"
            handle.write(sentence)
            written += len(sentence)


def test_disk_full_mid_run_stops_dispatching_at_once(
    sim: SimulatorThread, tmp_path: Path, small_disk: Path
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    # Chunks of ~2,000 tokens: the first row group (8M characters of chunk text, ~1,100 rows)
    # is written mid-run, and compressed it is larger than the 1 MB disk.
    _random_text(corpus / "big.txt", megabytes=12)
    cache = tmp_path / "cache"
    out = small_disk / "results.parquet"
    args = [
        "process",
        str(corpus),
        "--out",
        str(out),
        "--base-url",
        sim.base_url,
        "--cache-dir",
        str(cache),
        "--tokenizer",
        "estimate",
        "--concurrency",
        "4",
        "--max-concurrency",
        "4",
        "--summary-json",
        str(tmp_path / "summary.json"),
    ]
    result = invoke(args)
    assert result.exit_code == 3, result.stderr
    _one_line_stop(result.stderr, out)
    assert list(small_disk.iterdir()) == []  # no temporary file left on the full disk
    stats = sim.stats()
    answered = int(stats["responses_by_status"]["200"])
    assert stats["requests_received"] == answered  # nothing was abandoned on the wire
    assert _entries(cache) == answered  # ...and every answer reached the cache
    summary = (tmp_path / "summary.json").read_text()
    import json

    figures = json.loads(summary)
    total = figures["chunks"]["total"]
    assert figures["exit_code"] == 3
    assert figures["out_written"] is False
    # Dispatch stopped at the failure: the first row group is ~1,100 chunks; at most the 4
    # requests in flight (and rows finished but not yet handed to the writer) came after it.
    assert total > 1400
    assert answered < total - 200
