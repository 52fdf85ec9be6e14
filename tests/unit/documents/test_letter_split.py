from __future__ import annotations

import pytest

from dscall.documents.letter_split import better_reading, looks_letter_split, single_letter_share

SPLIT = "N o r t h B u o n a V i s t a R o a d r u n s p a s t t h e o l d s t a t i o n"
WHOLE = "North Buona Vista Road runs past the old station"
OCR_SPLIT = "Nort h Buon a Vist a Road runs pas t th e ol d statio n toward s th e harbou r"
PROSE = "It is a truth that a man in a room with a view reads a book in a day or two weeks"


@pytest.mark.parametrize(
    ("text", "share"),
    [("", 0.0), ("a b", 1.0), ("North Buona", 0.0), ("x = y + z", 0.6), ("中 文 字", 0.0)],
)
def test_single_letter_share(text: str, share: float) -> None:
    assert single_letter_share(text) == pytest.approx(share)


@pytest.mark.parametrize(
    ("text", "suspect"),
    [
        (SPLIT, True),
        (OCR_SPLIT, True),
        (WHOLE, False),  # too few words to judge, and whole anyway
        (PROSE, False),  # many one-letter words ("a", "I"), still well under the mark
        ("a b c d", False),  # too short to judge
        ("中 文 字 " * 20, False),  # CJK characters are not one-letter words
    ],
)
def test_looks_letter_split(text: str, suspect: bool) -> None:
    assert looks_letter_split(text) is suspect


def test_better_reading_takes_the_whole_reading_of_the_same_letters() -> None:
    assert better_reading(SPLIT, WHOLE) == WHOLE
    assert (
        better_reading(OCR_SPLIT, WHOLE + " towards the harbour") == WHOLE + " towards the harbour"
    )


@pytest.mark.parametrize(
    "other",
    [
        None,  # pypdf could not read the page
        "",
        "North Buona",  # far fewer letters: pypdf half-read the page
        SPLIT,  # as split as pdfium's
    ],
)
def test_better_reading_keeps_pdfium_otherwise(other: str | None) -> None:
    assert better_reading(SPLIT, other) == SPLIT
