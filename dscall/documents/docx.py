"""DOCX bytes -> text, in true document order with tables interleaved.

python-docx opens and validates the package; the text is then read straight from the body XML,
child by child, because python-docx's own accessors lose what dscall needs: ``Document.tables``
is separate from the paragraphs (order lost), ``Row.cells`` repeats a merged cell once per grid
column it spans, and ``Paragraph.text`` skips runs inside tracked insertions and content controls.

Layout of the text:

- one line per paragraph (headings included, as plain lines); a line break inside a paragraph
  stays a newline, a tab stays a tab;
- one line per table row, cells separated by `` | ``. A horizontally merged cell (``gridSpan``,
  legacy ``hMerge``) is one ``w:tc`` and is written once. A vertically merged cell is written in
  its first row; the rows it continues into get an empty cell, so columns stay aligned. A cell's
  paragraphs are joined by a space so the row stays one line;
- a nested table is written inside its cell: its rows separated by ``; ``, its cells by ``, ``;
- content controls (``w:sdt``) and tracked insertions are read; deleted text, field codes and
  the ``mc:Fallback`` copy of drawings are not;
- headers and footers (``ExtractSettings.docx_headers_footers``): each distinct one once,
  headers before the body and footers after it. Footnotes, endnotes and comments are not read.

A legacy ``.doc`` or password-protected Word file (both OLE2 containers), a file that is not a
ZIP, a zip bomb (checked on the declared sizes before anything is inflated) and broken XML each
raise a ``DocumentError`` with a one-line reason. lxml itself refuses the XML bombs: entity
expansion past its amplification limit ("billion laughs") and nesting deeper than 256 elements
(so tables nest about 80 deep at most) are parse errors, hence "broken XML".
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from dscall.config import DOCX_BOMB_MIN_BYTES, DOCX_MAX_EXPANSION, DOCX_MAX_UNCOMPRESSED_BYTES
from dscall.documents.text import describe_content, normalise
from dscall.errors import CorruptDocument, EncryptedDocument, UnsupportedFormat

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
_P, _TBL, _TR, _TC, _SDT = f"{_W}p", f"{_W}tbl", f"{_W}tr", f"{_W}tc", f"{_W}sdt"
_T, _TAB, _BR, _CR = f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}cr"
_SDT_CONTENT, _TC_PR = f"{_W}sdtContent", f"{_W}tcPr"
_V_MERGE, _H_MERGE, _VAL = f"{_W}vMerge", f"{_W}hMerge", f"{_W}val"
_NO_BREAK_HYPHEN = f"{_W}noBreakHyphen"
# Subtrees whose text is not part of the visible text (or is a duplicate of it).
_SKIP = {f"{_W}delText", f"{_W}instrText", f"{_MC}Fallback", f"{_W}tblPr", f"{_W}pPr"}
# lxml elements (python-docx and lxml ship no type information dscall can use).
_Element = Any
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"
_OTHER_OFFICE = (
    ("spreadsheetml", "an Excel workbook"),
    ("presentationml", "a PowerPoint presentation"),
    ("macroEnabled", "a macro-enabled Word file (.docm), which dscall does not read"),
)
_HEADER_RELTYPE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/header"
_FOOTER_RELTYPE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/footer"


def extract_docx(data: bytes, headers_footers: bool = False) -> str:
    """The text of the Word document in ``data``. Raises a ``DocumentError`` subclass."""
    if data.startswith(_OLE2_MAGIC):
        raise _ole2_error(data)
    if not data.startswith(_ZIP_MAGIC):
        raise CorruptDocument(f"not a DOCX: not a ZIP archive ({describe_content(data)})")
    _check_expansion(data)
    document = _open(data)
    body = list(_blocks(document.element.body))
    if not headers_footers:
        return normalise("\n".join(body))
    headers, footers = _headers_footers(document)
    return normalise("\n".join(headers + body + footers))


def _ole2_error(data: bytes) -> Exception:
    # OLE2 directory entries store stream names in UTF-16LE: an encrypted OOXML package has
    # "EncryptedPackage", a Word 97-2003 file has "WordDocument".
    if "EncryptedPackage".encode("utf-16-le") in data:
        return EncryptedDocument(
            "password-protected Word file (encrypted OLE2 container): remove the password first"
        )
    if "WordDocument".encode("utf-16-le") in data:
        return UnsupportedFormat(
            "legacy Word 97-2003 .doc file (OLE2 container), not .docx: save it as .docx first"
        )
    return UnsupportedFormat("legacy .doc or password-protected Word file (OLE2 container)")


def _check_expansion(data: bytes) -> None:
    """Refuse a zip bomb before python-docx reads every part into memory. The sizes checked
    are the declared ones, and they bind: zipfile never inflates a member past its declared
    size (it fails the CRC instead)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return  # _open reports it, with its reason
    total = sum(member.file_size for member in members)
    if total > DOCX_MAX_UNCOMPRESSED_BYTES:
        raise CorruptDocument(
            f"the DOCX would expand to {total / 2**20:,.0f} MB "
            f"(dscall reads up to {DOCX_MAX_UNCOMPRESSED_BYTES / 2**20:,.0f} MB): a zip bomb?"
        )
    for member in members:
        ratio = member.file_size / max(1, member.compress_size)
        if member.file_size > DOCX_BOMB_MIN_BYTES and ratio > DOCX_MAX_EXPANSION:
            raise CorruptDocument(
                f"zip bomb: {member.filename!r} in the DOCX expands {ratio:,.0f}-fold "
                f"to {member.file_size / 2**20:,.0f} MB"
            )


