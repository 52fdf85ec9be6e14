"""Broken, mutated and malicious documents through the real worker pool and the real CLI.

Five hundred seeded mutations of real PDF and DOCX files (byte flips, truncation, chunks
duplicated or removed, ZIP parts corrupted, truncated, replaced or dropped) and the bombs of
``mutations.bombs``. Every file must end as a ChunkedDocument or a FailedDocument with a
one-line reason, within the per-file time limit and the worker memory cap, leaving no worker
behind. ``bench/bench_huge.py --fuzz N`` runs the same with thousands of files.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dscall import errors
from dscall.config import MAX_PAGE_WARNINGS, ChunkSettings, ExtractSettings
from dscall.documents import docx as docx_module
from dscall.documents.pdf import extract_pdf
from dscall.documents.pool import ExtractionPool, extract_in_order
from dscall.types import ChunkedDocument, DocType, ExtractOutcome, FailedDocument, SourceFile
from tests.hostile.conftest import dead, vm_hwm_mb
from tests.unit.documents.builders import _CATALOG, _FONT, _stream, raw_pdf

TIMEOUT_S = 2.0
MEMORY_MB = 512
CHUNKS = ChunkSettings(chunk_tokens=200, overlap_tokens=20, tokenizer="estimate")
DOCUMENT_ERRORS = {cls.__name__ for cls in errors.DocumentError.__subclasses__()}


def _source(path: Path) -> SourceFile:
    doc_type: DocType = "pdf" if path.suffix == ".pdf" else "docx"
    return SourceFile(path, path.name, doc_type, path.stat().st_size)


def _check(outcome: ExtractOutcome) -> None:
    """The shape every outcome must have, whatever the input."""
    if isinstance(outcome, FailedDocument):
        assert outcome.error_type in DOCUMENT_ERRORS, outcome
        assert outcome.message.strip(), outcome
        assert "\n" not in outcome.message, outcome
        assert "Traceback" not in outcome.message, outcome
        return
    assert isinstance(outcome, ChunkedDocument), outcome
    assert outcome.chunks, outcome.source
    for chunk in outcome.chunks:
        assert chunk.tokens <= CHUNKS.chunk_tokens
        assert chunk.text.strip()


class _MemoryWatch:
    """Samples the resident high-water mark of the pool's workers while files run."""

    def __init__(self, pool: ExtractionPool) -> None:
        self._pool = pool
        self.peak_mb = 0.0
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for pid in list(self._pool.worker_pids()):
                self.pids.add(pid)
                self.peak_mb = max(self.peak_mb, vm_hwm_mb(pid) or 0.0)


async def _run_pool(paths: list[Path]) -> tuple[list[ExtractOutcome], _MemoryWatch]:
    settings = ExtractSettings(timeout_s=TIMEOUT_S, memory_mb=MEMORY_MB)
    sources = [_source(path) for path in paths]
    async with ExtractionPool(settings, CHUNKS, workers=2) as pool:
        with _MemoryWatch(pool) as watch:
            outcomes = [o async for o in extract_in_order(sources, pool, lookahead=8)]
    assert [outcome.source for outcome in outcomes] == sources
    return outcomes, watch


async def test_mutated_documents_never_crash_hang_or_leak_a_worker(mutated: list[Path]) -> None:
    outcomes, watch = await _run_pool(mutated)
    for outcome in outcomes:
        _check(outcome)
    kinds = {type(outcome).__name__ for outcome in outcomes}
    assert kinds == {"ChunkedDocument", "FailedDocument"}  # the mutations did bite
    assert watch.pids
    assert all(dead(pid) for pid in watch.pids)
    assert watch.peak_mb < MEMORY_MB


