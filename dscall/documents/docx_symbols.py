"""Symbol-font characters of a DOCX (``w:sym``: a font and a character code) -> Unicode.

Word's Insert Symbol writes ``<w:sym w:font="Wingdings" w:char="F0FC"/>``: a code in the
font's own encoding, moved into the private-use area (U+F000 + code). The common characters of
Symbol and Wingdings (bullets, arrows, check marks and boxes, Greek letters, math signs) are
mapped to their Unicode equivalents. A code of another symbol font, or one not in the table,
is kept as its private-use character, as Word's own text export does: never dropped silently.
A ``w:sym`` in an ordinary text font names an ordinary character (code - U+F000 in the font's
8-bit encoding, Latin-1 here).
"""

from __future__ import annotations

_SYMBOL_GREEK = "ΑΒΧΔΕΦΓΗΙϑΚΛΜΝΟΠΘΡΣΤΥςΩΞΨΖ"  # Symbol 0x41-0x5A
_SYMBOL_GREEK_LOWER = "αβχδεφγηιϕκλμνοπθρστυϖωξψζ"  # Symbol 0x61-0x7A
_SYMBOL: dict[int, str] = {
    0x22: "∀", 0x24: "∃", 0x27: "∋", 0x2A: "∗", 0x2D: "−", 0x40: "≅", 0x5C: "∴", 0x5E: "⊥",
    0xA3: "≤", 0xA5: "∞", 0xA7: "♣", 0xA8: "♦", 0xA9: "♥", 0xAA: "♠", 0xAB: "↔",
    0xAC: "←", 0xAD: "↑", 0xAE: "→", 0xAF: "↓", 0xB0: "°", 0xB1: "±", 0xB3: "≥", 0xB4: "×",
    0xB5: "∝", 0xB6: "∂", 0xB7: "•", 0xB8: "÷", 0xB9: "≠", 0xBA: "≡", 0xBB: "≈", 0xBC: "…",
    0xC4: "⊗", 0xC5: "⊕", 0xC6: "∅", 0xC7: "∩", 0xC8: "∪", 0xCE: "∈", 0xCF: "∉", 0xD0: "∠",
    0xD1: "∇", 0xD2: "®", 0xD3: "©", 0xD4: "™", 0xD5: "∏", 0xD6: "√", 0xD7: "⋅", 0xD8: "¬",
    0xD9: "∧", 0xDA: "∨", 0xDB: "⇔", 0xDC: "⇐", 0xDD: "⇑", 0xDE: "⇒", 0xDF: "⇓", 0xE0: "◊",
    0xE5: "∑", 0xF2: "∫",
}  # fmt: skip
_SYMBOL.update({0x41 + i: char for i, char in enumerate(_SYMBOL_GREEK)})
_SYMBOL.update({0x61 + i: char for i, char in enumerate(_SYMBOL_GREEK_LOWER)})
_WINGDINGS: dict[int, str] = {
    0x21: "✏", 0x22: "✂", 0x28: "☎", 0x2A: "✉", 0x36: "⌛", 0x3F: "✍", 0x41: "✌",
    0x43: "👍", 0x44: "👎", 0x45: "☜", 0x46: "☞", 0x4A: "☺", 0x4B: "😐", 0x4C: "☹",
    0x4E: "☠", 0x52: "☼", 0x54: "❄", 0x58: "✠", 0x59: "✡", 0x5B: "☯", 0x6C: "●", 0x6D: "❍",
    0x6E: "■", 0x6F: "□", 0x70: "◻", 0x71: "❑", 0x72: "❒", 0x73: "⬧", 0x74: "⧫", 0x75: "◆",
    0x76: "❖", 0x77: "⬥", 0x9F: "•", 0xA1: "○", 0xA7: "▪", 0xA8: "◻", 0xAB: "★",
    0xD8: "➢", 0xDF: "←", 0xE0: "→", 0xE1: "↑", 0xE2: "↓", 0xE8: "➔", 0xEF: "⇦", 0xF0: "⇨",
    0xF1: "⇧", 0xF2: "⇩", 0xFB: "✗", 0xFC: "✓", 0xFD: "☒", 0xFE: "☑",
}  # fmt: skip
_FONTS = {"symbol": _SYMBOL, "wingdings": _WINGDINGS}
_SYMBOL_FONTS = ("symbol", "wingdings", "webdings", "zapf", "dingbats", "marlett", "mt extra")
_PRIVATE_USE_BASE = 0xF000


def symbol_text(font: str | None, code: str | None) -> str:
    """The Unicode text of a ``w:sym`` (font name, hex code); "" only without a valid code."""
    try:
        value = int(code or "", 16)
    except ValueError:
        return ""
    if not 0 < value < 0x110000:
        return ""
    name = (font or "").strip().lower()
    byte = value - _PRIVATE_USE_BASE if value >= _PRIVATE_USE_BASE else value
    table = _FONTS.get(name)
    if table is not None and byte in table:
        return table[byte]
    if any(name.startswith(symbol) for symbol in _SYMBOL_FONTS):
        return chr(_PRIVATE_USE_BASE + byte) if byte < 0x100 else chr(value)
    return chr(byte) if value >= _PRIVATE_USE_BASE and byte >= 0x20 else chr(value)
