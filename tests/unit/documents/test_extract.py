from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from dscall.config import ExtractSettings
from dscall.documents.extract import extract
from dscall.errors import EmptyDocument, UnreadableFile
from dscall.types import DocType, SourceFile
from tests.unit.documents.builders import make_docx, make_pdf, unreadable


def _source(path: Path, doc_type: DocType) -> SourceFile:
    return SourceFile(path, path.name, doc_type, path.stat().st_size if path.exists() else 0)


def test_pdf_document_joins_pages_with_one_newline_and_knows_page_starts(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "a.pdf", ["First page.", "Second page.", None, "Fourth."])
    doc = extract(_source(path, "pdf"), ExtractSettings())
    assert doc.text == "First page.\nSecond page.\n\nFourth."
    assert doc.page_starts == (0, 12, 25, 26)
    for number, start in enumerate(doc.page_starts, 1):
        assert doc.text[start:].startswith(("First", "Second", "", "Fourth")[number - 1])
    assert doc.no_text_pages == (3,)
    assert doc.page_count == 4
    assert doc.doc_id == hashlib.sha256(path.read_bytes()).hexdigest()
    assert doc.source.rel_path == "a.pdf"


def test_docx_and_text_documents_have_no_pages(tmp_path: Path) -> None:
    docx_path = make_docx(tmp_path / "a.docx", lambda d: d.add_paragraph("Word text."))
    md_path = tmp_path / "b.md"
    md_path.write_text("# Title\r\n\r\nBody.\r\n", encoding="utf-8")
    docx_doc = extract(_source(docx_path, "docx"), ExtractSettings())
    md_doc = extract(_source(md_path, "md"), ExtractSettings())
    assert (docx_doc.text, docx_doc.page_starts, docx_doc.page_count) == ("Word text.", None, 0)
    assert (md_doc.text, md_doc.page_starts) == ("# Title\n\nBody.\n", None)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"")
    with pytest.raises(EmptyDocument, match=r"empty file \(0 bytes\)"):
        extract(_source(path, "pdf"), ExtractSettings())


def test_whitespace_only_text_is_an_empty_document(tmp_path: Path) -> None:
    path = tmp_path / "blank.txt"
    path.write_text(" \n\t\n")
    with pytest.raises(EmptyDocument, match="only whitespace"):
        extract(_source(path, "txt"), ExtractSettings())


def test_fully_scanned_pdf_is_an_empty_document_with_the_reason(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "scan.pdf", [None, None])
    with pytest.raises(EmptyDocument, match=r"no text layer on any of its 2 page\(s\)"):
        extract(_source(path, "pdf"), ExtractSettings())


def test_fifo_fails_at_once_instead_of_blocking(tmp_path: Path) -> None:
    path = tmp_path / "pipe.txt"
    os.mkfifo(path)
    with pytest.raises(UnreadableFile, match="not a regular file"):
        extract(SourceFile(path, "pipe.txt", "txt", 0), ExtractSettings())


def test_vanished_file(tmp_path: Path) -> None:
    path = tmp_path / "gone.txt"
    with pytest.raises(UnreadableFile, match="file not found"):
        extract(SourceFile(path, "gone.txt", "txt", 10), ExtractSettings())


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "folder.txt").mkdir()
    with pytest.raises(UnreadableFile, match=r"is a directory|not a regular file"):
        extract(SourceFile(tmp_path / "folder.txt", "folder.txt", "txt", 0), ExtractSettings())


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secret.txt").write_text("classified")
    monkeypatch.chdir(tmp_path)
    source = SourceFile(Path("secret.txt"), "secret.txt", "txt", 10)
    with unreadable(Path("secret.txt")), pytest.raises(UnreadableFile, match="permission denied"):
        extract(source, ExtractSettings())
