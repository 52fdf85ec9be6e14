"""Shared pieces of the chaos suite: corpora whose chunks are known in advance, the checks
every fault cell makes, and dscall run as a real subprocess (for SIGKILL and for two
processes at once).

The truth a run is held to comes from `dscall chunks` on the same corpus with the same chunk
settings, not from the run's own rows, so a lost or invented chunk cannot go unnoticed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dscall.calls.cache import ResultCache
from dscall.simulator import SimulatorConfig, SimulatorThread
from tests.integration.conftest import expected_output, invoke, read_rows, write_corpus

# Faults are drawn from (seed, request body, attempt): a fixed seed replays the same faults.
SEED = 20261105
CHUNK_ARGS = ("--chunk-tokens", "64", "--overlap-tokens", "0", "--tokenizer", "estimate")
ChunkKey = tuple[str, int]


@dataclass(frozen=True)
class Corpus:
    """A folder of documents and, for each of its chunks, the text `dscall chunks` gives."""

    folder: Path
    chunks: dict[ChunkKey, str]
    chunk_args: tuple[str, ...] = CHUNK_ARGS

    @property
    def unique_texts(self) -> int:
        return len(set(self.chunks.values()))


def known_corpus(
    folder: Path, chunks_out: Path, chunk_args: tuple[str, ...] = CHUNK_ARGS
) -> Corpus:
    """Read the chunks of ``folder`` with `dscall chunks` (the settings the runs will use)."""
    result = invoke(["chunks", str(folder), "--out", str(chunks_out), "--quiet", *chunk_args])
    assert result.exit_code == 0, result.stderr
    rows = read_rows(chunks_out)
    assert all(row["status"] == "ok" for row in rows), "the corpus itself must read cleanly"
    chunks = {(row["doc_path"], row["chunk_index"]): row["chunk_text"] for row in rows}
    assert len(chunks) == len(rows)
    return Corpus(folder, chunks, chunk_args)


def text_corpus(folder: Path, docs: int, paragraphs: int = 4) -> Corpus:
    write_corpus(folder, docs=docs, paragraphs=paragraphs)
    return known_corpus(folder, folder.parent / f"{folder.name}-chunks.parquet")


def process_args(
    sim: SimulatorThread, corpus: Corpus, out: Path, cache: Path, *extra: str
) -> list[str]:
    """`dscall process` on ``corpus`` against ``sim``, with the corpus's chunk settings."""
    return [
        "process",
        str(corpus.folder),
        "--out",
        str(out),
        "--base-url",
        sim.base_url,
        "--cache-dir",
        str(cache),
        "--quiet",
        *corpus.chunk_args,
        *extra,
    ]


def check_rows(
    rows: list[dict[str, Any]],
    corpus: Corpus,
    *,
    complete: bool = True,
    template: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every row is a chunk of the corpus, at most once (exactly once when ``complete``), in
    input order, with the chunk's own text; every ok row carries the answer to that text.
    Returns (ok rows, error rows)."""
    keys = [(row["doc_path"], row["chunk_index"]) for row in rows]
    assert len(set(keys)) == len(keys), "a chunk has more than one row"
    assert keys == sorted(keys), "rows are not in input order"
    unknown = set(keys) - corpus.chunks.keys()
    assert not unknown, f"rows for chunks that do not exist: {sorted(unknown)[:5]}"
    if complete:
        missing = corpus.chunks.keys() - set(keys)
        assert not missing, f"{len(missing)} chunks have no row, e.g. {sorted(missing)[:5]}"
    ok, failed = [], []
    for row, key in zip(rows, keys, strict=True):
        assert row["chunk_text"] == corpus.chunks[key], f"{key}: wrong chunk text"
        if row["status"] == "ok":
            if template is None:
                want = expected_output(row["chunk_text"])
            else:
                want = expected_output(row["chunk_text"], template)
            assert row["output"] == want, f"{key}: the output belongs to another chunk"
            assert row["error_type"] is None
            ok.append(row)
        else:
            assert row["status"] == "error", row["status"]
            assert row["error_type"], f"{key}: an error row without an error type"
            assert row["output"] is None
            failed.append(row)
    return ok, failed


def check_server(stats: dict[str, Any], max_retries: int) -> None:
    """What the simulator saw: no request beyond its retry allowance, no retry sooner than
    its Retry-After, no answer paid for twice."""
    assert stats["max_attempts_per_body"] <= max_retries + 1, stats["attempts_histogram"]
    assert stats["retry_after_violations"] == 0, stats["min_retry_after_margin_s"]
    assert stats["bodies_paid_more_than_once"] == 0


def cache_entries(cache_dir: Path, namespace: str = "default") -> int:
    with ResultCache(cache_dir, namespace) as cache:
        return len(cache)


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    """A well-behaved simulator on its own thread; tests set faults on ``sim.config``."""
    with SimulatorThread(SimulatorConfig(seed=SEED)) as running:
        yield running


# --- dscall as a subprocess -----------------------------------------------------------------
def start_dscall(args: list[str], *, stderr_path: Path | None = None) -> subprocess.Popen[bytes]:
    """`python -m dscall ARGS` in its own session (so a kill reaches its worker processes).
    Output goes to files or nowhere: a pipe nobody reads can block the child."""
    err = open(stderr_path, "wb") if stderr_path is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "dscall", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    finally:
        if stderr_path is not None:
            err.close()  # type: ignore[union-attr]


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and everything in its session, then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def pause(proc: subprocess.Popen[bytes], seconds: float) -> None:
    """Sleep ``seconds``, or less if ``proc`` exits first."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=seconds)


def wait_until(
    condition: Callable[[], bool],
    proc: subprocess.Popen[bytes],
    *,
    timeout_s: float = 60.0,
    poll_s: float = 0.005,
) -> bool:
    """Poll ``condition`` until it holds (True) or ``proc`` exits first (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(poll_s)
    raise AssertionError("the condition never came true and the run did not end")
