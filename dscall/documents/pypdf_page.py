"""One pypdf page -> its text as pdfium's reading gives it: only what lies inside the visible
page box, then the values of its filled form fields.

pypdf reports each piece of text it extracts to a visitor, with the text and current
transformation matrices; the piece's origin (its first glyph's baseline point) in page space
says where it is drawn. Pieces whose origin falls outside the crop box (clipped to the media
box, as viewers do) are left out; when none does, pypdf's own text is returned unchanged.
"""

from __future__ import annotations

from typing import Any

from dscall.documents.pdf_fields import field_values

# A glyph drawn on the edge of the box is visible: rounding in the producer's numbers.
_EDGE_TOLERANCE = 1.0


def pypdf_page_text(page: Any) -> str:
    """The visible text of a pypdf page, its form field values on lines after it."""
    left, bottom, right, top = _visible_box(page)
    inside: list[str] = []
    dropped = False

    def visit(text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        nonlocal dropped
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        visible = left <= x <= right and bottom <= y <= top
        if visible or not text.strip():
            inside.append(text)
        else:
            dropped = True

    text = str(page.extract_text(visitor_text=visit))
    if dropped:
        text = "".join(inside)
    values = field_values(page)
    return "\n".join([text.rstrip("\n"), *values]) if values else text


def _visible_box(page: Any) -> tuple[float, float, float, float]:
    crop = _ordered(page.cropbox)
    media = _ordered(page.mediabox)
    left, bottom = max(crop[0], media[0]), max(crop[1], media[1])
    right, top = min(crop[2], media[2]), min(crop[3], media[3])
    if left >= right or bottom >= top:  # a crop box that misses the media box: ignore it
        left, bottom, right, top = media
    tolerance = _EDGE_TOLERANCE
    return left - tolerance, bottom - tolerance, right + tolerance, top + tolerance


def _ordered(box: Any) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(value) for value in (box[0], box[1], box[2], box[3]))
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)
