"""Where a text may be cut without splitting a character: the splitter's last resort.

A hard cut (a run with no line, clause or whitespace boundary) never splits a CRLF or a
surrogate pair (``code_point_boundary``), and steps back a little so as not to split a character
from its combining marks, an emoji from its modifier, or the parts of a ZWJ sequence or a flag
(``grapheme_boundary``, an approximation of Unicode's grapheme clusters that is enough for that).
"""

from __future__ import annotations

import re
import unicodedata

_NON_SPACE = re.compile(r"\S")
_JOINERS = frozenset("\u200d\u200c\u034f")
# A hard cut steps back at most this far looking for a grapheme boundary, then gives up on it.
_MAX_CLUSTER = 32


def hard_cut(text: str, floor: int, fit: int) -> int:
    """Cut at ``fit`` or a little before it, never splitting a character, past ``floor``."""
    pos = fit
    while pos > floor and pos > fit - _MAX_CLUSTER and not grapheme_boundary(text, pos):
        pos -= 1
    if pos <= floor or not grapheme_boundary(text, pos):
        pos = fit
        while pos > floor and not code_point_boundary(text, pos):
            pos -= 1
    while pos > floor and text[pos - 1].isspace():
        pos -= 1
    if pos <= floor:
        # Not one character fits (a huge grapheme, or whitespace filling the room): take
        # one anyway, so that the run goes on.
        match = _NON_SPACE.search(text, floor)
        pos = (match.start() if match else len(text)) + 1
        while pos < len(text) and not code_point_boundary(text, pos):
            pos += 1
    return pos


def code_point_boundary(text: str, pos: int) -> bool:
    """Whether a cut at ``pos`` leaves every CRLF and surrogate pair whole."""
    if pos <= 0 or pos >= len(text):
        return True
    before, after = text[pos - 1], text[pos]
    if before == "\r" and after == "\n":
        return False
    return not ("\ud800" <= before <= "\udbff" and "\udc00" <= after <= "\udfff")


def grapheme_boundary(text: str, pos: int) -> bool:
    """An approximation of grapheme cluster boundaries, enough not to orphan combining marks,
    emoji modifiers or the parts of a ZWJ sequence or flag."""
    if not code_point_boundary(text, pos) or pos <= 0 or pos >= len(text):
        return pos <= 0 or pos >= len(text)
    before, after = text[pos - 1], text[pos]
    if before in _JOINERS or after in _JOINERS:
        return False
    if unicodedata.category(after)[0] == "M" or "\U0001f3fb" <= after <= "\U0001f3ff":
        return False
    if _is_regional(before) and _is_regional(after):
        # Flags are pairs of regional indicators: a boundary only after an even number of them.
        run = pos
        while run > 0 and _is_regional(text[run - 1]):
            run -= 1
        return (pos - run) % 2 == 0
    return True


def _is_regional(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"
