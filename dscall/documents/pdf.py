"""PDF bytes -> text per page, with pypdfium2 when installed and pypdf as fallback and baseline.

Backends (``ExtractSettings.pdf_backend``):

- ``auto``: pypdfium2 when it is installed (7-15x faster, and it recovers more from damaged
  files), else pypdf. A file pypdfium2 cannot open at all, or refuses for a password (pdfium
  rejects some AES-256 files with an empty user password that pypdf opens), is tried again
  with pypdf, and a page pypdfium2 fails on is read with pypdf, so ``auto`` never does worse
  than pypdf alone. A page whose pdfium text looks letter-split ("N o r t h") is read with
  pypdf too, and the better reading kept (``letter_split``): the other pages pay nothing.
- ``pdfium`` / ``pypdf``: that library only (benchmarks, and a way around a bad page).

Errors are caught per page: a page that fails becomes a warning and empty text, and the
document goes on. Encrypted files are opened with the empty password (an owner password only
restricts printing or copying); a user password gives ``EncryptedDocument``.

Text: filled form fields are part of a page's text (with pdfium beside their labels, with pypdf
after the page's text), and text outside the visible page box is not (``pdfium_page``,
``pypdf_page``). Words hyphenated across a line end are joined, compounds keep their hyphen
(``hyphenation``). Each page is normalised (``text.normalise``) and stripped, so that joining
pages with one newline never fakes a paragraph break. A page with no text left is a no-text
page (a scan, or a blank page).
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from typing import TYPE_CHECKING

from dscall.config import MAX_PAGE_WARNINGS, PdfBackendChoice
from dscall.documents.hyphenation import join_hyphenated
from dscall.documents.letter_split import better_reading, looks_letter_split
from dscall.documents.pdf_fields import field_values as pdf_field_values
from dscall.documents.pdfium_page import has_widgets, open_forms, visible_text
from dscall.documents.pypdf_page import pypdf_page_text
from dscall.documents.text import describe_content, normalise
from dscall.errors import CorruptDocument, EncryptedDocument, UsageError

if TYPE_CHECKING:
    from pypdf import PdfReader

# Readers look for the header in the first 1024 bytes and for %%EOF near the end.
_HEADER_WINDOW = 1024
_EOF_WINDOW = 2048
_pypdf_logger_muted = False
_TRUNCATED = "truncated PDF: the file ends without its %%EOF marker (incomplete download or copy?)"


@dataclass(frozen=True, slots=True)
class PdfText:
    pages: tuple[str, ...]  # normalised text of each page, in order
    no_text_pages: tuple[int, ...]  # 1-based numbers of pages with no text at all
    warnings: tuple[str, ...]
    ocr_pages: tuple[int, ...] = ()  # 1-based numbers of pages whose text came from --ocr


class _OpenFailed(Exception):
    """pdfium could not open the file for a reason other than a password."""


def pdfium_available() -> bool:
    return find_spec("pypdfium2") is not None


def check_backend(choice: PdfBackendChoice) -> None:
    """Fail early (usage error) when the chosen backend is not installed."""
    if choice == "pdfium" and not pdfium_available():
        raise UsageError(
            "--pdf-backend pdfium needs pypdfium2: pip install 'dscall[fast]' (or use auto)"
        )


def extract_pdf(data: bytes, backend: PdfBackendChoice = "auto") -> PdfText:
    """Text of every page of the PDF in ``data``. Raises a ``DocumentError`` subclass."""
    if b"%PDF-" not in data[:_HEADER_WINDOW]:
        raise CorruptDocument(f"not a PDF: no %PDF header ({describe_content(data)})")
    truncated = b"%%EOF" not in data[-_EOF_WINDOW:]
    check_backend(backend)
    use_pdfium = backend == "pdfium" or (backend == "auto" and pdfium_available())
    pdfium_reason = None
    pdfium_refused: EncryptedDocument | None = None
    if use_pdfium:
        try:
            pages, failed, notes = _read_with_pdfium(data, page_fallback=backend == "auto")
        except _OpenFailed as exc:
            if backend == "pdfium":
                raise CorruptDocument(_TRUNCATED if truncated else f"corrupt PDF: {exc}") from exc
            pdfium_reason = str(exc)
        except EncryptedDocument as exc:
            if backend == "pdfium":
                raise
            pdfium_refused = exc
        else:
            return _finish(pages, failed, notes, truncated)
    try:
        pages, failed, notes = _read_with_pypdf(data)
    except CorruptDocument as exc:
        if pdfium_refused is not None:  # pypdf's reason is less accurate than the password
            raise pdfium_refused from exc
        if truncated:
            raise CorruptDocument(_TRUNCATED) from exc
        if pdfium_reason is not None:
            raise CorruptDocument(f"{exc} (pdfium: {pdfium_reason})") from exc
        raise
    return _finish(pages, failed, notes, truncated)


def _finish(pages: list[str], failed: set[int], notes: list[str], truncated: bool) -> PdfText:
    texts = tuple(_clean(page) for page in join_hyphenated(pages))
    no_text = tuple(i + 1 for i, page in enumerate(texts) if not page and i not in failed)
    if len(notes) > MAX_PAGE_WARNINGS:
        # A damaged file can fail on every one of a million pages: one line says it as well.
        rest = len(notes) - MAX_PAGE_WARNINGS + 1
        notes[MAX_PAGE_WARNINGS - 1 :] = [f"and {rest:,} more unreadable pages"]
    if truncated:
        notes.insert(0, "no %%EOF marker at the end: the file may be truncated, text incomplete")
    return PdfText(texts, no_text, tuple(notes))


def _clean(page: str) -> str:
    return normalise(page).strip()


def _read_with_pdfium(data: bytes, page_fallback: bool) -> tuple[list[str], set[int], list[str]]:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if exc.err_code == pdfium_c.FPDF_ERR_PASSWORD:
            raise EncryptedDocument(
                "password-protected PDF: it needs a user password (the empty one was tried)"
            ) from exc
        if exc.err_code == pdfium_c.FPDF_ERR_SECURITY:
            raise EncryptedDocument("PDF uses an unsupported encryption handler") from exc
        raise _OpenFailed(_pdfium_reason(exc)) from exc
    pages: list[str] = []
    failed: set[int] = set()
    notes: list[str] = []
    fallback: _LazyPypdf | None = _LazyPypdf(data) if page_fallback else None
    try:
        forms = open_forms(document)
        for index in range(len(document)):
            try:
                page = document[index]
                try:
                    text = visible_text(page, document if forms else None)
                    orphans = not forms and fallback is not None and has_widgets(page)
                finally:
                    page.close()
                if orphans and fallback is not None:  # fields with no AcroForm for pdfium
                    text = "\n".join([text, *fallback.field_values(index)])
                if fallback is not None and looks_letter_split(text):
                    text = better_reading(text, fallback.page_text(index))
                pages.append(text)
            except Exception as exc:  # per page: the document goes on
                recovered = fallback.page_text(index) if fallback is not None else None
                if recovered is None:
                    failed.add(index)
                    notes.append(f"page {index + 1}: unreadable ({_pdfium_reason(exc)})")
                pages.append(recovered or "")
    finally:
        document.close()
    return pages, failed, notes


def _pdfium_reason(exc: Exception) -> str:
    # "Failed to load document (PDFium: Data format error)." -> "data format error"
    text = str(exc).rstrip(".")
    if "(PDFium: " in text:
        text = text.split("(PDFium: ", 1)[1].rstrip(")")
    return text[:1].lower() + text[1:]


class _LazyPypdf:
    """pypdf opened only when a pdfium page fails, and at most once."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._reader: PdfReader | None = None
        self._failed = False

    def field_values(self, index: int) -> list[str]:
        """Page ``index``'s filled field values, read by pypdf (widgets whose document has no
        /AcroForm, so pdfium opens no form for them: a page cut out of a larger form)."""
        if self._failed:
            return []
        try:
            with _pypdf_quiet():
                if self._reader is None:
                    self._reader = _open_pypdf(self._data)
                return pdf_field_values(self._reader.pages[index])
        except Exception:  # any pypdf failure here just means "no values"
            self._failed = self._reader is None
            return []

    def page_text(self, index: int) -> str | None:
        if self._failed:
            return None
        try:
            with _pypdf_quiet():
                if self._reader is None:
                    self._reader = _open_pypdf(self._data)
                return _pypdf_page_text(self._reader, index)
        except Exception:  # any pypdf failure here just means "no fallback"
            self._failed = self._reader is None
            return None


