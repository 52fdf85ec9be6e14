from __future__ import annotations

from pathlib import Path

import pytest

from dscall.documents.pdf import check_backend, extract_pdf, pdfium_available
from dscall.errors import CorruptDocument, EncryptedDocument
from tests.unit.documents.builders import make_pdf, pdf_with_broken_page

BACKENDS = ["pdfium", "pypdf"]

needs_pdfium = pytest.mark.skipif(not pdfium_available(), reason="pypdfium2 not installed")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "pdfium" and not pdfium_available():
        pytest.skip("pypdfium2 not installed")
    return str(request.param)


def test_pages_in_order_with_cjk_text(tmp_path: Path, backend: str) -> None:
    path = make_pdf(
        tmp_path / "a.pdf",
        ["Page one: revenue grew 23%.", "第二页：货运量增长百分之十二。", "Page three ends."],
    )
    result = extract_pdf(path.read_bytes(), backend)  # type: ignore[arg-type]
    assert result.pages == (
        "Page one: revenue grew 23%.",
        "第二页：货运量增长百分之十二。",
        "Page three ends.",
    )
    assert result.no_text_pages == ()
    assert result.warnings == ()


def test_lines_within_a_page_are_newlines_and_pages_are_stripped(
    tmp_path: Path, backend: str
) -> None:
    path = make_pdf(tmp_path / "a.pdf", ["first line\nsecond line"])
    (page,) = extract_pdf(path.read_bytes(), backend).pages  # type: ignore[arg-type]
    assert page == "first line\nsecond line"


def test_line_end_hyphenation_is_joined(tmp_path: Path, backend: str) -> None:
    # pdfium merges "co-" + newline + "operative" and marks the join U+FFFE; nothing in the
    # document says "co-operative" is a compound, so the word is joined (test_pdf_fidelity).
    path = make_pdf(tmp_path / "a.pdf", ["This is a co-\noperative effort."])
    (page,) = extract_pdf(path.read_bytes(), backend).pages  # type: ignore[arg-type]
    assert page == "This is a cooperative effort."


def test_page_without_text_layer_is_flagged(tmp_path: Path, backend: str) -> None:
    path = make_pdf(tmp_path / "scan.pdf", ["text page", None, "another text page"])
    result = extract_pdf(path.read_bytes(), backend)  # type: ignore[arg-type]
    assert result.no_text_pages == (2,)
    assert result.pages[1] == ""
    assert len(result.pages) == 3


def test_user_password_gives_encrypted_document(tmp_path: Path, backend: str) -> None:
    path = make_pdf(tmp_path / "locked.pdf", ["secret"], user_password="s3cret")
    with pytest.raises(EncryptedDocument, match="password-protected PDF"):
        extract_pdf(path.read_bytes(), backend)  # type: ignore[arg-type]


def test_owner_password_only_opens_with_the_empty_password(tmp_path: Path, backend: str) -> None:
    path = make_pdf(tmp_path / "restricted.pdf", ["readable text"], owner_password="owner")
    assert extract_pdf(path.read_bytes(), backend).pages == ("readable text",)  # type: ignore[arg-type]


def test_truncated_pdf_names_the_cause(tmp_path: Path, backend: str) -> None:
    data = make_pdf(tmp_path / "a.pdf", ["page"] * 5).read_bytes()
    with pytest.raises(CorruptDocument, match=r"^truncated PDF: .*%%EOF"):
        extract_pdf(data[: len(data) * 2 // 3], backend)  # type: ignore[arg-type]


def test_html_named_pdf_is_not_a_pdf(backend: str) -> None:
    html = b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>\n"
    with pytest.raises(CorruptDocument, match=r"not a PDF: no %PDF header.*HTML"):
        extract_pdf(html, backend)  # type: ignore[arg-type]


def test_garbage_after_the_header_is_corrupt(backend: str) -> None:
    with pytest.raises(CorruptDocument, match="corrupt PDF"):
        extract_pdf(b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n", backend)  # type: ignore[arg-type]


@needs_pdfium
@pytest.mark.parametrize("choice", ["pdfium", "auto"])
def test_a_page_that_fails_becomes_a_warning_and_the_document_goes_on(choice: str) -> None:
    result = extract_pdf(pdf_with_broken_page(), choice)  # type: ignore[arg-type]
    assert result.pages[0] == "First page reads fine."
    assert result.pages[1] == ""
    assert result.warnings == ("page 2: unreadable (failed to load page)",)
    assert result.no_text_pages == ()  # a failed page is reported as such, not as a scan


@needs_pdfium
def test_auto_uses_pdfium_and_matches_pypdf_text(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "a.pdf", ["Alpha beta.\nGamma.", "中文，English mixed。"])
    data = path.read_bytes()
    assert extract_pdf(data, "auto").pages == extract_pdf(data, "pypdf").pages


def test_check_backend_accepts_what_is_installed() -> None:
    check_backend("auto")
    check_backend("pypdf")
    if pdfium_available():
        check_backend("pdfium")
