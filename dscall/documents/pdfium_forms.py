"""The values of a page's filled form fields, placed beside their labels in pdfium's text.

A typed value lives in the field (``/V``), drawn by a widget annotation, not in the page's
content, so pdfium's text page never sees it. The values of text, combo-box and list fields
are read through the form environment (buttons hold states such as "Yes", not text; signatures
hold no text; hidden widgets are not seen). Each value goes where a reader sees it:

- after the label on the same row: the nearest text run that ends left of the field and
  spans the field's vertical middle ("Name: Ada Lovelace");
- else on a line of its own after the nearest text above the field (a label over its box);
- else after the page's text.

Text runs are pdfium's text rectangles, in text order; each is matched to the first line of
the page text at or after the previous run's line that holds its text, so a label printed
twice finds its own line. Only pages with widgets take any of these steps.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

_Pdfium = Any  # pypdfium2 objects: pypdfium2 ships no type information mypy can use
# Annotation flags of a widget no viewer shows (FPDF_ANNOT_FLAG_HIDDEN, _NOVIEW): its field may
# hold a computed value, but not one a reader sees.
_NOT_SHOWN = 0x02 | 0x20
# A label may end a little right of the field's left edge (rounding, a colon's overhang).
_ROW_TOLERANCE = 2.0


@dataclass(frozen=True, slots=True)
class _Box:
    left: float
    bottom: float
    right: float
    top: float

    @property
    def middle(self) -> float:
        return (self.bottom + self.top) / 2


def field_values(document: _Pdfium, page: _Pdfium) -> list[tuple[str, _Box]]:
    """(value, widget box) of the filled text, combo-box and list fields on ``page``."""
    import pypdfium2.raw as pdfium_c

    form = document.formenv
    if form is None:
        return []
    wanted = (
        pdfium_c.FPDF_FORMFIELD_TEXTFIELD,
        pdfium_c.FPDF_FORMFIELD_COMBOBOX,
        pdfium_c.FPDF_FORMFIELD_LISTBOX,
    )
    values: list[tuple[str, _Box]] = []
    for index in range(pdfium_c.FPDFPage_GetAnnotCount(page.raw)):
        annotation = pdfium_c.FPDFPage_GetAnnot(page.raw, index)
        if not annotation:
            continue
        try:
            if pdfium_c.FPDFAnnot_GetSubtype(annotation) != pdfium_c.FPDF_ANNOT_WIDGET:
                continue
            if pdfium_c.FPDFAnnot_GetFlags(annotation) & _NOT_SHOWN:
                continue
            if pdfium_c.FPDFAnnot_GetFormFieldType(form.raw, annotation) not in wanted:
                continue
            if pdfium_c.FPDFAnnot_GetFormFieldType(form.raw, annotation) == wanted[2]:
                value = _list_options(pdfium_c, form, annotation)  # a list box shows them all
            else:
                value = _field_value(pdfium_c, form, annotation).strip()
            rect = pdfium_c.FS_RECTF()
            if value and pdfium_c.FPDFAnnot_GetRect(annotation, rect):
                box = _Box(
                    min(rect.left, rect.right),
                    min(rect.bottom, rect.top),
                    max(rect.left, rect.right),
                    max(rect.bottom, rect.top),
                )
                values.append((value, box))
        finally:
            pdfium_c.FPDFPage_CloseAnnot(annotation)
    return values


def _list_options(pdfium_c: Any, form: _Pdfium, annotation: Any) -> str:
    """A list box's options, as it shows them (the chosen ones among them)."""
    labels = []
    for index in range(max(0, pdfium_c.FPDFAnnot_GetOptionCount(form.raw, annotation))):
        size = pdfium_c.FPDFAnnot_GetOptionLabel(form.raw, annotation, index, None, 0)
        if size <= 2:
            continue
        buffer = ctypes.create_string_buffer(size)
        pointer = ctypes.cast(buffer, ctypes.POINTER(pdfium_c.FPDF_WCHAR))
        pdfium_c.FPDFAnnot_GetOptionLabel(form.raw, annotation, index, pointer, size)
        labels.append(buffer.raw[: size - 2].decode("utf-16-le", errors="replace").strip())
    return ", ".join(label for label in labels if label)


