"""One file -> one ``Document``: read the bytes, hash them, hand them to the format's extractor.

``extract`` raises ``DocumentError`` subclasses only. Two choices the SPEC leaves open:

- A file is opened non-blocking and must be a regular file, so a FIFO or device that slipped
  past discovery (or replaced a file since) fails at once instead of blocking a worker.
- No free file descriptor (EMFILE/ENFILE) is waited out (``dscall.fdlimit``), never taken for
  an unreadable file: it is dscall's own limit, and it frees up as requests finish.
- A document whose extracted text is empty or whitespace only (a PDF whose every page is a
  scan, a blank DOCX) raises ``EmptyDocument`` with the reason: it becomes an error row the
  user can see, rather than a document that silently yields no chunks. A PDF with *some*
  text-less pages is fine: those pages are listed in ``no_text_pages``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

from dscall.config import ExtractSettings
from dscall.documents.docx import extract_docx
from dscall.documents.ocr import apply_ocr
from dscall.documents.pdf import extract_pdf
from dscall.documents.text import extract_text
from dscall.errors import EmptyDocument, UnreadableFile
from dscall.fdlimit import fd_exhausted_reason, out_of_fds, retry_out_of_fds
from dscall.types import Document, SourceFile


def extract(source: SourceFile, settings: ExtractSettings) -> Document:
    """Read and extract ``source``. Raises a ``DocumentError`` subclass."""
    data = read_source(source)
    return extract_bytes(source, data, doc_id_of(data), settings)


def doc_id_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_source(source: SourceFile) -> bytes:
    """The file's bytes. Raises ``UnreadableFile``."""
    with open_source(source.path) as handle:
        try:
            return handle.read()
        except OSError as exc:
            raise UnreadableFile(os_reason(exc)) from exc


def open_source(path: Path, *, wait: bool = True) -> BinaryIO:
    """The file at ``path`` opened for reading, unbuffered. Raises ``UnreadableFile``.

    No free descriptor (EMFILE/ENFILE) is this machine's limit, not the file's fault: with
    ``wait`` the open is tried again with backoff, blocking (``fdlimit.retry_out_of_fds``);
    without, that ``OSError`` is raised as is, for a caller on the event loop that waits
    without blocking it (the sockets it waits for close on that loop).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = retry_out_of_fds(lambda: os.open(path, flags)) if wait else os.open(path, flags)
    except OSError as exc:
        if not wait and out_of_fds(exc):
            raise
        raise UnreadableFile(os_reason(exc)) from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnreadableFile("not a regular file (a folder, FIFO, socket or device)")
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, OSError):
            raise UnreadableFile(os_reason(exc)) from exc
        raise


def os_reason(exc: OSError) -> str:
    """A one-line reason for an OS error, without the path (the row already names it)."""
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "file not found (deleted or moved since it was listed?)"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if out_of_fds(exc):
        return fd_exhausted_reason()
    return f"cannot read: {exc.strerror or exc}"


def extract_bytes(
    source: SourceFile, data: bytes, doc_id: str, settings: ExtractSettings
) -> Document:
    """Extract the text of ``data`` (the bytes of ``source``)."""
    if not data:
        raise EmptyDocument("empty file (0 bytes)")
    if source.doc_type == "pdf":
        pdf = apply_ocr(extract_pdf(data, settings.pdf_backend), data, settings)
        if not pdf.pages:
            raise EmptyDocument("the PDF has no pages")
        starts: list[int] = []
        offset = 0
        for page in pdf.pages:
            starts.append(offset)
            offset += len(page) + 1  # pages are joined by one newline
        text = "\n".join(pdf.pages)
        if not text.strip():
            raise EmptyDocument(
                _no_text_reason(
                    len(pdf.pages), len(pdf.no_text_pages), pdf.warnings, settings.ocr != "never"
                )
            )
        return Document(
            source, doc_id, text, tuple(starts), pdf.no_text_pages, pdf.warnings, pdf.ocr_pages
        )
    if source.doc_type == "docx":
        text = extract_docx(data, settings.docx_headers_footers)
        warnings: tuple[str, ...] = ()
    else:
        text, warnings = extract_text(data)
    if not text.strip():
        raise EmptyDocument("no text: the document holds only whitespace")
    return Document(source, doc_id, text, None, (), warnings)


def _no_text_reason(pages: int, no_text: int, warnings: tuple[str, ...], ocr: bool) -> str:
    if no_text == pages and ocr:
        return f"no text layer on any of its {pages} page(s), and OCR found no text on them"
    if no_text == pages:
        return f"no text layer on any of its {pages} page(s): scanned images? (see --ocr)"
    first = f" ({warnings[0]})" if warnings else ""
    return f"no text could be extracted from any of its {pages} page(s){first}"
