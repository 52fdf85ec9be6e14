"""Real test inputs, made on the spot: PDFs (reportlab or raw objects), DOCX files
(python-docx, then edited as XML where python-docx has no API), and the broken variants of
each that users meet."""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docx
from docx.oxml import parse_xml
from reportlab.lib import pdfencrypt  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.utils import simpleSplit  # type: ignore[import-untyped]
from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
from reportlab.pdfbase.cidfonts import UnicodeCIDFont  # type: ignore[import-untyped]
from reportlab.pdfgen import canvas  # type: ignore[import-untyped]

CJK_FONT = "STSong-Light"
W_NS = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def make_pdf(
    path: Path,
    pages: Sequence[str | None],
    *,
    user_password: str | None = None,
    owner_password: str | None = None,
) -> Path:
    """One page per entry: its lines of text (CJK lines in STSong), or None for a page that
    holds only a drawing (what a scan looks like to a text extractor)."""
    pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    encrypt = None
    if user_password is not None or owner_password is not None:
        encrypt = pdfencrypt.StandardEncryption(
            user_password or "", ownerPassword=owner_password or "owner", canPrint=1
        )
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1, encrypt=encrypt)
    for page in pages:
        pdf.setPageSize(A4)
        if page is None:
            pdf.rect(72, 72, 300, 400, fill=1)
        else:
            # Lines wrap at the margin and a long page grows taller, as a typesetter would
            # keep text on the page: text outside the visible page box is not extracted.
            lines = []
            for line in page.split("\n"):
                font = CJK_FONT if any(ord(c) > 0x2E80 for c in line) else "Helvetica"
                lines += [(font, piece) for piece in _wrapped(line, font)]
            height = max(A4[1], 16.0 * len(lines) + 134)
            pdf.setPageSize((A4[0], height))
            y = height - 62
            for font, piece in lines:
                pdf.setFont(font, 11)
                pdf.drawString(72, y, piece)
                y -= 16
        pdf.showPage()
    pdf.save()
    return path


def _wrapped(line: str, font: str, size: float = 11, width: float = A4[0] - 144) -> list[str]:
    if pdfmetrics.stringWidth(line, font, size) <= width:
        return [line]
    return list(simpleSplit(line, font, size, width)) or [line]


def raw_pdf(objects: Sequence[bytes]) -> bytes:
    """A PDF from raw object bodies (object 1 must be the catalog), with a correct xref."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _stream(content: bytes, compress: bool = False) -> bytes:
    if compress:
        content = zlib.compress(content, 9)
        return b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + (
            content + b"\nendstream"
        )
    return b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"


_CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def pdf_with_broken_page() -> bytes:
    """Two pages; the second page object is an array, not a dictionary: pdfium cannot load
    that page, the first one reads fine."""
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
    )
    return raw_pdf(
        [
            _CATALOG,
            b"<< /Type /Pages /Kids [3 0 R 6 0 R] /Count 2 >>",
            page,
            _stream(b"BT /F1 12 Tf 72 700 Td (First page reads fine.) Tj ET"),
            _FONT,
            b"[1 2 3]",
        ]
    )


def pdf_bomb(repeats: int = 4_000_000) -> bytes:
    """A ~40 KB PDF whose one page holds millions of text operators: seconds of CPU and a lot
    of memory for any extractor. The pathological file a time or memory limit is for."""
    content = b"BT /F1 12 Tf 72 700 Td " + b"(a) Tj " * repeats + b"ET"
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
    )
    return raw_pdf(
        [
            _CATALOG,
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            page,
            _stream(content, compress=True),
            _FONT,
        ]
    )


def make_docx(path: Path, build: Callable[[Any], None]) -> Path:
    """A DOCX made by ``build(document)`` on a fresh python-docx Document."""
    document = docx.Document()
    build(document)
    document.save(str(path))
    return path


def append_xml(parent: Any, xml: str) -> None:
    """Append a WordprocessingML fragment (``w:`` prefix) to an lxml element."""
    name_end = min(i for i in (xml.find(" "), xml.find(">"), xml.find("/")) if i > 0)
    parent.append(parse_xml(f"{xml[:name_end]} {W_NS}{xml[name_end:]}"))


def rewrite_zip(path: Path, replace: dict[str, bytes]) -> Path:
    """Rewrite the ZIP at ``path`` with some members' bytes replaced."""
    source = io.BytesIO(path.read_bytes())
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(path, "w") as new:
        for info in old.infolist():
            new.writestr(info, replace.get(info.filename, old.read(info.filename)))
    return path


def ole2_file(stream_name: str | None) -> bytes:
    """The start of an OLE2 compound file with a directory entry named ``stream_name``
    (names are UTF-16LE there), as Word 97-2003 files and encrypted OOXML packages have."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    entry = (stream_name or "Root Entry").encode("utf-16-le").ljust(64, b"\0") + bytes(64)
    return header + entry + bytes(1024)


@contextmanager
def unreadable(path: Path) -> Iterator[None]:
    """Make ``path`` unreadable to this process for the duration of the block.

    ``chmod 000`` does not stop root, so as root the effective uid and gid drop to nobody
    meanwhile (the real uid stays root, which is what lets them come back). Call it with the
    working directory inside the test folder and relative paths: nobody cannot traverse
    pytest's root-owned 0700 base folder.
    """
    mode = path.stat().st_mode
    path.chmod(0)
    root = os.geteuid() == 0
    cwd = Path.cwd()
    cwd_mode = cwd.stat().st_mode
    try:
        if root:
            cwd.chmod(0o755)  # pytest makes it 0700; nobody must be able to look inside
            os.setegid(_NOBODY)
            os.seteuid(_NOBODY)
        yield
    finally:
        if root:
            os.seteuid(0)
            os.setegid(0)
            cwd.chmod(cwd_mode)
        path.chmod(mode)


_NOBODY = 65534
