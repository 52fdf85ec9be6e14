"""One pdfium page -> the text a reader sees on it: filled form fields included, nothing from
outside the visible page box.

- Form fields: the values typed into an AcroForm's fields live in widget annotations, not in
  the page's content, so pdfium's text page never sees them. When the document has a form,
  its form environment is started before any page is loaded (pdfium generates appearances
  for fields that have none, as with ``NeedAppearances``) and each page with annotations is
  flattened in memory, which draws the fields' appearances into the content; the page is then
  loaded again, as pdfium needs after a flatten. The values come after the page's other text.
  Documents without a form take none of these steps.
- Visible box: pdfium's text page holds every glyph the content draws, also those placed
  outside the page (a layout tool's pasteboard, text hidden by a tighter crop box). Only the
  text inside the crop box, clipped to the media box as viewers do, is read.
"""

from __future__ import annotations

from typing import Any

# pypdfium2 objects (PdfDocument, PdfPage): pypdfium2 ships no type information mypy can use.
_Pdfium = Any
_FLATTENED = 1  # FLATTEN_SUCCESS: something was drawn into the content


def open_forms(document: _Pdfium) -> bool:
    """Start the form environment when the document has a form. True when it has one."""
    import pypdfium2.raw as pdfium_c

    if pdfium_c.FPDF_GetFormType(document.raw) == pdfium_c.FORMTYPE_NONE:
        return False
    try:
        document.init_forms()
    except Exception:  # a form pdfium cannot start: the pages are still read, without fields
        return False
    return True


def with_fields_drawn(document: _Pdfium, index: int, page: _Pdfium) -> _Pdfium:
    """``page``, or the page loaded again after its form fields were drawn into it."""
    import pypdfium2.raw as pdfium_c

    if pdfium_c.FPDFPage_GetAnnotCount(page.raw) <= 0:
        return page
    if page.flatten() != _FLATTENED:
        return page
    page.close()
    return document[index]


def visible_text(page: _Pdfium) -> str:
    """The text inside the page's visible box; pdfium's hyphen mark is U+FFFE as in
    ``get_text_range`` (``get_text_bounded`` reports it as U+0002)."""
    textpage = page.get_textpage()
    try:
        left, bottom, right, top = _visible_box(page)
        text = str(textpage.get_text_bounded(left, bottom, right, top))
    finally:
        textpage.close()
    return text.replace("\x02", "\ufffe") if "\x02" in text else text


def _visible_box(page: _Pdfium) -> tuple[float, float, float, float]:
    crop = _ordered(page.get_cropbox())
    media = _ordered(page.get_mediabox())
    left, bottom = max(crop[0], media[0]), max(crop[1], media[1])
    right, top = min(crop[2], media[2]), min(crop[3], media[3])
    if left >= right or bottom >= top:  # a crop box that misses the media box: ignore it
        return media
    return left, bottom, right, top


def _ordered(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    # The PDF allows a box given by any two opposite corners.
    return min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3])
