"""--ocr on generated scans (bench/ocr_scans.py: known text rendered by Pillow, wrapped in a PDF
with no text layer), read through the real extraction path: pypdfium2 renders, tesseract reads.

Needs tesseract with eng + chi_sim and a CJK font (``.ci/run`` installs them): skipped without
them on a developer's machine, a failure on CI, where a skip would hide a missing install step.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bench.ocr_scans import (
    CHINESE_TEXT,
    ENGLISH_TEXT,
    font_for,
    mixed_pdf,
    recall_for,
    render_scan,
    scan_pdf,
)
from dscall.chunking.splitter import chunk_document
from dscall.chunking.tokens import make_counter
from dscall.config import MAX_PAGE_WARNINGS, ChunkSettings, ExtractSettings, OcrChoice
from dscall.documents import ocr
from dscall.documents.extract import extract
from dscall.errors import UsageError
from dscall.types import Document, SourceFile

DIGITAL_ONE = "Digital page one is about apples and orchards. " * 12
DIGITAL_THREE = "Digital page three is about pears and harvests. " * 12


def require_ocr() -> None:
    reason = ocr.missing_part()
    if reason is None and (font_for("en") is None or font_for("zh") is None):
        reason = "no DejaVu or CJK font to render scans with: apt-get install fonts-wqy-zenhei"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the OCR tests: {reason}")
        pytest.skip(reason)


def _font(language: str) -> Path:
    font = font_for(language)
    assert font is not None  # require_ocr() checked
    return font


def _extract(path: Path, mode: OcrChoice) -> Document:
    source = SourceFile(path, path.name, "pdf", path.stat().st_size)
    return extract(source, ExtractSettings(ocr=mode))


@pytest.mark.parametrize("dpi", [200, 300])
def test_scans_in_english_and_chinese_are_read_at_200_and_300_dpi(tmp_path: Path, dpi: int) -> None:
    require_ocr()
    english_scan = render_scan(ENGLISH_TEXT, _font("en"), dpi)
    chinese_scan = render_scan(CHINESE_TEXT, _font("zh"), dpi)
    path = tmp_path / "scan.pdf"
    path.write_bytes(scan_pdf([english_scan, chinese_scan], dpi))
    doc = _extract(path, "auto")
    assert doc.ocr_pages == (1, 2)
    assert doc.no_text_pages == ()
    assert doc.page_starts is not None
    english, chinese = doc.text[: doc.page_starts[1] - 1], doc.text[doc.page_starts[1] :]
    assert recall_for("en", ENGLISH_TEXT, english) >= 0.95, english
    assert recall_for("zh", CHINESE_TEXT, chinese) >= 0.95, chinese
    assert "本季度报告显示" in chinese  # no spaces left between Chinese characters


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Three pages: digital, a 200 dpi scan, digital."""
    font = font_for("en")
    if font is None:
        pytest.skip("no DejaVu font to render a scan with")
    scan = render_scan(ENGLISH_TEXT, font, 200)
    return mixed_pdf(tmp_path / "mixed.pdf", [DIGITAL_ONE, scan, DIGITAL_THREE], 200)


def test_only_the_scanned_page_of_a_digital_pdf_is_read_and_only_its_chunks_say_ocr(
    mixed: Path,
) -> None:
    require_ocr()
    doc = _extract(mixed, "auto")
    assert (doc.ocr_pages, doc.no_text_pages) == ((2,), ())
    assert doc.text.startswith(DIGITAL_ONE.strip()[:40])
    assert recall_for("en", ENGLISH_TEXT, doc.text) >= 0.95
    chunks = chunk_document(doc, ChunkSettings(64, 0, "estimate"), make_counter("estimate"))
    assert chunks
    for chunk in chunks:
        assert chunk.page_start is not None
        assert chunk.page_end is not None
        assert chunk.ocr == (chunk.page_start <= 2 <= chunk.page_end), chunk
    assert any(chunk.ocr for chunk in chunks)
    assert not all(chunk.ocr for chunk in chunks)


def test_never_leaves_the_scanned_page_flagged_as_before(mixed: Path) -> None:
    doc = _extract(mixed, "never")
    assert (doc.ocr_pages, doc.no_text_pages) == ((), (2,))
    assert "quarterly" not in doc.text


