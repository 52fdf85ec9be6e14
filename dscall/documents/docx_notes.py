"""Footnotes and endnotes of a DOCX: numbered marks in the body, the notes after it.

A note lives in footnotes.xml or endnotes.xml under an id; the body holds a reference
(``w:footnoteReference w:id="3"``) where Word prints the note's number. Ids are arbitrary, so
notes are numbered in the order the body refers to them, as Word numbers them: footnotes
"[1]", "[2]", endnotes in Word's default lower-case roman, "[i]", "[ii]", so the two never
read alike. A reference whose author typed a custom mark (``w:customMarkFollows``) prints that
mark instead, which follows in the run.

After the body come the notes the body refers to, in that order, each section under its own
heading line::

    Footnotes:
    [1] The note's text.
    Endnotes:
    [i] ...

Separator and continuation notes (Word's lines above the notes) are layout, not text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from dscall.documents.docx_numbering import format_number

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_ID, _TYPE = f"{_W}id", f"{_W}type"
_Element = Any  # lxml elements: python-docx ships no types dscall can use
FOOTNOTE_REFERENCE, ENDNOTE_REFERENCE = f"{_W}footnoteReference", f"{_W}endnoteReference"
_KINDS = {FOOTNOTE_REFERENCE: "footnote", ENDNOTE_REFERENCE: "endnote"}
_HEADINGS = {"footnote": "Footnotes:", "endnote": "Endnotes:"}
_TRUE = ("1", "true", "on")


class Notes:
    """The notes of one document, and the numbers its references were given."""

    def __init__(self, footnotes: _Element | None, endnotes: _Element | None) -> None:
        self._notes = {
            "footnote": _by_id(footnotes, "footnote"),
            "endnote": _by_id(endnotes, "endnote"),
        }
        self._numbers: dict[str, dict[str, int]] = {"footnote": {}, "endnote": {}}

    def mark(self, reference: _Element) -> str:
        """The text printed for a note reference met in the body, e.g. "[1]"."""
        kind = _KINDS[reference.tag]
        note_id = reference.get(_ID, "")
        if note_id not in self._notes[kind]:
            return ""  # a reference to a note that is not there: nothing to point to
        numbers = self._numbers[kind]
        number = numbers.setdefault(note_id, len(numbers) + 1)
        if reference.get(f"{_W}customMarkFollows", "").lower() in _TRUE:
            return ""
        return f"[{_label(kind, number)}]"

    def sections(self, read: Callable[[Iterable[_Element]], Iterator[str]]) -> list[str]:
        """The lines after the body: each kind's heading and its notes, read with ``read``
        (the body's block reader, so tables and lists in notes read as in the body)."""
        lines: list[str] = []
        for kind in ("footnote", "endnote"):
            numbers = self._numbers[kind]
            if not numbers:
                continue
            lines.append(_HEADINGS[kind])
            for note_id, number in sorted(numbers.items(), key=lambda item: item[1]):
                text = "\n".join(line for line in read(self._notes[kind][note_id]) if line.strip())
                lines.append(f"[{_label(kind, number)}] {text.strip()}")
        return lines


def _by_id(root: _Element | None, kind: str) -> dict[str, _Element]:
    if root is None:
        return {}
    notes: dict[str, _Element] = {}
    for note in root.iterchildren(f"{_W}{kind}"):
        if note.get(_TYPE, "normal") in ("normal", ""):
            notes[note.get(_ID, "")] = note
    return notes


def _label(kind: str, number: int) -> str:
    return format_number(number, "decimal" if kind == "footnote" else "lowerRoman")
