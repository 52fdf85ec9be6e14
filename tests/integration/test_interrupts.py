"""Interrupts: however many, and whenever they come, what finished is written, the summary is
printed, and no temporary file is left (the final write is never abandoned)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from dscall.calls.cache import ResultCache
from dscall.output.parquet import read_metadata
from dscall.simulator import SimulatorThread
from tests.integration.conftest import Workspace, read_rows, write_corpus


def test_a_storm_of_interrupts_still_writes_everything_that_finished(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    write_corpus(workspace.corpus, docs=60)
    sim.config.latency_ms = 300
    args = workspace.args(sim, "--concurrency", "16")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dscall", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while sim.stats()["responses_by_status"].get("200", 0) < 16:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.01)
        # Ctrl-C, again and again, from mid-run until the process is gone: some land while
        # requests are in flight, some while the output is being written, some after.
        sent = 0
        while proc.poll() is None and time.monotonic() < deadline:
            os.kill(proc.pid, signal.SIGINT)
            sent += 1
            time.sleep(0.005)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert sent >= 3
    assert proc.returncode == 3, stderr
    assert "Traceback" not in stderr
    assert "error: interrupted" not in stderr
    assert "summary" in stderr
    assert "stopped: interrupted" in stderr
    assert "interrupt again" not in stderr.split("summary", 1)[1]  # nothing stale at the end
    rows = read_rows(workspace.out)
    assert rows
    assert all(r["status"] == "ok" for r in rows)
    with ResultCache(workspace.cache, "default") as cache:
        stored = len(cache)
    # Every answer that reached the cache is in the file too (none lost in the final write).
    assert len({r["request_hash"] for r in rows}) == stored
    assert read_metadata(workspace.out)["complete"] is False
    assert read_metadata(workspace.out)["stop_reason"] == "interrupted"
    leftovers = [p.name for p in Path(workspace.out.parent).iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    assert pq.read_table(str(workspace.out)).num_rows == len(rows)
