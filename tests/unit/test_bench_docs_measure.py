"""The measures of `make bench-docs` (bench/docs_measure.py) and how it rebuilds a document's
whole text from its chunks (bench/bench_docs.py): the benchmark's figures are only as good
as these."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from bench.bench_docs import whole_text
from bench.docs_measure import score, words
from dscall.chunking.splitter import chunk_document
from dscall.chunking.tokens import make_counter
from dscall.config import ChunkSettings
from dscall.types import Document, SourceFile


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The ﬁrst Oﬃce", ["the", "first", "office"]),  # NFKC ligatures
        ("STRASSE Straße", ["strasse", "strasse"]),  # case-folded
        ("a | b, (c); d_e", ["a", "b", "c", "d", "e"]),  # punctuation, symbols, underscores
        ("De\u00adscrip\u00adtion", ["description"]),  # soft hyphens dropped, word kept
        ("第1节 概述", ["第", "1", "节", "概", "述"]),  # one word per Han character
        ("ひらがなとカタカナ", list("ひらがなとカタカナ")),
        ("", []),
    ],
)
def test_words_are_normalised(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_recall_and_precision_count_words_as_a_multiset() -> None:
    scores = score("one two two three", "two one extra")
    assert (scores.ref_words, scores.dscall_words, scores.matched) == (4, 3, 2)
    assert scores.recall == pytest.approx(0.5)
    assert scores.precision == pytest.approx(2 / 3)


def test_order_is_measured_on_shared_words_only() -> None:
    # A dropped word costs recall, not order.
    assert score("alpha beta gamma delta", "alpha gamma delta").order == pytest.approx(1.0)
    # Two columns read across: every bigram is broken except inside each half-line.
    interleaved = score("a1 a2 a3 a4 b1 b2 b3 b4", "a1 a2 b1 b2 a3 a4 b3 b4")
    assert interleaved.recall == pytest.approx(1.0)
    assert interleaved.order == pytest.approx(4 / 7)


def test_nothing_to_measure_is_none_not_zero() -> None:
    scores = score("", "")
    assert (scores.recall, scores.precision, scores.order) == (None, None, None)


def test_a_table_row_counts_only_when_its_cells_are_contiguous_in_order() -> None:
    rows = [["Route | Volume"], ["Line 1 | 1,037"], ["Line 2 | 1,074"]]
    text = "Route | Volume\nLine 1 | 1,037\n1,074 Line 2"
    scores = score("\n".join(r[0] for r in rows), text, rows)
    assert (scores.table_rows, scores.table_rows_kept) == (3, 2)


def test_hyphen_splits_are_lower_case_continuations_at_line_ends() -> None:
    text = "a De-\nscription and a well-\nknown S-\nPlus, 1-\n2"
    assert score("", text).hyphen_splits == 2


def test_whole_text_rebuilds_a_document_from_overlapping_chunks() -> None:
    text = " ".join(f"Sentence number {n} says something about item {n}." for n in range(300))
    source = SourceFile(Path("x.txt"), "x.txt", "txt", len(text))
    chunks = chunk_document(
        Document(source, "0" * 64, text, None),
        ChunkSettings(chunk_tokens=120, overlap_tokens=40, tokenizer="estimate"),
        make_counter("estimate"),
    )
    assert len(chunks) > 5
    assert any(b.char_start < a.char_end for a, b in pairwise(chunks))
    assert words(whole_text(chunks)) == words(text)
