"""WordprocessingML blocks (a body, a header, a note, a cell) -> lines of text.

Read straight from the XML, child by child (see ``docx`` for why not python-docx's
accessors):

- one line per paragraph, its list number or bullet first (``docx_numbering``); a line break
  inside a paragraph stays a newline, a tab stays a tab. A drop cap (a frame paragraph holding
  the enlarged first letter, ``w:framePr w:dropCap``) is joined to the paragraph it starts;
- one line per table row, cells separated by `` | ``. A horizontally merged cell (``gridSpan``,
  legacy ``hMerge``) is one ``w:tc`` and is written once. A vertically merged cell is written in
  its first row; the rows it continues into get an empty cell, so columns stay aligned. A cell's
  paragraphs are joined by a space so the row stays one line;
- a nested table is written inside its cell: its rows separated by ``; ``, its cells by ``, ``;
- tracked changes read as accepted: insertions and moved-to text are text; deleted text,
  moved-from text (which keeps its runs in ``w:t``, a second copy of the moved words) and
  deleted table rows are not. Content controls (``w:sdt``) are read; field codes and the
  ``mc:Fallback`` copy of drawings are not;
- symbol-font characters (``w:sym``) become Unicode (``docx_symbols``); note references
  become their marks ("[1]", ``docx_notes``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from dscall.documents.docx_notes import ENDNOTE_REFERENCE, FOOTNOTE_REFERENCE, Notes
from dscall.documents.docx_numbering import ListNumbering
from dscall.documents.docx_symbols import symbol_text

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MATH_T = "{http://schemas.openxmlformats.org/officeDocument/2006/math}t"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
_P, _TBL, _TR, _TC, _SDT = f"{_W}p", f"{_W}tbl", f"{_W}tr", f"{_W}tc", f"{_W}sdt"
_T, _TAB, _BR, _CR, _SYM = f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}cr", f"{_W}sym"
_SDT_CONTENT, _TC_PR, _P_PR, _TR_PR = f"{_W}sdtContent", f"{_W}tcPr", f"{_W}pPr", f"{_W}trPr"
_V_MERGE, _H_MERGE, _VAL = f"{_W}vMerge", f"{_W}hMerge", f"{_W}val"
_NO_BREAK_HYPHEN, _FRAME, _DROP_CAP = f"{_W}noBreakHyphen", f"{_W}framePr", f"{_W}dropCap"
_NOTE_REFERENCES = (FOOTNOTE_REFERENCE, ENDNOTE_REFERENCE)
# Subtrees whose text is not part of the visible text (or is a duplicate of it). Run
# properties hold no text, and they hold the marks of a deleted paragraph end (w:del).
_SKIP = {
    f"{_W}delText",
    f"{_W}instrText",
    f"{_MC}Fallback",
    f"{_W}tblPr",
    _P_PR,
    f"{_W}rPr",
    f"{_W}del",
    f"{_W}moveFrom",
}
_DELETED_ROW = (f"{_W}del", f"{_W}moveFrom")
_Element = Any  # lxml elements: python-docx ships no types dscall can use


class BlockReader:
    """Reads the blocks of one document, numbering its lists and note marks as it goes, so
    read the body before anything else that may hold lists or notes."""

    def __init__(self, numbering: ListNumbering, notes: Notes) -> None:
        self._numbering = numbering
        self._notes = notes

    def blocks(self, container: Iterable[_Element]) -> Iterator[str]:
        """Lines of a body, header, footer, note or cell: paragraphs and table rows in order."""
        drop_cap = ""
        for child in container:
            tag = child.tag
            if tag == _P:
                properties = child.find(_P_PR)
                text = self._paragraph(child, properties)
                if _is_drop_cap(properties):
                    drop_cap += text
                    continue
                yield drop_cap + text
                drop_cap = ""
            elif tag == _TBL:
                yield from self._table_rows(child)
            elif tag == _SDT:
                for content in child.iterchildren(_SDT_CONTENT):
                    yield from self.blocks(content)
        if drop_cap:
            yield drop_cap

    def _paragraph(self, element: _Element, properties: _Element | None) -> str:
        parts = [self._numbering.label(properties)]
        self._collect(element, parts)
        return "".join(parts)

    def _collect(self, element: _Element, parts: list[str]) -> None:
        for child in element:
            tag = child.tag
            if tag in (_T, _MATH_T):  # Office Math runs hold their text in m:t
                parts.append(child.text or "")
            elif tag == _TAB:
                parts.append("\t")
            elif tag in (_BR, _CR):
                parts.append("\n")
            elif tag == _NO_BREAK_HYPHEN:
                parts.append("-")
            elif tag == _SYM:
                parts.append(symbol_text(child.get(f"{_W}font"), child.get(f"{_W}char")))
            elif tag in _NOTE_REFERENCES:
                parts.append(self._notes.mark(child))
            elif tag == _P:  # a paragraph inside a text box: start it on its own line
                parts.append("\n")
                parts.append(self._numbering.label(child.find(_P_PR)))
                self._collect(child, parts)
            elif tag not in _SKIP and isinstance(tag, str):
                self._collect(child, parts)

    def _table_rows(self, table: _Element) -> Iterator[str]:
        for row in _rows(table):
            cells = self._row_cells(row)
            if cells:
                yield " | ".join(cells)

    def _row_cells(self, row: _Element) -> list[str]:
        """Cell texts of a row; trailing empty cells dropped (nothing after them to align)."""
        cells = [self._cell_text(cell) for cell in _cells(row)]
        while cells and not cells[-1]:
            cells.pop()
        return cells

    def _cell_text(self, cell: _Element) -> str:
        v_merge = _merge_mark(cell, _V_MERGE)
        if v_merge is not None and v_merge != "restart":
            return ""  # the text was written in the row where the merge starts
        parts: list[str] = []
        for child in cell:
            if child.tag == _TBL:
                parts.append(self._nested_table(child))
            elif child.tag in (_P, _SDT):
                parts.extend(self.blocks([child]))
        return " ".join(" ".join(part.split()) for part in parts if part.strip())

    def _nested_table(self, table: _Element) -> str:
        rows = []
        for row in _rows(table):
            cells = self._row_cells(row)
            if cells:
                rows.append(", ".join(cells))
        return "; ".join(rows)


def _is_drop_cap(properties: _Element | None) -> bool:
    if properties is None:
        return False
    frame = properties.find(_FRAME)
    return frame is not None and frame.get(_DROP_CAP, "none") in ("drop", "margin")


def _rows(table: _Element) -> Iterator[_Element]:
    for child in table:
        if child.tag == _TR:
            if not _is_deleted_row(child):
                yield child
        elif child.tag == _SDT:  # rows wrapped in a content control
            for content in child.iterchildren(_SDT_CONTENT):
                yield from _rows(content)


def _is_deleted_row(row: _Element) -> bool:
    properties = row.find(_TR_PR)
    return properties is not None and any(properties.find(tag) is not None for tag in _DELETED_ROW)


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
