from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from pathlib import Path

import psutil
import pytest

from dscall.config import INLINE_TEXT_MAX_BYTES, ChunkSettings, ExtractSettings
from dscall.documents import pool as pool_module
from dscall.documents.pool import ExtractionPool, extract_in_order
from dscall.errors import UsageError
from dscall.types import ChunkedDocument, DocType, ExtractOutcome, FailedDocument, SourceFile
from tests.unit.documents.builders import make_docx, make_pdf, pdf_bomb

# The rule of thumb keeps workers quick to start; one test uses the default (exact) counter.
ESTIMATE = ChunkSettings(chunk_tokens=200, overlap_tokens=20, tokenizer="estimate")


def _source(path: Path, doc_type: DocType) -> SourceFile:
    return SourceFile(path, path.name, doc_type, path.stat().st_size)


def _dead(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def _ok(outcome: ExtractOutcome) -> ChunkedDocument:
    assert isinstance(outcome, ChunkedDocument), outcome
    return outcome


def _failed(outcome: ExtractOutcome) -> FailedDocument:
    assert isinstance(outcome, FailedDocument), outcome
    return outcome


@pytest.fixture
def report_pdf(tmp_path: Path) -> SourceFile:
    pages = [f"Page {n}. " + "The quarter went well and sales grew. " * 20 for n in range(1, 4)]
    return _source(make_pdf(tmp_path / "report.pdf", pages), "pdf")


@pytest.fixture
def bomb(tmp_path: Path) -> SourceFile:
    path = tmp_path / "bomb.pdf"
    path.write_bytes(pdf_bomb())
    return _source(path, "pdf")


async def test_small_text_files_are_done_inline_without_any_process(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("Short notes. " * 100)
    async with ExtractionPool(ExtractSettings(), ESTIMATE) as pool:
        document = _ok(await pool.process(_source(path, "txt")))
        assert pool.workers_started == 0
    assert document.char_count == len("Short notes. " * 100)
    assert document.chunks[0].char_start == 0


async def test_documents_go_to_one_reused_worker(tmp_path: Path, report_pdf: SourceFile) -> None:
    docx_path = make_docx(tmp_path / "a.docx", lambda d: d.add_paragraph("Word body text."))
    async with ExtractionPool(ExtractSettings(), ESTIMATE, workers=1) as pool:
        pdf = _ok(await pool.process(report_pdf))
        word = _ok(await pool.process(_source(docx_path, "docx")))
        assert pool.workers_started == 1
        pids = pool.worker_pids()
        assert len(pids) == 1
    assert _dead(pids[0])
    assert pdf.page_count == 3
    assert len(pdf.chunks) > 1
    assert pdf.chunks[0].page_start == 1
    assert pdf.chunks[-1].page_end == 3
    assert pdf.doc_id == hashlib.sha256(report_pdf.path.read_bytes()).hexdigest()
    assert [c.text for c in word.chunks] == ["Word body text."]


async def test_outcomes_come_in_input_order_with_failures_in_place(
    tmp_path: Path, report_pdf: SourceFile
) -> None:
    big = tmp_path / "big.txt"
    big.write_text("A long text file that goes to a worker. " * (INLINE_TEXT_MAX_BYTES // 30))
    small = tmp_path / "small.md"
    small.write_text("# Small\n\nInline.")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\ngarbage without any objects\n%%EOF\n")
    sources = [
        _source(big, "txt"),
        report_pdf,
        _source(broken, "pdf"),
        _source(small, "md"),
        report_pdf,
    ]
    for lookahead in (0, 3):
        async with ExtractionPool(ExtractSettings(), ESTIMATE, workers=2) as pool:
            outcomes = [o async for o in extract_in_order(sources, pool, lookahead)]
        assert [o.source for o in outcomes] == sources
        assert [type(o).__name__ for o in outcomes] == [
            "ChunkedDocument",
            "ChunkedDocument",
            "FailedDocument",
            "ChunkedDocument",
            "ChunkedDocument",
        ]
    failed = _failed(outcomes[2])
    assert failed.error_type == "CorruptDocument"
    assert failed.doc_id is not None  # the bytes were read, so the document has its id
    assert "\n" not in failed.message


async def test_timeout_kills_the_worker_and_the_next_file_gets_a_fresh_one(
    bomb: SourceFile, report_pdf: SourceFile
) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    async with ExtractionPool(ExtractSettings(timeout_s=1.0), ESTIMATE, workers=1) as pool:
        await pool.process(report_pdf)  # the worker is up before the clock matters
        first_pid = pool.worker_pids()[0]
        task = asyncio.ensure_future(ticker())
        outcome = _failed(await pool.process(bomb))
        task.cancel()
        assert outcome.error_type == "ExtractionTimeout"
        assert "longer than 1 s" in outcome.message
        assert _dead(first_pid)
        assert _ok(await pool.process(report_pdf)).page_count == 3
        assert pool.workers_started == 2
    assert ticks >= 5  # the event loop kept running while the worker was busy


async def test_memory_cap_turns_an_allocation_failure_into_an_error_row(
    tmp_path: Path, report_pdf: SourceFile
) -> None:
    # A PDF is read whole (a text file this large would be streamed in windows instead).
    huge = tmp_path / "huge.pdf"
    with open(huge, "wb") as handle:  # sparse: 3 GB on paper, nothing on disk
        handle.truncate(3 * 1024**3)
    settings = ExtractSettings(memory_mb=768)
    async with ExtractionPool(settings, ESTIMATE, workers=1) as pool:
        outcome = _failed(await pool.process(_source(huge, "pdf")))
        assert outcome.error_type == "ExtractionCrashed"
        assert "out of memory" in outcome.message
        assert "768 MB" in outcome.message
        assert _ok(await pool.process(report_pdf)).page_count == 3


async def test_a_worker_that_dies_is_reported_and_replaced(
    bomb: SourceFile, report_pdf: SourceFile
) -> None:
    async with ExtractionPool(ExtractSettings(), ESTIMATE, workers=1) as pool:
        await pool.process(report_pdf)
        (pid,) = pool.worker_pids()
        task = asyncio.ensure_future(pool.process(bomb))
        await asyncio.sleep(0.2)  # let the worker start on the file
        os.kill(pid, signal.SIGKILL)  # what the kernel's OOM killer does
        outcome = _failed(await task)
        assert outcome.error_type == "ExtractionCrashed"
        assert "SIGKILL" in outcome.message
        assert _ok(await pool.process(report_pdf)).page_count == 3


async def test_cancelling_a_file_kills_its_worker(bomb: SourceFile, report_pdf: SourceFile) -> None:
    async with ExtractionPool(ExtractSettings(), ESTIMATE, workers=1) as pool:
        await pool.process(report_pdf)
        (pid,) = pool.worker_pids()
        task = asyncio.ensure_future(pool.process(bomb))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pool.worker_pids() == []
        assert _dead(pid)
        assert _ok(await pool.process(report_pdf)).page_count == 3


async def test_leaving_extract_in_order_early_cancels_the_rest(
    bomb: SourceFile, report_pdf: SourceFile
) -> None:
    async with ExtractionPool(ExtractSettings(), ESTIMATE, workers=2) as pool:
        outcomes = extract_in_order([report_pdf, bomb, bomb], pool, lookahead=2)
        first = await outcomes.__anext__()
        await asyncio.sleep(0.2)  # the bombs are in the workers now
        before = pool.worker_pids()
        await outcomes.aclose()
        after = pool.worker_pids()
        assert _ok(first).page_count == 3
        assert len(after) <= 1  # at most one worker idle; the busy ones were stopped
        for pid in set(before) - set(after):
            assert _dead(pid)
        assert set(before) - set(after)
    assert pool.worker_pids() == []


async def test_default_counter_runs_in_workers(report_pdf: SourceFile) -> None:
    async with ExtractionPool(ExtractSettings(), ChunkSettings(), workers=1) as pool:
        document = _ok(await pool.process(report_pdf))
        assert pool.counter.name in ("exact", "estimate")
    assert sum(chunk.tokens for chunk in document.chunks) > 100


def test_bad_chunk_settings_fail_before_any_work() -> None:
    with pytest.raises(UsageError, match="overlap"):
        ExtractionPool(ExtractSettings(), ChunkSettings(chunk_tokens=100, overlap_tokens=90))


async def test_workers_retire_after_their_quota(
    report_pdf: SourceFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool_module, "MAX_FILES_PER_WORKER", 2)
    async with ExtractionPool(ExtractSettings(), ESTIMATE, workers=1) as pool:
        outcomes = [o async for o in extract_in_order([report_pdf] * 5, pool, lookahead=0)]
        assert pool.workers_started == 3
    assert all(_ok(o).page_count == 3 for o in outcomes)


async def test_a_worker_that_died_while_idle_does_not_fail_the_next_file(
    report_pdf: SourceFile,
) -> None:
    async with ExtractionPool(ExtractSettings(), ESTIMATE, workers=1) as pool:
        await pool.process(report_pdf)
        (pid,) = pool.worker_pids()
        os.kill(pid, signal.SIGKILL)
        for _ in range(1000):  # until the kernel has it down
            if _dead(pid):
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail(f"worker {pid} still alive 10 s after SIGKILL")
        assert _ok(await pool.process(report_pdf)).page_count == 3
        assert pool.workers_started == 2
