"""What `make bench-docs` measures on one document: dscall's text against the reference's.

Words: NFKC, case-folded, soft hyphens and control characters dropped, then runs of letters
and digits (punctuation, symbols and underscores split words and are dropped, so "a | b" and
a grid table give the same words); each Han, kana or Hangul character is a word of its own,
since CJK text has no spaces to split on.

- recall: the share of the reference's words (as a multiset) that dscall's text has;
  precision: the share of dscall's words that the reference has.
- order: the share of the reference's word bigrams that occur in dscall's text, both
  sequences first reduced to the words they share. Bigrams because they are linear in the
  text (an LCS on a 400,000-word manual is not) and see what reading order breaks: columns
  read across, a footnote dropped mid-paragraph, a table read down its columns. Reducing to
  shared words keeps a missing word from counting twice (once in recall, again as two broken
  bigrams), so order measures order only.
- table rows (DOCX): the share of the reference's table rows (from pandoc's AST) whose words
  occur in dscall's text as one contiguous run, in cell order.
- hyphen splits: "De-\\nscription" left in dscall's text (a letter, a hyphen at the end of a
  line, a lower-case letter), as issue 14 item 5 counts them.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

_CJK = (
    "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
)
_WORD = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")
# Soft hyphens and control characters are dropped, not word breaks: pdftotext writes an
# unmapped ligature glyph as its code ("signi\x1ccance") where pdfium writes nothing
# ("signicance"); both lost the "fi", and neither should lose a word more for it.
_CONTROLS = [*range(0x00, 0x09), *range(0x0E, 0x20), *range(0x7F, 0xA0)]
_DROPPED = str.maketrans(
    {"\u00ad": None, "\ufffe": None, "\u200b": " ", **dict.fromkeys(_CONTROLS)}
)
_HYPHEN_SPLIT = re.compile(r"[^\W\d_]-\n[^\W\d_A-Z]")


def words(text: str) -> list[str]:
    normal = unicodedata.normalize("NFKC", text.translate(_DROPPED)).casefold()
    return _WORD.findall(normal)


@dataclass(frozen=True)
class Scores:
    ref_words: int
    dscall_words: int
    matched: int
    recall: float | None  # None when the reference has no words
    precision: float | None  # None when dscall has no words
    order: float | None  # None when the reduced reference has fewer than two words
    table_rows: int
    table_rows_kept: int
    hyphen_splits: int


def score(reference: str, dscall: str, table_rows: Sequence[Sequence[str]] = ()) -> Scores:
    ref = words(reference)
    got = words(dscall)
    ref_count, got_count = Counter(ref), Counter(got)
    matched = sum((ref_count & got_count).values())
    kept = sum(1 for row in table_rows if _row_kept(row, got))
    return Scores(
        ref_words=len(ref),
        dscall_words=len(got),
        matched=matched,
        recall=matched / len(ref) if ref else None,
        precision=matched / len(got) if got else None,
        order=_order(ref, got, ref_count, got_count),
        table_rows=len(table_rows),
        table_rows_kept=kept,
        hyphen_splits=len(_HYPHEN_SPLIT.findall(dscall)),
    )


def _order(
    ref: list[str], got: list[str], ref_count: Counter[str], got_count: Counter[str]
) -> float | None:
    shared = ref_count.keys() & got_count.keys()
    ref_kept = [w for w in ref if w in shared]
    got_kept = [w for w in got if w in shared]
    if len(ref_kept) < 2:
        return None
    ref_pairs = Counter(pairwise(ref_kept))
    got_pairs = Counter(pairwise(got_kept))
    return sum((ref_pairs & got_pairs).values()) / (len(ref_kept) - 1)


def _row_kept(row: Sequence[str], got: list[str]) -> bool:
    needle = [w for cell in row for w in words(cell)]
    if not needle:
        return True
    return _contains(got, needle)


def _contains(haystack: list[str], needle: list[str]) -> bool:
    """Whether ``needle`` occurs in ``haystack`` as a contiguous run of words."""
    first, size = needle[0], len(needle)
    start = 0
    try:
        while True:
            start = haystack.index(first, start)
            if haystack[start : start + size] == needle:
                return True
            start += 1
    except ValueError:
        return False
