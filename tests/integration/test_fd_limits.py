"""High concurrency under a small open-file limit: the run fits itself to the limit and says so,
and no document is ever failed for a descriptor dscall itself was holding.

`dscall process` runs as a real subprocess whose soft and hard RLIMIT_NOFILE are both 256 (set
by a wrapper that then execs it: the test process runs the simulator's thread, and preexec_fn
is unsafe in a threaded parent). The simulator answers after 300 ms, so that hundreds of
requests are in flight at once; before the fix, 500 of them took every descriptor and
documents read meanwhile became `UnreadableFile: cannot read: Too many open files`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dscall.simulator import SimulatorConfig, SimulatorThread
from tests.integration.conftest import read_rows, write_corpus

pytest.importorskip("resource")

LIMIT = 256
DOCS = 600
LATENCY_MS = 300.0
_CAP = re.compile(r"note: --concurrency 500 capped at (\d+): 256 open files allowed \(ulimit -n")
# Sets both limits, then becomes the command in argv[2:] (same pid, same environment).
_LIMITED = (
    "import os, resource, sys; n = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)
# `dscall` whose in-process simulator (--mock) answers after LATENCY_MS, as the one in this
# process does: --mock has no latency option, and without one its requests never pile up.
_SLOW_MOCK = (
    "import functools, dscall.simulator as s; "
    f"s.SimulatorConfig = functools.partial(s.SimulatorConfig, latency_ms={LATENCY_MS}); "
    "from dscall.cli import main; main()"
)


def _dscall(
    args: list[str], *, slow_mock: bool = False
) -> tuple[subprocess.CompletedProcess[str], float]:
    entry = ["-c", _SLOW_MOCK] if slow_mock else ["-m", "dscall"]
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _LIMITED, str(LIMIT), *entry, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, time.monotonic() - began


def _args(tmp_path: Path, corpus: Path, *extra: str) -> list[str]:
    return [
        "process",
        str(corpus),
        "--out",
        str(tmp_path / "results.parquet"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--tokenizer",
        "estimate",
        "--summary-json",
        str(tmp_path / "summary.json"),
        *extra,
    ]


def _assert_every_document_ok(tmp_path: Path, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_rows(tmp_path / "results.parquet")
    for text in (done.stdout, done.stderr, repr(rows)):
        assert "UnreadableFile" not in text
        assert "too many open files" not in text.lower()
        assert "Traceback" not in text
    assert len(rows) == DOCS
    assert sorted(row["doc_path"] for row in rows) == [f"doc_{i:04d}.txt" for i in range(DOCS)]
    assert {row["status"] for row in rows} == {"ok"}
    assert {row["chunk_count"] for row in rows} == {1}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus", DOCS, paragraphs=1)


def test_500_in_flight_asked_under_256_open_files_fits_and_fails_nothing(
    tmp_path: Path, corpus: Path
) -> None:
    with SimulatorThread(SimulatorConfig(latency_ms=LATENCY_MS)) as sim:
        done, wall = _dscall(
            _args(tmp_path, corpus, "--base-url", sim.base_url, "--concurrency", "500")
        )
        peak = int(sim.stats()["max_in_flight"])
    _assert_every_document_ok(tmp_path, done)
    caps = _CAP.findall(done.stderr)
    assert len(caps) == 1, done.stderr[-3000:]
    cap = int(caps[0])
    assert 100 <= cap < LIMIT  # capped, and not so far down that the run crawls
    assert peak <= cap
    assert peak >= cap // 2, f"only {peak} requests were ever in flight"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["requests"]["sent"] == DOCS  # nothing retried: no connect met EMFILE
    assert summary["requests"]["retries"] == 0
    assert wall < 30


def test_mock_counts_both_ends_of_each_connection(tmp_path: Path, corpus: Path) -> None:
    done, wall = _dscall(_args(tmp_path, corpus, "--mock", "--concurrency", "500"), slow_mock=True)
    _assert_every_document_ok(tmp_path, done)
    caps = _CAP.findall(done.stderr)
    assert len(caps) == 1, done.stderr[-3000:]
    assert "each request holds 2 with --mock" in done.stderr
    assert int(caps[0]) < (LIMIT - 64) // 2 + 1  # half the spare: the simulator's end too
    assert wall < 30


def test_no_note_when_the_concurrency_fits(tmp_path: Path, corpus: Path) -> None:
    # The default --max-concurrency (256) does not fit either: lowered, but never named. No
    # latency: nothing here needs requests to pile up, and 8 at a time would take 10 s.
    with SimulatorThread(SimulatorConfig()) as sim:
        done, _ = _dscall(_args(tmp_path, corpus, "--base-url", sim.base_url, "--concurrency", "8"))
    _assert_every_document_ok(tmp_path, done)
    assert "capped" not in done.stderr
    assert "open files" not in done.stderr


_CONNECT = r"""
import asyncio, errno, json, os, sys
from dscall.calls.http import HttpBackend
from dscall.config import CallSettings
from dscall.errors import TransportError
from dscall.types import CallRequest

base_url = sys.argv[1]
body = json.dumps({"model": "deepseek-flash", "messages": [{"role": "user", "content": "hi"}]})
request = CallRequest(request_hash="h", model="deepseek-flash", body=body.encode(), stream=False,
                      estimated_prompt_tokens=1, max_tokens=None)


async def main():
    report = {}
    async with HttpBackend("sk-test-fdlimit-0000", CallSettings(base_url=base_url), 4) as backend:
        held = []
        while True:
            try:
                held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as exc:
                assert exc.errno == errno.EMFILE
                break
        try:
            await backend.send(request)
        except TransportError as exc:
            report["error"] = [type(exc).__name__, str(exc), exc.__cause__.errno]
        for fd in held:
            os.close(fd)
        report["then"] = (await backend.send(request)).finish_reason
    print(json.dumps(report))


asyncio.run(main())
"""


def test_a_connect_without_a_free_descriptor_is_a_retryable_transport_error(
    tmp_path: Path,
) -> None:
    with SimulatorThread(SimulatorConfig()) as sim:
        done = subprocess.run(
            [sys.executable, "-c", _LIMITED, "64", "-c", _CONNECT, sim.base_url],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    name, message, cause = report["error"]
    assert name == "OutOfDescriptors"  # a TransportError: retried, and not the endpoint's fault
    assert message.startswith("cannot connect: too many open files (ulimit -n 64) in dscall")
    assert cause == 24  # EMFILE, as aiohttp's ClientConnectorError reports it
    assert report["then"] == "stop"
