"""The front half (discover -> extract -> chunk) through its interface, on real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from dscall.config import (
    STREAM_TEXT_MIN_BYTES,
    ChunkSettings,
    DiscoverySettings,
    ExtractSettings,
)
from dscall.documents.bigtext import StreamedChunks
from dscall.documents.stage import front_half, lookahead
from dscall.errors import UsageError
from dscall.stats import FrontTally, RunStats
from dscall.types import ChunkedDocument, ExtractOutcome, FailedDocument
from tests.unit.documents.builders import make_pdf

# The rule of thumb keeps workers quick to start.
ESTIMATE = ChunkSettings(chunk_tokens=200, overlap_tokens=20, tokenizer="estimate")
TWO_WORKERS = ExtractSettings(workers=2)


async def _read_all(
    inputs: list[str],
    tally: FrontTally,
    notes: list[str],
    extract: ExtractSettings = TWO_WORKERS,
) -> list[ExtractOutcome]:
    async with front_half(
        tuple(inputs), DiscoverySettings(), extract, ESTIMATE, tally, notes.append
    ) as front:
        return [outcome async for outcome in front.outcomes]


def _text(path: Path, sentences: int) -> Path:
    path.write_text(" ".join(f"Sentence number {n} of {path.stem}." for n in range(sentences)))
    return path


def _broken_pdf(path: Path) -> Path:
    path.write_bytes(b"%PDF-1.4\ngarbage without any objects\n%%EOF\n")
    return path


@pytest.mark.parametrize(("workers", "expected"), [(1, 8), (2, 8), (3, 12), (16, 64)])
def test_one_lookahead_rule(workers: int, expected: int) -> None:
    assert lookahead(workers) == expected


async def test_outcomes_come_in_input_order_with_a_failed_document_in_its_place(
    tmp_path: Path,
) -> None:
    pages = ["The quarter went well and sales grew. " * 30] * 3
    files = [
        _text(tmp_path / "a.txt", 200),
        _broken_pdf(tmp_path / "broken.pdf"),
        make_pdf(tmp_path / "report.pdf", pages),
        _text(tmp_path / "b.md", 5),
    ]
    tally = FrontTally()
    outcomes = await _read_all([str(path) for path in files], tally, [])
    assert [outcome.source.path for outcome in outcomes] == files
    assert [type(outcome).__name__ for outcome in outcomes] == [
        "ChunkedDocument",
        "FailedDocument",
        "ChunkedDocument",
        "ChunkedDocument",
    ]
    failed = outcomes[1]
    assert isinstance(failed, FailedDocument)
    assert failed.error_type == "CorruptDocument"
    assert (tally.documents, tally.failed) == (4, 1)


async def test_skipped_files_are_told_through_notify_and_counted(tmp_path: Path) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "sheet.xlsx").write_text("x")
    _text(folder / "notes.txt", 10)
    tally = FrontTally()
    notes: list[str] = []
    outcomes = await _read_all([str(folder), str(tmp_path / "absent.pdf")], tally, notes)
    assert [outcome.source.rel_path for outcome in outcomes] == ["notes.txt"]
    unsupported = "unsupported file type '.xlsx' (reads .pdf .docx .txt .md)"
    assert notes == [
        f"skipped {folder / 'sheet.xlsx'}: {unsupported}",
        f"skipped {tmp_path / 'absent.pdf'}: no such file or folder",
    ]
    assert tally.skipped == 2
    assert (tally.documents, tally.failed) == (1, 0)


async def test_no_supported_document_is_a_usage_error_on_entering(tmp_path: Path) -> None:
    folder = tmp_path / "in\x1bbox"  # an escape sequence in a name is shown, never sent
    folder.mkdir()
    (folder / "sheet.xlsx").write_text("x")
    tally = FrontTally()
    notes: list[str] = []
    entered = False
    with pytest.raises(UsageError) as caught:
        async with front_half(
            (str(folder),), DiscoverySettings(), TWO_WORKERS, ESTIMATE, tally, notes.append
        ):
            entered = True
    assert not entered
    shown = str(folder).replace("\x1b", "\\x1b")
    assert str(caught.value) == f"no supported documents (.pdf .docx .txt .md) found in {shown}"
    assert caught.value.exit_code == 2
    assert tally.skipped == 1
    assert len(notes) == 1
    assert notes[0].startswith("skipped ")


async def test_the_tally_holds_the_figures_of_what_was_read(tmp_path: Path) -> None:
    text = "The quarter went well and sales grew. " * 30
    files = [
        make_pdf(tmp_path / "scan.pdf", [text, None, text, None]),
        _broken_pdf(tmp_path / "broken.pdf"),
        _text(tmp_path / "notes.txt", 300),
    ]
    (tmp_path / "sheet.xlsx").write_text("x")
    inputs = [str(files[0]), str(tmp_path / "sheet.xlsx"), str(files[1]), str(files[2])]
    tally = FrontTally()
    seen: list[int] = []
    async with front_half(
        tuple(inputs), DiscoverySettings(), TWO_WORKERS, ESTIMATE, tally, lambda _: None
    ) as front:
        outcomes = []
        async for outcome in front.outcomes:
            seen.append(tally.documents)  # counted as each outcome is handed on
            outcomes.append(outcome)
    assert seen == [1, 2, 3]
    read = [outcome for outcome in outcomes if isinstance(outcome, ChunkedDocument)]
    scan, notes = read
    assert scan.no_text_pages == (2, 4)
    assert tally == FrontTally(
        documents=3,
        failed=1,
        pages=4,
        chunks=len(scan.chunks) + len(notes.chunks),
        tokens=sum(chunk.tokens for doc in read for chunk in doc.chunks),
        no_text_pages=2,
        skipped=1,
    )
    assert len(notes.chunks) > 1


async def test_a_streamed_text_file_is_counted_from_its_token_table(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    line = "A line of a large log file that is read in windows. "
    path.write_text(line * (STREAM_TEXT_MIN_BYTES // len(line) + 1))
    tally = FrontTally()
    big = ChunkSettings(chunk_tokens=4000, overlap_tokens=0, tokenizer="estimate")
    async with front_half(
        (str(path),), DiscoverySettings(), ExtractSettings(workers=1), big, tally, lambda _: None
    ) as front:
        [document] = [outcome async for outcome in front.outcomes]
    assert isinstance(document, ChunkedDocument)
    assert isinstance(document.chunks, StreamedChunks)
    assert tally.chunks == len(document.chunks) > 1
    assert tally.tokens == sum(document.chunks.tokens) > 0
    assert tally.tokens == sum(chunk.tokens for chunk in document.chunks)


async def test_run_stats_show_the_front_tally_under_their_own_names(tmp_path: Path) -> None:
    (tmp_path / "sheet.xlsx").write_text("x")
    files = [_text(tmp_path / "a.txt", 200), _broken_pdf(tmp_path / "b.pdf")]
    stats = RunStats()
    inputs = [str(files[0]), str(tmp_path / "sheet.xlsx"), str(files[1])]
    await _read_all(inputs, stats.front, [])
    assert (stats.documents_seen, stats.files_skipped) == (2, 1)
    assert stats.chunks_total == stats.front.chunks > 1
    assert stats.documents_failed == 0  # the engine's (or the dry run's) count, not the stage's
    assert stats.summary_dict()["documents"] == {
        "seen": 2,
        "failed": 0,
        "files_skipped": 1,
        "pages_ocr": 0,
        "from_manifest": 0,
    }


async def test_leaving_early_stops_the_files_in_progress(tmp_path: Path) -> None:
    files = [_text(tmp_path / f"{n}.txt", 50) for n in range(20)]
    tally = FrontTally()
    async with front_half(
        tuple(str(path) for path in files),
        DiscoverySettings(),
        TWO_WORKERS,
        ESTIMATE,
        tally,
        lambda _: None,
    ) as front:
        async for outcome in front.outcomes:
            assert outcome.source.path == files[0]
            break
    # Only what was handed on is counted; the lookahead's files in progress were dropped.
    assert tally.documents == 1
    with pytest.raises(StopAsyncIteration):
        await front.outcomes.__anext__()  # closed: nothing more comes
