"""Which of two readings of a PDF page to keep when pdfium's looks letter-split.

pdfium decides where spaces go from the gaps between glyphs. Text whose glyphs are drawn
narrower than the advance between them (an OCR text layer scaled with ``Tz``, each glyph placed
on its own, a rotated scan) comes out as "N o r t h B u o n a V i s t a", while pypdf, which
places characters by their positions, reads "North Buona Vista". The check is the share of
single-letter words: about 2-5% in running prose in English or other languages with spaces,
rarely above 20% even in formulas; in letter-split text nearly every word is one letter.

Only a page whose pdfium text fails the cheap check is read a second time with pypdf, and
pypdf's reading is taken only when it is clearly better: a share well under pdfium's, and about
as many letters (it is the same text, not a page pypdf half-reads). Chinese and Japanese are
written without spaces, so their characters never count as one-letter words.
"""

from __future__ import annotations

# A page with fewer words than this is too short to judge (a heading, a page number).
_MIN_WORDS = 12
# The first check reads this much of a page.
_SAMPLE_CHARS = 1500
# Text with more characters per space than this cannot be mostly one-letter words.
_MAX_CHARS_PER_WORD = 4.0
# pdfium's reading is suspect from this share of single-letter words on.
_SUSPECT_SHARE = 0.35
# pypdf's reading wins when its share is at most this fraction of pdfium's...
_BETTER_BY = 0.5
# ...and it holds at least this fraction of pdfium's letters.
_MIN_LETTER_RATIO = 0.9


def single_letter_share(text: str) -> float:
    """The share of whitespace-separated words that are one letter of a spaced script."""
    words = text.split()
    if not words:
        return 0.0
    single = sum(1 for word in words if len(word) == 1 and _spaced_letter(word))
    return single / len(words)


def looks_letter_split(text: str) -> bool:
    """Cheap first check on pdfium's text: worth reading the page a second way? Judged on
    the page's start: a letter-split layer is split throughout, and a dense page of 5,000
    words should not cost a split of all of them."""
    sample = text[:_SAMPLE_CHARS]
    spaces = sample.count(" ")
    # Prose averages 5-7 characters per word and its space; letter-split text 2-3.5.
    if spaces < _MIN_WORDS or len(sample) > _MAX_CHARS_PER_WORD * (spaces + 1):
        return False
    return len(sample.split()) >= _MIN_WORDS and single_letter_share(sample) >= _SUSPECT_SHARE


def better_reading(pdfium_text: str, pypdf_text: str | None) -> str:
    """pypdf's text when it reads the same letters far less split, else pdfium's."""
    if not pypdf_text:
        return pdfium_text
    if _letters(pypdf_text) < _MIN_LETTER_RATIO * _letters(pdfium_text):
        return pdfium_text
    if single_letter_share(pypdf_text) <= _BETTER_BY * single_letter_share(pdfium_text):
        return pypdf_text
    return pdfium_text


def _spaced_letter(char: str) -> bool:
    # CJK ideographs, kana and hangul are letters too (isalpha), but are not written with
    # spaces between words.
    return char.isalpha() and ord(char) < 0x2E80


def _letters(text: str) -> int:
    return sum(1 for char in text if char.isalpha())