def _field_value(pdfium_c: Any, form: _Pdfium, annotation: Any) -> str:
    size = pdfium_c.FPDFAnnot_GetFormFieldValue(form.raw, annotation, None, 0)
    if size <= 2:  # the UTF-16 terminator alone: no value
        return ""
    buffer = ctypes.create_string_buffer(size)
    pointer = ctypes.cast(buffer, ctypes.POINTER(pdfium_c.FPDF_WCHAR))
    pdfium_c.FPDFAnnot_GetFormFieldValue(form.raw, annotation, pointer, size)
    return buffer.raw[: size - 2].decode("utf-16-le", errors="replace")


def place_values(text: str, textpage: _Pdfium, values: list[tuple[str, _Box]]) -> str:
    """``text`` (pdfium's, lines split by CRLF) with each value beside its label."""
    lines = text.split("\r\n")
    runs = _text_runs(textpage, lines)
    beside: dict[int, list[str]] = {}
    below: dict[int, list[str]] = {}
    rest: list[str] = []
    for value, box in sorted(values, key=lambda item: (-item[1].top, item[1].left)):
        same_row = [
            (run, line) for run, line in runs
            if _same_row(run, box) and run.right <= box.left + _ROW_TOLERANCE
        ]  # fmt: skip
        if same_row:
            _, line = max(same_row, key=lambda item: item[0].right)
            beside.setdefault(line, []).append(value)
            continue
        above = [(run, line) for run, line in runs if run.middle > box.top]
        if above:
            _, line = min(above, key=lambda item: (item[0].bottom - box.top, item[0].left))
            below.setdefault(line, []).append(value)
            continue
        rest.append(value)
    out: list[str] = []
    for number, text_line in enumerate(lines):
        out.append(" ".join([text_line, *beside.get(number, [])]))
        out.extend(below.get(number, []))
    return "\r\n".join(out + rest)


def _same_row(run: _Box, box: _Box) -> bool:
    # A field box is often taller than its label (a combo box, a multi-line field): either
    # one's middle inside the other's span makes a row.
    return run.bottom <= box.middle <= run.top or box.bottom <= run.middle <= box.top


def _text_runs(textpage: _Pdfium, lines: list[str]) -> list[tuple[_Box, int]]:
    """pdfium's text rectangles and the page-text line each belongs to."""
    import pypdfium2.raw as pdfium_c

    runs: list[tuple[_Box, int]] = []
    left, top, right, bottom = (ctypes.c_double() for _ in range(4))
    position = (0, 0)  # (line, column) just after the previous run's text
    for index in range(pdfium_c.FPDFText_CountRects(textpage.raw, 0, -1)):
        if not pdfium_c.FPDFText_GetRect(textpage.raw, index, left, top, right, bottom):
            continue
        low, high = sorted((bottom.value, top.value))
        box = _Box(left.value, low, right.value, high)
        snippet = textpage.get_text_bounded(box.left, box.bottom, box.right, box.top)
        found = _find(lines, snippet.replace("\x02", "\ufffe").strip(), position)
        if found is not None:
            position = found
            runs.append((box, found[0]))
    return runs


def _find(lines: list[str], snippet: str, start: tuple[int, int]) -> tuple[int, int] | None:
    """Where ``snippet`` ends in ``lines``, searching from ``start`` on."""
    if not snippet:
        return None
    line, column = start
    for number in range(line, len(lines)):
        at = lines[number].find(snippet, column if number == line else 0)
        if at >= 0:
            return number, at + len(snippet)
    return None
