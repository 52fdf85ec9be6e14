from __future__ import annotations

import pytest

from dscall.documents.hyphenation import join_hyphenated


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("De\ufffescription here.", "Description here."),  # pdfium get_text_range marker
        ("De\x02scription here.", "Description here."),  # pdfium get_text_bounded marker
        ("De\u00ad\nscription here.", "Description here."),  # pypdf: soft hyphen kept
        ("hyphen-\nation", "hyphenation"),  # pypdf: ordinary hyphen, nothing known
        ("Franco\ufffePrussian", "Franco-\nPrussian"),  # a capital after the break
        ("in 1990\ufffe91", "in 1990-\n91"),  # not between letters: printed as is
        ("a soft\u00adhyphen mid-line", "a softhyphen mid-line"),  # invisible when unbroken
        ("no hyphen at all", "no hyphen at all"),
        ("a range 10-\n20", "a range 10-\n20"),
    ],
)
def test_one_page(page: str, expected: str) -> None:
    assert join_hyphenated([page]) == [expected]


def test_a_compound_written_elsewhere_in_the_document_keeps_its_hyphen() -> None:
    pages = ["A well\ufffeknown fact.", "Another well-known fact."]
    assert join_hyphenated(pages) == ["A well-\nknown fact.", "Another well-known fact."]


def test_compound_evidence_is_case_insensitive_and_per_pair() -> None:
    pages = ["Self\ufffecontained, self\ufffeevident.", "Self-Contained units."]
    assert join_hyphenated(pages) == ["Self-\ncontained, selfevident.", "Self-Contained units."]
