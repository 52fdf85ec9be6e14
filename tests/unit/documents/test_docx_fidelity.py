"""Issue 14, DOCX findings: tracked moves, notes, list numbering, drop caps, symbol fonts.
Each on a committed fixture (scripts/make_fidelity_fixtures.py, scripts/fidelity_docx.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dscall.documents.docx import extract_docx
from dscall.documents.docx_numbering import format_number
from dscall.documents.docx_symbols import symbol_text
from dscall.errors import CorruptDocument
from tests.unit.documents.builders import rewrite_zip

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "documents"


def _text(name: str, headers_footers: bool = False) -> str:
    return extract_docx((FIXTURES / name).read_bytes(), headers_footers)


def test_tracked_changes_read_as_accepted() -> None:
    text = _text("tracked_changes.docx")
    assert text == "Intro. Middle.\nEnd. Moved sentence.\nKept added.\nkept row"
    assert text.count("Moved sentence.") == 1  # moved-from text is not read a second time


def test_footnotes_and_endnotes_follow_the_body_numbered_in_reference_order() -> None:
    assert _text("notes.docx") == (
        "Freight rose.[1] Costs fell.[2]\nSee the sources.[i]\n"
        "Footnotes:\n[1] Measured in TEU.\n[2] Costs per container.\n"
        "Endnotes:\n[i] Port authority statistics, 2025."
    )


def test_list_numbers_and_bullets_are_kept() -> None:
    assert _text("lists.docx").split("\n") == [
        "1. one",
        "2. two",
        "a. two a",
        "b. two b",
        "i) two b i",
        "3. three",
        "a. three a",  # the deeper level restarted after "3."
        "Not a list item.",
        "• bullet",
        "• sub-bullet",
        "III. third",  # startOverride 3
        "IV. fourth",
        "1. chapter",
        "1.1. section",
        "1.2. section",
        "1. styled one",  # numbered through the paragraph style
        "2. styled two",
        "• styled bullet",
    ]


def test_drop_cap_joins_its_word_and_symbols_are_unicode() -> None:
    lines = _text("drop_cap_symbols.docx").split("\n")
    assert lines[0] == "Drop cap opens this paragraph."
    assert lines[1] == "Done ✓ boxes ☑ next → alpha α unknown \uf0b0 text font é"


def test_headers_and_footers_only_when_asked() -> None:
    assert _text("headers_footers.docx") == "Freight volumes rose in the third quarter."
    assert _text("headers_footers.docx", headers_footers=True) == (
        "ACME Logistics - confidential\nFreight volumes rose in the third quarter.\n"
        "Quarterly report footer"
    )


@pytest.mark.parametrize(
    ("value", "fmt", "text"),
    [
        (3, "decimal", "3"),
        (1, "lowerLetter", "a"),
        (26, "upperLetter", "Z"),
        (27, "lowerLetter", "aa"),  # Word repeats the letter
        (4, "lowerRoman", "iv"),
        (1994, "upperRoman", "MCMXCIV"),
        (7, "decimalZero", "07"),
        (5, "chineseCounting", "5"),  # unknown formats read as decimal
    ],
)
def test_format_number(value: int, fmt: str, text: str) -> None:
    assert format_number(value, fmt) == text


@pytest.mark.parametrize(
    ("font", "code", "text"),
    [
        ("Symbol", "F0B7", "•"),
        ("Symbol", "00B7", "•"),  # some producers leave out the private-use offset
        ("Symbol", "F0DE", "⇒"),
        ("Wingdings", "F0FC", "✓"),
        ("Wingdings", "F0A7", "▪"),
        ("Wingdings", "F0D8", "➢"),
        ("Wingdings 2", "F050", "\uf050"),  # a symbol font without a table: kept, not dropped
        ("Webdings", "F0B0", "\uf0b0"),
        ("Arial", "F0E9", "é"),  # a text font: the code is an ordinary character
        ("Arial", "2014", "—"),
        ("Symbol", "zz", ""),  # no valid code: nothing to write
    ],
)
def test_symbol_text(font: str, code: str, text: str) -> None:
    assert symbol_text(font, code) == text


def test_broken_notes_part_names_the_part(tmp_path: Path) -> None:
    path = tmp_path / "notes.docx"
    shutil.copy(FIXTURES / "notes.docx", path)
    rewrite_zip(path, {"word/footnotes.xml": b"<w:footnotes><w:footnote>"})
    with pytest.raises(CorruptDocument, match=r"^broken XML in the DOCX: word/footnotes\.xml: "):
        extract_docx(path.read_bytes())


def test_office_math_text_is_read() -> None:
    import io

    import docx
    from docx.oxml import parse_xml

    document = docx.Document()
    paragraph = document.add_paragraph("The area is ")
    math = (
        '<m:oMath xmlns:m="http://schemas.openxmlformats.org/officeDocument/2006/math">'
        "<m:r><m:t>πr</m:t></m:r><m:sSup><m:e><m:r><m:t>x</m:t></m:r></m:e>"
        "<m:sup><m:r><m:t>2</m:t></m:r></m:sup></m:sSup></m:oMath>"
    )
    paragraph._p.append(parse_xml(math))
    paragraph.add_run(" square units.")
    out = io.BytesIO()
    document.save(out)
    assert extract_docx(out.getvalue()) == "The area is πrx2 square units."


def test_a_relationship_to_a_missing_part_does_not_lose_the_text() -> None:
    # The tool that wrote it dropped an image but kept its relationship (docx2python's
    # nested_paragraphs_in_header3b.docx in bench-docs): Word and pandoc read the text.
    import io
    import zipfile

    import docx
    from PIL import Image

    picture = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(picture, format="PNG")
    document = docx.Document()
    document.add_paragraph("Text before the picture.")
    document.add_picture(io.BytesIO(picture.getvalue()))
    document.add_paragraph("Text after the picture.")
    saved = io.BytesIO()
    document.save(saved)
    broken = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(saved.getvalue())) as old, zipfile.ZipFile(broken, "w") as new:
        for info in old.infolist():
            if not info.filename.startswith("word/media/"):
                new.writestr(info, old.read(info.filename))
    text = extract_docx(broken.getvalue())
    assert "Text before the picture." in text
    assert "Text after the picture." in text


def test_a_docx_without_its_document_part_stays_an_error() -> None:
    import io
    import zipfile

    import docx

    saved = io.BytesIO()
    docx.Document().save(saved)
    broken = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(saved.getvalue())) as old, zipfile.ZipFile(broken, "w") as new:
        for info in old.infolist():
            if info.filename != "word/document.xml":
                new.writestr(info, old.read(info.filename))
    with pytest.raises(CorruptDocument, match=r"no word/document\.xml"):
        extract_docx(broken.getvalue())
