"""One pdfium page -> the text a reader sees on it: filled form fields included, nothing from
outside the visible page box.

- Form fields: when the document has a form, its form environment is started before any page
  is loaded, and the values of a page's filled fields are placed beside their labels
  (``pdfium_forms``). Documents without a form take none of these steps.
- Visible box: pdfium's text page holds every glyph the content draws, also those placed
  outside the page (a layout tool's pasteboard, text hidden by a tighter crop box). Only the
  text inside the crop box, clipped to the media box as viewers do, is read.
"""

from __future__ import annotations

import warnings
from typing import Any

from dscall.documents.pdfium_forms import field_values, place_values

# pypdfium2 objects (PdfDocument, PdfPage): pypdfium2 ships no type information mypy can use.
_Pdfium = Any


def open_forms(document: _Pdfium) -> bool:
    """Start the form environment when the document has a form. True when it has one."""
    import pypdfium2.raw as pdfium_c

    if pdfium_c.FPDF_GetFormType(document.raw) == pdfium_c.FORMTYPE_NONE:
        return False
    try:
        with warnings.catch_warnings():  # pypdfium2 warns when an XFA form fails to load
            warnings.simplefilter("ignore")
            document.init_forms()
    except Exception:  # a form pdfium cannot start: the pages are still read, without fields
        return False
    return document.formenv is not None


def has_widgets(page: _Pdfium) -> bool:
    """Whether ``page`` has form-field widgets (one C call for a page without annotations)."""
    import pypdfium2.raw as pdfium_c

    for index in range(pdfium_c.FPDFPage_GetAnnotCount(page.raw)):
        annotation = pdfium_c.FPDFPage_GetAnnot(page.raw, index)
        if not annotation:
            continue
        try:
            if pdfium_c.FPDFAnnot_GetSubtype(annotation) == pdfium_c.FPDF_ANNOT_WIDGET:
                return True
        finally:
            pdfium_c.FPDFPage_CloseAnnot(annotation)
    return False


def visible_text(page: _Pdfium, form_document: _Pdfium | None = None) -> str:
    """The text inside the page's visible box, with the values of its filled form fields
    when ``form_document`` (the page's document, its forms opened) is given. pdfium's hyphen
    mark is U+FFFE as in ``get_text_range`` (``get_text_bounded`` reports it as U+0002)."""
    textpage = page.get_textpage()
    try:
        left, bottom, right, top = _visible_box(page)
        text = str(textpage.get_text_bounded(left, bottom, right, top))
        if "\x02" in text:
            text = text.replace("\x02", "\ufffe")
        if form_document is not None:
            values = field_values(form_document, page)
            if values:
                text = place_values(text, textpage, values)
    finally:
        textpage.close()
    return text


def _visible_box(page: _Pdfium) -> tuple[float, float, float, float]:
    """The crop box clipped to the media box, as pdfium's ``FPDF_GetPageBoundingBox`` works
    it out: with boxes inherited from the page tree, which ``get_cropbox``/``get_mediabox``
    miss (they read the page's own dictionary and fall back to US Letter, which cut the right
    third of a landscape page)."""
    return _ordered(page.get_bbox())


def _ordered(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    # The PDF allows a box given by any two opposite corners.
    return min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3])
