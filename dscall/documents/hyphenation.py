"""Join words hyphenated across a line end; keep the hyphen of a compound that happens to
end a line.

What the extractors report (measured on generated files, pypdfium2 5.x and pypdf 7.x):

- pdfium merges the two lines and puts a marker where the hyphen was: U+FFFE from
  ``get_text_range``, U+0002 from ``get_text_bounded``. It does so for a hyphen (U+002D) *or* a
  soft hyphen (U+00AD) at a line end between two letters, and reports both the same way, so the
  marker says "a word was split here", not which hyphen the PDF holds.
- pypdf keeps the characters: ``"De\\u00ad\\nscription"`` for a soft hyphen, ``"well-\\nknown"``
  for a hyphen.

A soft hyphen is joined ("De-\\nscription" -> "Description"): the PDF says the hyphen is only
there because of the line break. A marker or a hyphen between letters is joined too (TeX and
most typesetters print line-end hyphenation with the ordinary hyphen character), unless the
document itself says it is a compound: the part after the break starts with a capital
("Franco-\\nPrussian", "non-\\nEnglish") or the same two parts appear joined by a hyphen
elsewhere in the document ("well-known" within a line). A kept hyphen is written ``-\\n``, as
printed. Both backends go through the same rule, so they give the same text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# pdfium's two markers, and a soft hyphen followed by the line break pypdf reports after it.
_MARKERS = ("\ufffe", "\x02")
_LETTERS = r"[^\W\d_]"
_SPLIT = re.compile(
    rf"({_LETTERS}+)(\ufffe|\x02|\u00ad[ \t]*\r?\n|-[ \t]*\r?\n)[ \t]*({_LETTERS}+)"
)
# A hyphenated compound written within one line: what "keep the hyphen" evidence looks like.
_COMPOUND = re.compile(rf"{_LETTERS}+(?:-{_LETTERS}+)+")


def join_hyphenated(pages: Sequence[str]) -> list[str]:
    """``pages`` with line-end hyphenation joined (see the module doc). The compounds that
    keep their hyphen are looked up in the whole document, so pages are passed together."""
    if not any(_might_split(page) for page in pages):
        return list(pages)  # the common case: one scan per page and nothing else
    compounds = _compounds_within_lines(pages)
    return [_join_page(page, compounds) if _might_split(page) else page for page in pages]


def _might_split(page: str) -> bool:
    return (
        any(marker in page for marker in _MARKERS)
        or "\u00ad" in page
        or "-\n" in page
        or "-\r\n" in page
    )


def _compounds_within_lines(pages: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for page in pages:
        if "-" in page:
            found.update(match.lower() for match in _COMPOUND.findall(page))
    return found


def _join_page(page: str, compounds: set[str]) -> str:
    def rewrite(match: re.Match[str]) -> str:
        left, mark, right = match.group(1), match.group(2), match.group(3)
        if mark.startswith("\u00ad"):
            return left + right
        if right[0].isupper() or _is_compound(left, right, compounds):
            return f"{left}-\n{right}"
        return left + right

    page = _SPLIT.sub(rewrite, page)
    # A marker or soft hyphen not between letters ("1990\ufffe" is not a word split): it was
    # printed as a hyphen at a line end.
    for marker in _MARKERS:
        page = page.replace(marker, "-\n")
    return page.replace("\u00ad", "")


def _is_compound(left: str, right: str, compounds: set[str]) -> bool:
    return f"{left}-{right}".lower() in compounds
