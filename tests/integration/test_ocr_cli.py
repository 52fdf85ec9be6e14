"""--ocr end to end: `dscall chunks` and `dscall process` (against the simulator) on a PDF whose
second page is a scan, through the real extraction worker processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.ocr_scans import ENGLISH_TEXT, font_for, mixed_pdf, recall_for, render_scan
from dscall.cli import app
from dscall.simulator import SimulatorThread
from tests.integration.conftest import Workspace, invoke, read_rows
from tests.unit.documents.test_ocr import DIGITAL_ONE, DIGITAL_THREE, require_ocr


@pytest.fixture
def scanned(tmp_path: Path) -> Path:
    """A folder with one PDF: digital page, 300 dpi scan, digital page."""
    font = font_for("en")
    if font is None:
        pytest.skip("no DejaVu font to render a scan with")
    folder = tmp_path / "docs"
    folder.mkdir()
    scan = render_scan(ENGLISH_TEXT, font, 300)
    mixed_pdf(folder / "contract.pdf", [DIGITAL_ONE, scan, DIGITAL_THREE], 300)
    return folder


def _chunks(folder: Path, out: Path, *extra: str) -> tuple[int, str]:
    args = ["chunks", str(folder), "--out", str(out), "--chunk-tokens", "64"]
    args += ["--overlap-tokens", "0", "--tokenizer", "estimate", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stderr


def _assert_only_page_two_is_ocr(rows: list[dict[str, object]]) -> None:
    assert rows
    for row in rows:
        first, last = row["page_start"], row["page_end"]
        assert isinstance(first, int)
        assert isinstance(last, int)
        assert row["ocr"] is (first <= 2 <= last), row
    assert any(row["ocr"] for row in rows)


def test_chunks_reads_the_scanned_page_by_default(scanned: Path, tmp_path: Path) -> None:
    require_ocr()
    out = tmp_path / "chunks.parquet"
    code, stderr = _chunks(scanned, out)
    assert code == 0, stderr
    rows = read_rows(out)
    _assert_only_page_two_is_ocr(rows)
    text = "".join(str(row["chunk_text"]) for row in rows if row["ocr"])
    assert recall_for("en", ENGLISH_TEXT, text) >= 0.95
    assert "no-text pages: 0, OCR'd pages: 1," in stderr
    assert "no text layer" not in stderr


def test_chunks_with_ocr_never_flags_the_page_as_before(scanned: Path, tmp_path: Path) -> None:
    out = tmp_path / "chunks.parquet"
    code, stderr = _chunks(scanned, out, "--ocr", "never")
    assert code == 0, stderr
    rows = read_rows(out)
    assert {row["ocr"] for row in rows} == {False}
    assert f"note {scanned / 'contract.pdf'}: no text layer on page(s) 2 (scanned?)" in stderr
    assert "no-text pages: 1, skipped" in stderr


@pytest.mark.parametrize("value", ["bogus", "Always"])
def test_a_wrong_ocr_value_is_one_line_and_exit_2(
    scanned: Path, tmp_path: Path, value: str
) -> None:
    out = tmp_path / "chunks.parquet"
    code, stderr = _chunks(scanned, out, "--ocr", value)
    assert code == 2
    assert stderr == f"error: --ocr must be auto, always or never (got '{value}')\n"
    assert not out.exists()


def test_process_marks_the_rows_of_the_scanned_page_and_counts_it(
    sim: SimulatorThread, workspace: Workspace, scanned: Path
) -> None:
    require_ocr()
    summary = workspace.root / "summary.json"
    args = workspace.args(
        sim, "--ocr", "auto", "--summary-json", str(summary), inputs=[str(scanned)]
    )
    result = invoke(args)
    assert result.exit_code == 0, result.stderr
    rows = read_rows(workspace.out)
    assert {row["status"] for row in rows} == {"ok"}
    _assert_only_page_two_is_ocr(rows)
    assert "1 page OCR'd" in result.stderr
    assert json.loads(summary.read_text())["documents"]["pages_ocr"] == 1


def test_ocr_past_the_files_time_limit_keeps_the_file_and_flags_the_pages_left(
    tmp_path: Path,
) -> None:
    """Twelve scanned pages do not fit in a 5 s --extract-timeout (about a page a second):
    the worker stops OCR in time, and the file is read, not killed as a whole."""
    require_ocr()
    font = font_for("en")
    assert font is not None
    folder = tmp_path / "docs"
    folder.mkdir()
    scan = render_scan(ENGLISH_TEXT, font, 200)
    mixed_pdf(folder / "archive.pdf", [DIGITAL_ONE, *[scan] * 12], 200)
    out = tmp_path / "chunks.parquet"
    code, stderr = _chunks(folder, out, "--ocr", "auto", "--extract-timeout", "5")
    assert code == 0, stderr
    assert "ExtractionTimeout" not in stderr
    assert f"warning {folder / 'archive.pdf'}: OCR stopped at page " in stderr
    rows = read_rows(out)
    assert {row["status"] for row in rows} == {"ok"}
    assert "apples" in str(rows[0]["chunk_text"])