async def test_bombs_are_stopped_with_the_right_reason(bomb_files: dict[str, Path]) -> None:
    names = list(bomb_files)
    outcomes, watch = await _run_pool([bomb_files[name] for name in names])
    by_name = dict(zip(names, outcomes, strict=True))
    for outcome in outcomes:
        _check(outcome)
    expected = {
        "billion-laughs": ("CorruptDocument", "amplification"),
        "zip-bomb": ("CorruptDocument", "zip bomb"),
        "nested-300": ("CorruptDocument", "Excessive depth"),
        "broken-pages": ("EmptyDocument", "5000 page(s)"),
        "many-pages": ("ExtractionTimeout", "longer than 2 s"),
        "deflate-bomb": ("EmptyDocument", "no text layer"),
    }
    for name, (error_type, words) in expected.items():
        outcome = by_name[name]
        assert isinstance(outcome, FailedDocument), name
        assert (outcome.error_type, words in outcome.message) == (error_type, True), outcome
    nested = by_name["nested-80"]
    assert isinstance(nested, ChunkedDocument)
    text = " ".join(chunk.text for chunk in nested.chunks)
    assert "level 79" in text
    assert "innermost" in text
    operators = by_name["operators-bomb"]  # millions of text operators on one page
    assert isinstance(operators, FailedDocument)
    assert operators.error_type in ("ExtractionTimeout", "ExtractionCrashed")
    assert all(dead(pid) for pid in watch.pids)
    assert watch.peak_mb < MEMORY_MB


def test_the_cli_reports_every_hostile_file_without_a_traceback(
    mutated: list[Path], bomb_files: dict[str, Path], tmp_path: Path
) -> None:
    """In a child process, so that anything a worker prints on its stderr is seen too."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    chosen = [*mutated[:80], *bomb_files.values()]
    for path in chosen:
        (folder / path.name).symlink_to(path)
    out = tmp_path / "chunks.parquet"
    command = [sys.executable, "-m", "dscall", "chunks", str(folder), "--out", str(out)]
    command += ["--extract-timeout", str(TIMEOUT_S), "--tokenizer", "estimate", "--workers", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=100, check=False)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "Error" not in result.stdout
    rows = pq.read_table(out, columns=["doc_path", "status", "error_type"]).to_pylist()
    assert {row["doc_path"] for row in rows} == {path.name for path in chosen}
    failed = {row["doc_path"] for row in rows if row["status"] == "error"}
    reported = [line for line in result.stderr.splitlines() if line.startswith("failed ")]
    assert len(reported) == len(failed)
    assert all(row["error_type"] in DOCUMENT_ERRORS for row in rows if row["status"] == "error")


def test_a_cancelled_run_leaves_no_worker_behind(bomb_files: dict[str, Path]) -> None:
    async def run() -> set[int]:
        settings = ExtractSettings(timeout_s=30.0, memory_mb=MEMORY_MB)
        sources = [_source(bomb_files["many-pages"]), _source(bomb_files["operators-bomb"])]
        async with ExtractionPool(settings, CHUNKS, workers=2) as pool:
            tasks = [asyncio.ensure_future(pool.process(source)) for source in sources]
            while len(pool.worker_pids()) < 2:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # both workers deep in their bombs
            pids = set(pool.worker_pids())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return pids

    pids = asyncio.run(run())
    assert len(pids) == 2
    assert all(dead(pid) for pid in pids)


def test_a_pdf_failing_on_thousands_of_pages_reports_a_few_and_counts_the_rest() -> None:
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
    )
    kids = b"3 0 R " + b" ".join([b"6 0 R"] * 3000)
    data = raw_pdf(
        [
            _CATALOG,
            b"<< /Type /Pages /Kids [" + kids + b"] /Count 3001 >>",
            page,
            _stream(b"BT /F1 12 Tf 72 700 Td (The one good page.) Tj ET"),
            _FONT,
            b"[1 2 3]",  # not a page: every page but the first fails
        ]
    )
    result = extract_pdf(data, "pdfium")
    assert result.pages[0] == "The one good page."
    assert len(result.pages) == 3001
    assert len(result.warnings) == MAX_PAGE_WARNINGS
    assert result.warnings[0].startswith("page 2: unreadable")
    assert result.warnings[-1] == f"and {3000 - MAX_PAGE_WARNINGS + 1:,} more unreadable pages"


def test_a_docx_too_large_once_inflated_is_refused_before_it_is_read(
    seeds: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = next(path for path in seeds if path.suffix == ".docx").read_bytes()
    monkeypatch.setattr(docx_module, "DOCX_MAX_UNCOMPRESSED_BYTES", len(data))
    with pytest.raises(errors.CorruptDocument, match=r"would expand to .* a zip bomb"):
        docx_module.extract_docx(data)