def test_always_reads_digital_pages_too(tmp_path: Path) -> None:
    require_ocr()
    path = mixed_pdf(tmp_path / "digital.pdf", [DIGITAL_ONE], 200)
    doc = _extract(path, "always")
    assert doc.ocr_pages == (1,)
    assert recall_for("en", DIGITAL_ONE, doc.text) >= 0.95


def test_a_page_over_its_time_limit_is_a_warning_and_the_file_goes_on(
    mixed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_ocr()
    monkeypatch.setattr(ocr, "OCR_PAGE_TIMEOUT_S", 0.01)  # tesseract is killed at once
    doc = _extract(mixed, "auto")
    assert (doc.ocr_pages, doc.no_text_pages) == ((), (2,))
    assert doc.warnings == ("page 2: OCR failed (took longer than 0.01 s)",)
    assert "apples" in doc.text
    assert "pears" in doc.text


def test_pages_past_the_files_time_budget_are_left_flagged_with_one_warning(mixed: Path) -> None:
    require_ocr()
    texts, notes = ocr.recognise_pages(mixed.read_bytes(), [2, 3], time.monotonic())
    assert texts == {}
    assert notes == [
        "OCR stopped at page 2: 2 page(s) left unread within the file's time limit "
        "(raise --extract-timeout)"
    ]


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("本 季度 报告 显示 ， 北部", "本季度报告显示，北部"),
        ("Net 30 days, 1.5%\r\n\n", "Net 30 days, 1.5%"),
        ("合同 Baker & Sons 公司", "合同 Baker & Sons 公司"),  # spaces beside Latin words stay
        ("第一行\n第二行", "第一行\n第二行"),
    ],
)
def test_clean_joins_chinese_characters_tesseract_spaced_out(raw: str, kept: str) -> None:
    assert ocr.clean(raw) == kept


@pytest.mark.parametrize("value", ["bogus", "AUTO", ""])
def test_a_wrong_ocr_value_is_a_one_line_usage_error(value: str) -> None:
    with pytest.raises(UsageError) as caught:
        ocr.ocr_mode(value)
    assert str(caught.value) == f"--ocr must be auto, always or never (got {value!r})"


def test_without_tesseract_ocr_defaults_to_never_and_asking_for_it_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract on it
    assert ocr.ocr_mode(None) == "never"
    assert ocr.ocr_mode("never") == "never"
    with pytest.raises(UsageError) as caught:
        ocr.check_ocr("auto")
    assert "apt-get install tesseract-ocr tesseract-ocr-chi-sim" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_poster_sized_page_is_rendered_within_the_pixel_cap(tmp_path: Path) -> None:
    import pypdfium2 as pdfium
    from reportlab.pdfgen import canvas  # type: ignore[import-untyped]

    path = tmp_path / "poster.pdf"
    poster = canvas.Canvas(str(path), pagesize=(200 * 72, 100 * 72))  # 200 x 100 inches
    poster.showPage()
    poster.save()
    document = pdfium.PdfDocument(path.read_bytes())
    try:
        image = ocr._render(document, 1)
    finally:
        document.close()
    width, height = image.size
    assert width * height <= ocr.OCR_MAX_PIXELS
    assert width == pytest.approx(2 * height, rel=0.01)  # the page's shape is kept
    assert width * height > ocr.OCR_MAX_PIXELS * 0.97  # and as much resolution as fits


def test_many_pages_ocr_cannot_read_are_summed_up_in_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_ocr()
    monkeypatch.setattr(ocr, "OCR_PAGE_TIMEOUT_S", 0.01)
    path = tmp_path / "scans.pdf"
    path.write_bytes(scan_pdf([render_scan("Page.", _font("en"), 100)] * 14, 100))
    texts, notes = ocr.recognise_pages(path.read_bytes(), range(1, 15), time.monotonic() + 60)
    assert texts == {}
    assert len(notes) == MAX_PAGE_WARNINGS
    assert notes[0] == "page 1: OCR failed (took longer than 0.01 s)"
    assert notes[-1] == f"and {14 - MAX_PAGE_WARNINGS + 1} more pages OCR could not read"