def _open_pypdf(data: bytes) -> PdfReader:
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError

    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except DependencyError as exc:
            raise EncryptedDocument(
                "AES-encrypted PDF: pypdf needs the 'cryptography' package to open it "
                "(or install pypdfium2: pip install 'dscall[fast]')"
            ) from exc
        if opened == PasswordType.NOT_DECRYPTED:
            raise EncryptedDocument(
                "password-protected PDF: it needs a user password (the empty one was tried)"
            )
    return reader


def _read_with_pypdf(data: bytes) -> tuple[list[str], set[int], list[str]]:
    pages: list[str] = []
    failed: set[int] = set()
    notes: list[str] = []
    with _pypdf_quiet():
        try:
            reader = _open_pypdf(data)
            count = len(reader.pages)
        except EncryptedDocument:
            raise
        except RecursionError as exc:
            raise CorruptDocument("corrupt PDF: object structure nested too deeply") from exc
        except Exception as exc:  # pypdf raises many types (PdfReadError, KeyError, ValueError)
            raise CorruptDocument(f"corrupt PDF: {_reason(exc)}") from exc
        for index in range(count):
            try:
                pages.append(_pypdf_page_text(reader, index))
            except Exception as exc:  # per page: the document goes on
                failed.add(index)
                notes.append(f"page {index + 1}: unreadable ({_reason(exc)})")
                pages.append("")
    return pages, failed, notes


def _pypdf_page_text(reader: PdfReader, index: int) -> str:
    return pypdf_page_text(reader.pages[index])


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def _pypdf_quiet() -> Iterator[None]:
    """Silence pypdf's warnings and log lines (e.g. "Ignoring wrong pointing object"): they
    would clutter the terminal, and the problems that matter raise or are reported per page."""
    global _pypdf_logger_muted
    if not _pypdf_logger_muted:
        logger = logging.getLogger("pypdf")
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
        _pypdf_logger_muted = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
