"""Text for scanned PDF pages (``--ocr``): each page rendered by pypdfium2, read by tesseract.

Why tesseract (through pytesseract) rather than RapidOCR's PP-OCR models: on this project's
generated scans (``bench/bench_ocr.py``) it found every word at 200 and 300 dpi in English and
every character in Chinese, where RapidOCR ran English words together ("Thequarterlyreport")
and dropped lines; and at one thread per page it was the faster of the two. It runs as a
subprocess per page, which buys the limits for free: the page's process is killed after
``OCR_PAGE_TIMEOUT_S`` (that page becomes a warning, the file goes on), and it inherits the
worker's ``RLIMIT_AS``, so OCR is held to the same memory cap as the rest of extraction. The
price is a system package (``apt-get install tesseract-ocr tesseract-ocr-chi-sim``) besides
the ``ocr`` extra; the models ship in those packages, nothing is downloaded at run time.

- ``auto`` reads the pages that have no text layer (``PdfText.no_text_pages``), ``always``
  every page (its text layer replaced), ``never`` none. OCR as a whole may use
  ``OCR_SHARE_OF_EXTRACT_TIMEOUT`` of ``--extract-timeout``; the pages it does not reach by then
  stay flagged as no-text pages, with one warning, and the file's other text is kept.
- tesseract is held to one thread (``OMP_THREAD_LIMIT``): the pool already runs a worker per
  core, and its OpenMP threads on top made a page 3-5x slower on a busy 2-core machine.
- ``chi_sim`` output puts a space between every two Chinese characters; those are removed.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import time
from collections.abc import Sequence
from importlib.util import find_spec
from typing import TYPE_CHECKING, cast, get_args

from dscall.config import (
    MAX_PAGE_WARNINGS,
    OCR_DPI,
    OCR_LANGUAGES,
    OCR_MAX_PIXELS,
    OCR_PAGE_TIMEOUT_S,
    OCR_SHARE_OF_EXTRACT_TIMEOUT,
    ExtractSettings,
    OcrChoice,
)
from dscall.documents.text import normalise
from dscall.errors import UsageError, one_line

if TYPE_CHECKING:
    from PIL.Image import Image
    from pypdfium2 import PdfDocument

    from dscall.documents.pdf import PdfText

OCR_INSTALL_HINT = (
    "pip install 'dscall[ocr]' and apt-get install tesseract-ocr tesseract-ocr-chi-sim"
)
# A page is not started with less time than this left: it would only be killed half-way.
_MIN_PAGE_BUDGET_S = 1.0
_CJK = r"\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}])[ \t]+(?=[{_CJK}])")


def missing_part() -> str | None:
    """What OCR lacks on this machine (one line), or None when it can run."""
    if find_spec("pytesseract") is None or find_spec("pypdfium2") is None:
        return f"--ocr needs the ocr extra: {OCR_INSTALL_HINT}"
    if shutil.which("tesseract") is None:
        return (
            "--ocr needs the tesseract program: apt-get install tesseract-ocr "
            "tesseract-ocr-chi-sim (or brew install tesseract tesseract-lang)"
        )
    missing = [name for name in OCR_LANGUAGES.split("+") if name not in _languages()]
    if missing:
        packages = " ".join(f"tesseract-ocr-{name.replace('_', '-')}" for name in missing)
        return f"--ocr needs tesseract's {'+'.join(missing)} data: apt-get install {packages}"
    return None


@functools.lru_cache(maxsize=1)
def _languages() -> frozenset[str]:
    import pytesseract

    try:
        return frozenset(pytesseract.get_languages())
    except (OSError, pytesseract.TesseractNotFoundError):
        return frozenset()


def default_mode() -> OcrChoice:
    """``--ocr``'s default: auto when OCR can run here, else never."""
    return "auto" if missing_part() is None else "never"


def ocr_mode(value: str | None) -> OcrChoice:
    """``--ocr``'s value checked (None: ``default_mode()``). Raises ``UsageError``."""
    if value is None:
        return default_mode()
    if value not in get_args(OcrChoice):
        raise UsageError(f"--ocr must be auto, always or never (got {value!r})")
    return cast(OcrChoice, value)


def check_ocr(choice: OcrChoice) -> None:
    """Fail early (usage error) when OCR is asked for and cannot run."""
    if choice != "never":
        reason = missing_part()
        if reason is not None:
            raise UsageError(reason)


