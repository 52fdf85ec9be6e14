"""No free file descriptor is waited out, never blamed on a document.

Each case runs in a child process that takes every descriptor its (lowered) limit allows, so
the open really fails with EMFILE, then gives some back a moment later: from another thread
for the blocking paths (a worker, discovery), from the event loop itself for the pool's inline
path, which proves that path waits without blocking the loop.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.documents.builders import make_pdf

pytest.importorskip("resource")

_CHILD = r"""
import asyncio, errno, json, os, resource, sys, threading, time
from pathlib import Path

from dscall.config import ChunkSettings, DiscoverySettings, ExtractSettings
from dscall.documents.discover import discover
from dscall.documents.extract import open_source
from dscall.documents.pool import ExtractionPool
from dscall.types import SourceFile

mode, folder = sys.argv[1], Path(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
FREED_AFTER_S = 0.3


def exhaust():
    held = []
    while True:
        try:
            held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError as exc:
            assert exc.errno == errno.EMFILE, exc
            return held


def give_back(held, count=32):
    for _ in range(count):
        os.close(held.pop())


def source(name, doc_type):
    path = folder / name
    return SourceFile(path, name, doc_type, path.stat().st_size)


def later_from_a_thread(held):
    threading.Timer(FREED_AFTER_S, give_back, (held,)).start()


async def through_the_pool(name, doc_type):
    settings = ChunkSettings(chunk_tokens=200, overlap_tokens=0, tokenizer="estimate")
    async with ExtractionPool(ExtractSettings(workers=1), settings) as pool:
        held = exhaust()
        # Given back by the loop: a pool that blocked the loop while waiting would never get it.
        asyncio.get_running_loop().call_later(FREED_AFTER_S, give_back, held)
        outcome = await pool.process(source(name, doc_type))
        return type(outcome).__name__, getattr(outcome, "message", None)


began = time.monotonic()
if mode == "open":
    later_from_a_thread(held := exhaust())
    with open_source(folder / "notes.txt") as handle:
        result = [handle.read().decode()[:5]]
elif mode == "discover":
    later_from_a_thread(held := exhaust())
    found = list(discover([str(folder)], DiscoverySettings()))
    result = sorted(type(item).__name__ + ":" + Path(str(item.path)).name for item in found)
elif mode == "inline":
    result = list(asyncio.run(through_the_pool("notes.txt", "txt")))
else:  # "worker": the worker's pipes cannot be made until descriptors are free
    result = list(asyncio.run(through_the_pool("report.pdf", "pdf")))
print(json.dumps({"result": result, "elapsed": time.monotonic() - began}))
"""


def _run_child(mode: str, folder: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(folder)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "notes.txt").write_text("Notes. The meeting went well and ended early.\n")
    make_pdf(tmp_path / "report.pdf", ["Page one. Sales grew in the quarter."])
    return tmp_path


def test_an_open_without_a_free_descriptor_waits_and_then_reads_the_file(folder: Path) -> None:
    report = _run_child("open", folder)
    assert report["result"] == ["Notes"]
    assert report["elapsed"] >= 0.25  # it did meet EMFILE, and waited instead of failing


def test_discovery_waits_to_list_a_folder_instead_of_skipping_it(folder: Path) -> None:
    report = _run_child("discover", folder)
    assert report["result"] == ["SourceFile:notes.txt", "SourceFile:report.pdf"]
    assert report["elapsed"] >= 0.25


@pytest.mark.parametrize("mode", ["inline", "worker"])
def test_the_pool_waits_without_blocking_the_loop_and_the_document_is_read(
    folder: Path, mode: str
) -> None:
    report = _run_child(mode, folder)
    assert report["result"] == ["ChunkedDocument", None], report
    assert report["elapsed"] >= 0.25
