"""DOCX bytes -> text, in true document order with tables interleaved.

python-docx opens and validates the package; the text is then read straight from the body XML,
child by child (``docx_body``), because python-docx's own accessors lose what dscall needs:
``Document.tables`` is separate from the paragraphs (order lost), ``Row.cells`` repeats a merged
cell once per grid column it spans, ``Paragraph.text`` skips runs inside tracked insertions and
content controls, and list numbers, note marks and symbols are not text to it at all.

The text: headers (when asked), the body, the footnotes and endnotes the body refers to
(``docx_notes``), footers (when asked). Headers and footers
(``ExtractSettings.docx_headers_footers``, ``--headers``): each distinct one once, headers before
the body and footers after the notes. Comments are not read.

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
from typing import Any

from dscall.config import DOCX_BOMB_MIN_BYTES, DOCX_MAX_EXPANSION, DOCX_MAX_UNCOMPRESSED_BYTES
from dscall.documents.docx_body import BlockReader
from dscall.documents.docx_notes import Notes
from dscall.documents.docx_numbering import ListNumbering
from dscall.documents.text import describe_content, normalise
from dscall.errors import CorruptDocument, EncryptedDocument, UnsupportedFormat

# lxml elements (python-docx and lxml ship no type information dscall can use).
_Element = Any
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"
_OTHER_OFFICE = (
    ("spreadsheetml", "an Excel workbook"),
    ("presentationml", "a PowerPoint presentation"),
    ("macroEnabled", "a macro-enabled Word file (.docm), which dscall does not read"),
)
_RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_HEADER_RELTYPE, _FOOTER_RELTYPE = f"{_RELATIONSHIPS}/header", f"{_RELATIONSHIPS}/footer"
_NUMBERING_RELTYPE, _STYLES_RELTYPE = f"{_RELATIONSHIPS}/numbering", f"{_RELATIONSHIPS}/styles"
_FOOTNOTES_RELTYPE, _ENDNOTES_RELTYPE = f"{_RELATIONSHIPS}/footnotes", f"{_RELATIONSHIPS}/endnotes"


def extract_docx(data: bytes, headers_footers: bool = False) -> str:
    """The text of the Word document in ``data``. Raises a ``DocumentError`` subclass."""
    if data.startswith(_OLE2_MAGIC):
        raise _ole2_error(data)
    if not data.startswith(_ZIP_MAGIC):
        raise CorruptDocument(f"not a DOCX: not a ZIP archive ({describe_content(data)})")
    _check_expansion(data)
    document = _open(data)
    numbering = ListNumbering(
        _part_xml(document, _NUMBERING_RELTYPE), _part_xml(document, _STYLES_RELTYPE)
    )
    notes = Notes(_part_xml(document, _FOOTNOTES_RELTYPE), _part_xml(document, _ENDNOTES_RELTYPE))
    reader = BlockReader(numbering, notes)
    body = list(reader.blocks(document.element.body))  # first: it numbers lists and notes
    body += notes.sections(reader.blocks)
    if not headers_footers:
        return normalise("\n".join(body))
    headers, footers = _headers_footers(document, reader)
    return normalise("\n".join(headers + body + footers))


def _part_xml(document: _Element, reltype: str) -> _Element | None:
    """The root element of the document's part of ``reltype``, or None when it has none.
    python-docx parses the parts it knows (numbering, styles); the others (notes) are bytes."""
    from docx.oxml import parse_xml

    try:
        part = document.part.part_related_by(reltype)
    except (KeyError, ValueError):  # none, or several (a damaged file): read without it
        return None
    element = getattr(part, "element", None)
    if element is not None:
        return element
    try:
        return parse_xml(part.blob)
    except SyntaxError as exc:  # lxml's XMLSyntaxError
        raise CorruptDocument(
            f"broken XML in the DOCX: {str(part.partname).lstrip('/')}: {exc.msg}"
        ) from exc


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
        repaired = None if missing == "word/document.xml" else _repaired(data)
        if repaired is not None:
            return repaired
        raise CorruptDocument(f"a ZIP archive but not a complete DOCX: no {missing}") from exc
    except ValueError as exc:  # "file '...' is not a Word file, content type is '...'"
        if "content type is" not in str(exc):  # e.g. zipfile's "negative seek value"
            raise CorruptDocument(f"damaged or truncated DOCX: {exc}") from exc
        raise CorruptDocument(_not_word(str(exc))) from exc
    except zlib.error as exc:
        raise CorruptDocument(f"damaged DOCX: a compressed part is corrupt ({exc})") from exc
    except Exception as exc:  # python-docx/lxml/zipfile have more failure types than listed
        raise CorruptDocument(f"unreadable DOCX ({type(exc).__name__}: {exc})") from exc


def _repaired(data: bytes) -> Any:
    """The document opened without its relationships to missing parts, or None."""
    import docx

    from dscall.documents.docx_repair import without_dangling_relationships

    try:
        fixed = without_dangling_relationships(data)
        return None if fixed is None else docx.Document(io.BytesIO(fixed))
    except Exception:  # still broken: the original error is the one to report
        return None


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


def _headers_footers(document: _Element, reader: BlockReader) -> tuple[list[str], list[str]]:
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
        text = "\n".join(reader.blocks(rel.target_part.element)).strip()
        if text and text not in seen:
            seen.add(text)
            (headers if rel.reltype == _HEADER_RELTYPE else footers).append(text)
    return headers, footers
