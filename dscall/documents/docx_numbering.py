"""List numbers and bullets of DOCX paragraphs, as Word draws them: "1. ", "a. ", "• ".

A numbered paragraph names a list (``w:numPr``: ``w:numId`` and the level ``w:ilvl``), itself
or through its paragraph style (``w:pStyle``, following ``w:basedOn``). numbering.xml maps the
list to an abstract definition whose level gives the format (``w:numFmt``), the text with
placeholders (``w:lvlText`` "%1.", "%1.%2.") and the start value; a list may override the
start of a level (``w:lvlOverride/w:startOverride``). Counters are kept per list and level, in
document order; a paragraph at a level restarts every deeper level, as Word does.

Every bullet is written "•": bullet characters are mostly private-use glyphs of the Symbol
and Wingdings fonts, which read as nothing or as a stray letter elsewhere. Formats dscall does
not know (``chicago``, ``ordinal``, ``cardinalText``, CJK counting systems) are written as
decimal numbers, so a list still reads as a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_VAL = f"{_W}val"
_Element = Any  # lxml elements: python-docx ships no types dscall can use
_BULLET = "•"
# A style hierarchy is a chain; a loop in a damaged file must not hang.
_MAX_BASED_ON = 32


@dataclass(frozen=True, slots=True)
class _Level:
    number_format: str
    text: str  # "%1." with placeholders
    start: int
    suffix: str  # what follows the number: tab and space both read as one space


class ListNumbering:
    """The label of each numbered paragraph, counted in the order they are asked for."""

    def __init__(self, numbering: _Element | None, styles: _Element | None) -> None:
        self._levels = _lists(numbering) if numbering is not None else {}
        self._styles = styles
        self._style_lists: _StyleLists | None = None  # read when first needed
        self._counters: dict[str, list[int | None]] = {}

    def label(self, properties: _Element | None) -> str:
        """The label for a paragraph with these ``w:pPr``; "" when it is not in a list."""
        if properties is None or not self._levels:
            return ""
        num_id, level = self._list_of(properties)
        levels = self._levels.get(num_id) if num_id else None
        if not levels or level not in levels:
            return ""
        return self._count(num_id, level, levels)

    def _list_of(self, properties: _Element) -> tuple[str, int]:
        num_id, level = "", 0
        style = properties.find(f"{_W}pStyle")
        if style is not None and self._styles is not None:
            if self._style_lists is None:
                self._style_lists = _StyleLists(self._styles)
            num_id, level = self._style_lists.get(style.get(_VAL, ""))
        num_pr = properties.find(f"{_W}numPr")
        if num_pr is not None:
            num_id = _child_value(num_pr, "numId") or num_id
            level = _int(_child_value(num_pr, "ilvl"), level)
        return ("" if num_id == "0" else num_id), level

    def _count(self, num_id: str, level: int, levels: dict[int, _Level]) -> str:
        counters = self._counters.setdefault(num_id, [None] * 9)
        if level >= len(counters):
            return ""
        current = counters[level]
        counters[level] = levels[level].start if current is None else current + 1
        for deeper in range(level + 1, len(counters)):
            counters[deeper] = None
        this = levels[level]
        if this.number_format == "none":
            return ""
        if this.number_format == "bullet":
            return _BULLET + this.suffix
        text = this.text
        for shown in range(level + 1):
            placeholder = f"%{shown + 1}"
            if placeholder in text:
                value = counters[shown]
                outer = levels.get(shown)
                if value is None:  # a level never reached shows its start value
                    value = outer.start if outer else 1
                fmt = outer.number_format if outer else "decimal"
                text = text.replace(placeholder, format_number(value, fmt))
        return text + this.suffix if text else ""


def _lists(numbering: _Element) -> dict[str, dict[int, _Level]]:
    abstract: dict[str, dict[int, _Level]] = {}
    for definition in numbering.iterchildren(f"{_W}abstractNum"):
        abstract[definition.get(f"{_W}abstractNumId", "")] = {
            _int(lvl.get(f"{_W}ilvl"), 0): _level(lvl)
            for lvl in definition.iterchildren(f"{_W}lvl")
        }
    lists: dict[str, dict[int, _Level]] = {}
    for instance in numbering.iterchildren(f"{_W}num"):
        levels = dict(abstract.get(_child_value(instance, "abstractNumId") or "", {}))
        for override in instance.iterchildren(f"{_W}lvlOverride"):
            index = _int(override.get(f"{_W}ilvl"), 0)
            replacement = override.find(f"{_W}lvl")
            if replacement is not None:
                levels[index] = _level(replacement)
            start = _child_value(override, "startOverride")
            if start is not None and index in levels:
                old = levels[index]
                levels[index] = _Level(old.number_format, old.text, _int(start, 1), old.suffix)
        lists[instance.get(f"{_W}numId", "")] = levels
    return lists


def _level(lvl: _Element) -> _Level:
    suffix = _child_value(lvl, "suff") or "tab"
    return _Level(
        number_format=_child_value(lvl, "numFmt") or "decimal",
        text=_child_value(lvl, "lvlText") or "",
        start=_int(_child_value(lvl, "start"), 1),
        suffix="" if suffix == "nothing" else " ",
    )


class _StyleLists:
    """Paragraph style id -> (numId, ilvl) of the list the style puts its paragraphs in,
    resolved along ``w:basedOn`` for the styles a document uses, when it first uses them."""

    def __init__(self, styles: _Element) -> None:
        self._by_id = {
            style.get(f"{_W}styleId", ""): style for style in styles.iterchildren(f"{_W}style")
        }
        self._resolved: dict[str, tuple[str, int]] = {}

    def get(self, style_id: str) -> tuple[str, int]:
        found = self._resolved.get(style_id)
        if found is None:
            found = self._resolved[style_id] = self._resolve(style_id)
        return found

    def _resolve(self, style_id: str) -> tuple[str, int]:
        num_id: str | None = None
        level: int | None = None
        style = self._by_id.get(style_id)
        for _ in range(_MAX_BASED_ON):
            if style is None:
                break
            num_pr = style.find(f"{_W}pPr/{_W}numPr")
            if num_pr is not None:
                num_id = num_id if num_id is not None else _child_value(num_pr, "numId")
                ilvl = _child_value(num_pr, "ilvl")
                level = level if level is not None or ilvl is None else _int(ilvl, 0)
            if num_id is not None and level is not None:
                break
            parent = _child_value(style, "basedOn")
            style = self._by_id.get(parent) if parent else None
        return (num_id or ""), (level or 0)


def format_number(value: int, number_format: str) -> str:
    """``value`` written in a ``w:numFmt`` format (decimal for the ones dscall does not know)."""
    if number_format in ("lowerLetter", "upperLetter"):
        letters = _letters(value)
        return letters.upper() if number_format == "upperLetter" else letters
    if number_format in ("lowerRoman", "upperRoman"):
        roman = _roman(value)
        return roman.lower() if number_format == "lowerRoman" else roman
    if number_format == "decimalZero":
        return f"{value:02d}"
    return str(value)


def _letters(value: int) -> str:
    # Word's letters: a..z, then aa..zz, aaa..zzz (the letter repeated, not base 26).
    if value < 1:
        return str(value)
    letter = chr(ord("a") + (value - 1) % 26)
    return letter * ((value - 1) // 26 + 1)


_ROMAN = (
    (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
    (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
)  # fmt: skip


def _roman(value: int) -> str:
    if not 0 < value < 4000:
        return str(value)
    out = []
    for amount, numeral in _ROMAN:
        count, value = divmod(value, amount)
        out.append(numeral * count)
    return "".join(out)


def _child_value(element: _Element, name: str) -> str | None:
    child = element.find(f"{_W}{name}")
    return None if child is None else child.get(_VAL)


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default
