from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from dscall.documents.docx import extract_docx
from dscall.errors import CorruptDocument, EncryptedDocument, UnsupportedFormat
from tests.unit.documents.builders import append_xml, make_docx, ole2_file, rewrite_zip


def _text(path: Path, headers_footers: bool = False) -> str:
    return extract_docx(path.read_bytes(), headers_footers)


def test_body_order_with_tables_interleaved_and_headings_as_lines(tmp_path: Path) -> None:
    def build(document: Any) -> None:
        document.add_heading("Quarterly review", level=1)
        document.add_paragraph("Before the table.")
        table = document.add_table(rows=2, cols=2)
        for r, row in enumerate([("Region", "Sales"), ("North", "1,200")]):
            for c, value in enumerate(row):
                table.cell(r, c).text = value
        document.add_heading("Next steps", level=2)
        document.add_paragraph("After the table.")

    assert _text(make_docx(tmp_path / "a.docx", build)) == (
        "Quarterly review\nBefore the table.\nRegion | Sales\nNorth | 1,200\n"
        "Next steps\nAfter the table."
    )


def test_horizontally_merged_cell_is_written_once(tmp_path: Path) -> None:
    def build(document: Any) -> None:
        table = document.add_table(rows=2, cols=3)
        merged = table.cell(0, 0).merge(table.cell(0, 1))
        merged.text = "Both quarters"
        table.cell(0, 2).text = "Total"
        for c, value in enumerate(["Q1", "Q2", "Sum"]):
            table.cell(1, c).text = value

    text = _text(make_docx(tmp_path / "a.docx", build))
    assert text == "Both quarters | Total\nQ1 | Q2 | Sum"


def test_vertically_merged_cell_is_written_once_and_columns_stay_aligned(tmp_path: Path) -> None:
    def build(document: Any) -> None:
        table = document.add_table(rows=3, cols=2)
        merged = table.cell(0, 0).merge(table.cell(2, 0))
        merged.text = "Europe"
        for r, value in enumerate(["Berlin", "Paris", "Rome"]):
            table.cell(r, 1).text = value

    text = _text(make_docx(tmp_path / "a.docx", build))
    assert text == "Europe | Berlin\n | Paris\n | Rome"
    assert text.count("Europe") == 1


def test_nested_table_is_included_inside_its_cell(tmp_path: Path) -> None:
    def build(document: Any) -> None:
        table = document.add_table(rows=1, cols=2)
        table.cell(0, 0).text = "Contacts"
        cell = table.cell(0, 1)
        cell.text = "See:"
        inner = cell.add_table(rows=2, cols=2)
        for r, row in enumerate([("Ana", "ana@example.com"), ("Bo", "bo@example.com")]):
            for c, value in enumerate(row):
                inner.cell(r, c).text = value

    text = _text(make_docx(tmp_path / "a.docx", build))
    assert text == "Contacts | See: Ana, ana@example.com; Bo, bo@example.com"


def test_breaks_tabs_insertions_and_content_controls_read_deletions_skipped(
    tmp_path: Path,
) -> None:
    def build(document: Any) -> None:
        paragraph = document.add_paragraph("Line one")
        run = paragraph.add_run()
        run.add_break()
        run.add_text("line two\tafter tab")
        append_xml(
            paragraph._p,
            '<w:ins w:id="1" w:author="a"><w:r><w:t xml:space="preserve"> inserted</w:t></w:r>'
            "</w:ins>",
        )
        append_xml(
            paragraph._p,
            '<w:del w:id="2" w:author="a"><w:r><w:delText>DELETED</w:delText></w:r></w:del>',
        )
        append_xml(
            document.element.body,
            "<w:sdt><w:sdtContent><w:p><w:r><w:t>In a content control</w:t></w:r></w:p>"
            "</w:sdtContent></w:sdt>",
        )

    text = _text(make_docx(tmp_path / "a.docx", build))
    assert text.startswith("Line one\nline two\tafter tab inserted\nIn a content control")
    assert "DELETED" not in text


def test_headers_and_footers_only_when_asked(tmp_path: Path) -> None:
    def build(document: Any) -> None:
        section = document.sections[0]
        section.header.paragraphs[0].text = "ACME confidential"
        section.footer.paragraphs[0].text = "Page footer text"
        document.add_paragraph("Body text.")

    path = make_docx(tmp_path / "a.docx", build)
    assert _text(path) == "Body text."
    assert _text(path, headers_footers=True) == "ACME confidential\nBody text.\nPage footer text"


def test_encrypted_word_file_in_ole2_container() -> None:
    with pytest.raises(EncryptedDocument, match="password-protected Word file"):
        extract_docx(ole2_file("EncryptedPackage"))


def test_legacy_doc_in_ole2_container() -> None:
    with pytest.raises(UnsupportedFormat, match=r"legacy Word 97-2003 \.doc"):
        extract_docx(ole2_file("WordDocument"))


def test_unknown_ole2_container_says_either() -> None:
    with pytest.raises(
        UnsupportedFormat, match=r"legacy \.doc or password-protected Word file \(OLE2 container\)"
    ):
        extract_docx(ole2_file(None))


def test_not_a_zip() -> None:
    with pytest.raises(CorruptDocument, match=r"not a DOCX: not a ZIP archive.*plain text"):
        extract_docx(b"This is a text file someone named report.docx\n")


def test_broken_xml_names_the_part(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "a.docx", lambda d: d.add_paragraph("hello"))
    with zipfile.ZipFile(path) as archive:
        xml = archive.read("word/document.xml")
    rewrite_zip(path, {"word/document.xml": xml[: len(xml) // 2]})
    with pytest.raises(CorruptDocument, match=r"broken XML in the DOCX: word/document\.xml: "):
        _text(path)


def test_truncated_zip(tmp_path: Path) -> None:
    data = make_docx(tmp_path / "a.docx", lambda d: d.add_paragraph("hello")).read_bytes()
    with pytest.raises(CorruptDocument, match="damaged or truncated DOCX"):
        extract_docx(data[: len(data) // 2])


def test_zip_that_is_not_a_word_document(tmp_path: Path) -> None:
    path = tmp_path / "photos.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("holiday.txt", "not a word document")
    with pytest.raises(
        CorruptDocument, match=r"a ZIP archive but not a complete DOCX: no \[Content_Types\]\.xml"
    ):
        _text(path)


def test_excel_workbook_named_docx(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "a.docx", lambda d: d.add_paragraph("hello"))
    with zipfile.ZipFile(path) as archive:
        types = archive.read("[Content_Types].xml")
    spreadsheet = types.replace(b"wordprocessingml.document.main", b"spreadsheetml.sheet.main")
    rewrite_zip(path, {"[Content_Types].xml": spreadsheet})
    with pytest.raises(CorruptDocument, match="not a Word document: the ZIP holds an Excel"):
        _text(path)