def _open(data: bytes) -> Any:
    import docx

    try:
        return docx.Document(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise CorruptDocument(f"damaged or truncated DOCX: {exc}") from exc
    except SyntaxError as exc:  # lxml's XMLSyntaxError
        raise CorruptDocument(f"broken XML in the DOCX: {_broken_part(data) or exc}") from exc
    except KeyError as exc:  # "There is no item named 'word/document.xml' in the archive"
        missing = str(exc).split("named", 1)[-1].split("in the archive")[0].strip(" '\"")
        raise CorruptDocument(f"a ZIP archive but not a complete DOCX: no {missing}") from exc
    except ValueError as exc:  # "file '...' is not a Word file, content type is '...'"
        if "content type is" not in str(exc):  # e.g. zipfile's "negative seek value"
            raise CorruptDocument(f"damaged or truncated DOCX: {exc}") from exc
        raise CorruptDocument(_not_word(str(exc))) from exc
    except zlib.error as exc:
        raise CorruptDocument(f"damaged DOCX: a compressed part is corrupt ({exc})") from exc
    except Exception as exc:  # python-docx/lxml/zipfile have more failure types than listed
        raise CorruptDocument(f"unreadable DOCX ({type(exc).__name__}: {exc})") from exc


def _not_word(message: str) -> str:
    content_type = message.rsplit("content type is", 1)[-1].strip(" '\"")
    for marker, kind in _OTHER_OFFICE:
        if marker in content_type:
            return f"not a Word document: the ZIP holds {kind} ({content_type})"
    return f"not a Word document (content type {content_type})"


def _broken_part(data: bytes) -> str | None:
    """Name the XML part that does not parse, with lxml's line and column."""
    from docx.oxml import parse_xml

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if not name.endswith((".xml", ".rels")):
                continue
            try:
                parse_xml(archive.read(name))
            except SyntaxError as exc:  # lxml's XMLSyntaxError
                return f"{name}: {exc.msg}"
    return None


def _blocks(container: Iterable[_Element]) -> Iterator[str]:
    """Lines of a body, header, footer or cell: paragraphs and table rows in order."""
    for child in container:
        tag = child.tag
        if tag == _P:
            yield _paragraph(child)
        elif tag == _TBL:
            yield from _table_rows(child)
        elif tag == _SDT:
            for content in child.iterchildren(_SDT_CONTENT):
                yield from _blocks(content)


def _paragraph(element: _Element) -> str:
    parts: list[str] = []
    _collect(element, parts)
    return "".join(parts)


def _collect(element: _Element, parts: list[str]) -> None:
    for child in element:
        tag = child.tag
        if tag == _T:
            parts.append(child.text or "")
        elif tag == _TAB:
            parts.append("\t")
        elif tag in (_BR, _CR):
            parts.append("\n")
        elif tag == _NO_BREAK_HYPHEN:
            parts.append("-")
        elif tag == _P:  # a paragraph inside a text box: start it on its own line
            parts.append("\n")
            _collect(child, parts)
        elif tag not in _SKIP and isinstance(tag, str):
            _collect(child, parts)


def _table_rows(table: _Element) -> Iterator[str]:
    for row in _rows(table):
        cells = _row_cells(row)
        if cells:
            yield " | ".join(cells)


def _row_cells(row: _Element) -> list[str]:
    """Cell texts of a row; trailing empty cells dropped (nothing after them to align)."""
    cells = [_cell_text(cell) for cell in _cells(row)]
    while cells and not cells[-1]:
        cells.pop()
    return cells


def _rows(table: _Element) -> Iterator[_Element]:
    for child in table:
        if child.tag == _TR:
            yield child
        elif child.tag == _SDT:  # rows wrapped in a content control
            for content in child.iterchildren(_SDT_CONTENT):
                yield from _rows(content)


def _cells(row: _Element) -> Iterator[_Element]:
    for child in row:
        if child.tag == _TC:
            if not _is_h_merge_continuation(child):
                yield child
        elif child.tag == _SDT:
            for content in child.iterchildren(_SDT_CONTENT):
                yield from _cells(content)


def _is_h_merge_continuation(cell: _Element) -> bool:
    merge = _merge_mark(cell, _H_MERGE)
    return merge is not None and merge != "restart"


def _merge_mark(cell: _Element, tag: str) -> str | None:
    """The ``w:val`` of a vMerge/hMerge mark ("continue" when the attribute is absent)."""
    for props in cell.iterchildren(_TC_PR):
        for mark in props.iterchildren(tag):
            return str(mark.get(_VAL, "continue"))
    return None


def _cell_text(cell: _Element) -> str:
    v_merge = _merge_mark(cell, _V_MERGE)
    if v_merge is not None and v_merge != "restart":
        return ""  # the text was written in the row where the merge starts
    parts: list[str] = []
    for child in cell:
        if child.tag == _TBL:
            parts.append(_nested_table(child))
        elif child.tag in (_P, _SDT):
            parts.extend(_blocks([child]))
    return " ".join(" ".join(part.split()) for part in parts if part.strip())


def _nested_table(table: _Element) -> str:
    rows = []
    for row in _rows(table):
        cells = _row_cells(row)
        if cells:
            rows.append(", ".join(cells))
    return "; ".join(rows)


def _headers_footers(document: _Element) -> tuple[list[str], list[str]]:
    """Text of each distinct header and footer part, in part-name order."""
    headers: list[str] = []
    footers: list[str] = []
    rels = document.part.rels.values()
    parts = sorted(
        (rel for rel in rels if rel.reltype in (_HEADER_RELTYPE, _FOOTER_RELTYPE)),
        key=lambda rel: str(rel.target_part.partname),
    )
    seen: set[str] = set()
    for rel in parts:
        text = "\n".join(_blocks(rel.target_part.element)).strip()
        if text and text not in seen:
            seen.add(text)
            (headers if rel.reltype == _HEADER_RELTYPE else footers).append(text)
    return headers, footers