def apply_ocr(pdf: PdfText, data: bytes, settings: ExtractSettings) -> PdfText:
    """``pdf`` with the pages ``settings.ocr`` selects read by OCR (``ocr_pages`` lists the
    pages whose text came from it); ``pdf`` itself when there are none."""
    if settings.ocr == "never":
        return pdf
    wanted = range(1, len(pdf.pages) + 1) if settings.ocr == "always" else pdf.no_text_pages
    if not wanted:
        return pdf
    budget = settings.timeout_s * OCR_SHARE_OF_EXTRACT_TIMEOUT
    texts, notes = recognise_pages(data, wanted, time.monotonic() + budget)
    pages = list(pdf.pages)
    # A page OCR finds nothing on (or fails on) keeps what it had: its text layer with
    # --ocr always, its place among the no-text pages otherwise.
    read = tuple(sorted(number for number, text in texts.items() if text))
    for number in read:
        pages[number - 1] = texts[number]
    return dataclasses.replace(
        pdf,
        pages=tuple(pages),
        no_text_pages=tuple(number for number in pdf.no_text_pages if number not in read),
        ocr_pages=read,
        warnings=pdf.warnings + tuple(notes),
    )


def recognise_pages(
    data: bytes, numbers: Sequence[int], deadline: float
) -> tuple[dict[int, str], list[str]]:
    """OCR text of the 1-based pages ``numbers`` of the PDF in ``data``, and a warning per page
    that failed. Pages not started by ``deadline`` (``time.monotonic()``) are left out."""
    import pypdfium2 as pdfium
    import pytesseract

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    texts: dict[int, str] = {}
    notes: list[str] = []
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:  # read by pypdf, which pdfium could not open
        return texts, [f"OCR could not open the file ({one_line(str(exc))})"]
    try:
        for position, number in enumerate(numbers):
            left = deadline - time.monotonic()
            if left < _MIN_PAGE_BUDGET_S:
                skipped = len(numbers) - position
                notes.append(
                    f"OCR stopped at page {number}: {skipped} page(s) left unread within "
                    "the file's time limit (raise --extract-timeout)"
                )
                break
            timeout = min(OCR_PAGE_TIMEOUT_S, left)
            try:
                image = _render(document, number)
                text = pytesseract.image_to_string(image, lang=OCR_LANGUAGES, timeout=timeout)
            except pdfium.PdfiumError as exc:  # a RuntimeError too: caught first
                notes.append(f"page {number}: OCR could not render it ({one_line(str(exc))})")
                continue
            except RuntimeError as exc:  # pytesseract's TesseractError and its timeout
                notes.append(f"page {number}: OCR failed ({_reason(exc, timeout)})")
                continue
            except MemoryError:  # the failed allocation took nothing: the next page may fit
                notes.append(f"page {number}: OCR ran out of memory")
                continue
            texts[number] = clean(str(text))
    finally:
        document.close()
    if len(notes) > MAX_PAGE_WARNINGS:  # as pdf.py does: one line says the rest
        rest = len(notes) - MAX_PAGE_WARNINGS + 1
        notes[MAX_PAGE_WARNINGS - 1 :] = [f"and {rest:,} more pages OCR could not read"]
    return texts, notes


def _render(document: PdfDocument, number: int) -> Image:
    """Page ``number`` as a greyscale Pillow image at ``OCR_DPI``, or at the resolution that
    keeps it within ``OCR_MAX_PIXELS``."""
    page = document[number - 1]
    try:
        width, height = page.get_size()  # in points, 1/72 inch
        # 0.995: pdfium rounds each side up to a whole pixel.
        fit = 0.995 * (OCR_MAX_PIXELS / max(1.0, width * height)) ** 0.5
        scale = min(OCR_DPI / 72, fit)
        bitmap = page.render(scale=scale, grayscale=True)
        image: Image = bitmap.to_pil()
        return image
    finally:
        page.close()


def _reason(exc: RuntimeError, timeout: float) -> str:
    if str(exc) == "Tesseract process timeout":
        return f"took longer than {timeout:g} s"
    return one_line(str(exc)) or type(exc).__name__


def clean(text: str) -> str:
    """tesseract's text as dscall keeps page text: normalised, stripped, no gaps inside CJK."""
    return _CJK_GAP.sub("", normalise(text)).strip()
