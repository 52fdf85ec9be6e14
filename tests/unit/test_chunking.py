"""The chunker, case by case: boundaries, overlap, provenance, characters never split."""

from __future__ import annotations

import itertools
import unicodedata
from pathlib import Path

import pytest

from dscall.chunking.splitter import chunk_document, split_text, validate_chunk_settings
from dscall.chunking.tokens import EstimateCounter, TokenCounter, make_counter
from dscall.config import ChunkSettings
from dscall.errors import UsageError
from dscall.types import Chunk, Document, SourceFile

# One token per Latin character and two per CJK character: budgets read as lengths.
PER_CHAR = EstimateCounter(margin=10 / 3)


def document(text: str, page_starts: tuple[int, ...] | None = None) -> Document:
    source = SourceFile(path=Path("doc.txt"), rel_path="doc.txt", doc_type="txt", size=len(text))
    return Document(source=source, doc_id="0" * 64, text=text, page_starts=page_starts)


def pieces(text: str, budget: int, overlap: int = 0, counter: TokenCounter = PER_CHAR) -> list[str]:
    settings = ChunkSettings(chunk_tokens=budget, overlap_tokens=overlap)
    return [text[start:end] for start, end, _ in split_text(text, settings, counter)]


@pytest.mark.parametrize(
    ("text", "budget", "expected"),
    [
        pytest.param(
            "Alpha beta gamma.\n\nDelta epsilon zeta. Eta theta.",
            30,
            ["Alpha beta gamma.", "Delta epsilon zeta. Eta theta."],
            id="paragraph",
        ),
        pytest.param(
            "Alpha beta gamma delta.\r\n\r\nEpsilon zeta eta theta.",
            30,
            ["Alpha beta gamma delta.", "Epsilon zeta eta theta."],
            id="paragraph-crlf",
        ),
        pytest.param(
            "Short.\n\nA longer second paragraph. It has three sentences. Here is the third.",
            40,
            [
                "Short.\n\nA longer second paragraph.",
                "It has three sentences.",
                "Here is the third.",
            ],
            id="short-paragraph-filled-with-sentences",
        ),
        pytest.param(
            "One two three. Four five six! Seven eight? Nine ten.",
            30,
            ["One two three. Four five six!", "Seven eight? Nine ten."],
            id="sentence",
        ),
        pytest.param(
            'He said "Stop." Then he left.',
            20,
            ['He said "Stop."', "Then he left."],
            id="closing-quote-stays-left",
        ),
        pytest.param(
            "Version 3.14 is out. Pi is 3.14159 today.",
            24,
            ["Version 3.14 is out.", "Pi is 3.14159 today."],
            id="decimal-point-is-no-sentence-end",
        ),
        pytest.param(
            "第一句话很短。第二句话也不长！第三句呢？第四句。",
            16,
            ["第一句话很短。", "第二句话也不长！", "第三句呢？", "第四句。"],
            id="cjk-sentences-without-spaces",
        ),
        pytest.param(
            "他说：“好的。”然后走了。大家都笑了。",
            16,
            ["他说：“好的。”", "然后走了。", "大家都笑了。"],
            id="cjk-closing-quote-stays-left",
        ),
        pytest.param(
            "one two three four five six\nseven eight, nine ten eleven twelve",
            30,
            ["one two three four five six", "seven eight, nine ten eleven", "twelve"],
            id="line-before-clause",
        ),
        pytest.param(
            "one two three, four five six seven, eight nine ten eleven",
            20,
            ["one two three,", "four five six seven,", "eight nine ten", "eleven"],
            id="clause",
        ),
        pytest.param(
            "甲乙丙丁戊己庚，辛壬癸子丑寅卯，辰巳午未申酉戌亥",
            16,
            ["甲乙丙丁戊己庚，", "辛壬癸子丑寅卯，", "辰巳午未申酉戌亥"],
            id="cjk-clause",
        ),
        pytest.param(
            "alpha beta gamma delta epsilon zeta eta theta iota",
            20,
            ["alpha beta gamma", "delta epsilon zeta", "eta theta iota"],
            id="whitespace",
        ),
        pytest.param(
            "We paid 3,000,000 dollars for it in total",
            20,
            ["We paid 3,000,000", "dollars for it in", "total"],
            id="digit-comma-is-no-clause",
        ),
        pytest.param("a" * 40, 16, ["a" * 16, "a" * 16, "a" * 8], id="hard-cut"),
        pytest.param("x y " + "z" * 30, 16, ["x y", "z" * 16, "z" * 14], id="hard-cut-after-words"),
        pytest.param("Just one sentence.", 2000, ["Just one sentence."], id="fits-whole"),
        pytest.param("  \n Padded text.\n\n  ", 2000, ["Padded text."], id="trimmed"),
        pytest.param("", 2000, [], id="empty"),
        pytest.param(" \n\n\t\u3000 \r\n", 2000, [], id="whitespace-only"),
    ],
)
def test_boundaries(text: str, budget: int, expected: list[str]) -> None:
    assert pieces(text, budget) == expected


def test_a_page_join_is_not_a_paragraph_break() -> None:
    # Page 1 ends mid-paragraph; the single "\n" of the join must not end the chunk there
    # while a sentence end fits.
    text = "First page starts. It goes on\nand ends here. Another one."
    assert pieces(text, 48) == ["First page starts. It goes on\nand ends here.", "Another one."]


@pytest.mark.parametrize(
    ("unit", "count"),
    [
        ("\ud83d\ude00", 40),  # a surrogate pair held as two code points
        ("e\u0301", 30),  # a combining acute accent
        ("\U0001f468\u200d\U0001f469\u200d\U0001f467", 12),  # a ZWJ family
        ("\U0001f44b\U0001f3fd", 30),  # a waving hand with a skin tone
        ("\U0001f1eb\U0001f1f7", 30),  # a flag: two regional indicators
        ("\u0915\u094d\u0937", 20),  # a Devanagari conjunct with a virama
    ],
)
def test_hard_cuts_never_split_a_character(unit: str, count: int) -> None:
    text = unit * count
    result = pieces(text, 16)
    assert len(result) > 1
    assert "".join(result) == text
    for piece in result:
        assert len(piece) % len(unit) == 0
        assert piece == unit * (len(piece) // len(unit))


def test_a_grapheme_larger_than_the_budget_is_cut_between_code_points() -> None:
    # Nothing else is possible; the run must go on, and a surrogate pair still stays whole.
    text = "a" + "\u0301" * 60 + " \ud83d\ude00" * 3
    result = pieces(text, 16)
    assert "".join(result).replace(" ", "") == text.replace(" ", "")
    assert all(not piece.startswith("\ude00") for piece in result)


def test_crlf_is_never_split() -> None:
    text = "alpha beta\r\ngamma delta\r\nepsilon zeta\r\neta theta\r\n"
    result = pieces(text, 16)
    assert result == ["alpha beta", "gamma delta", "epsilon zeta", "eta theta"]


def test_overlap_repeats_whole_trailing_sentences() -> None:
    text = "One. Two. Three. Four. Five. Six. Seven. Eight. Nine."
    assert pieces(text, 20, overlap=9) == [
        "One. Two. Three.",
        "Three. Four. Five.",
        "Five. Six. Seven.",
        "Seven. Eight. Nine.",
    ]


def test_no_overlap_when_the_last_sentence_is_larger_than_the_overlap_budget() -> None:
    text = "A first sentence here. A second sentence here. A third one here."
    with_overlap = pieces(text, 48, overlap=10)
    assert with_overlap == pieces(text, 48, overlap=0)
    assert with_overlap == ["A first sentence here. A second sentence here.", "A third one here."]


def test_overlap_gives_way_to_the_next_sentence() -> None:
    # "Bb." would fit in the overlap budget, but then "Cccc..." would not fit after it.
    text = "Aaaaaaaaaaaa. Bb. " + "C" * 16 + "."
    result = pieces(text, 20, overlap=9)
    assert result == ["Aaaaaaaaaaaa. Bb.", "C" * 16 + "."]


def test_overlapping_chunks_share_their_ranges() -> None:
    text = "One. Two. Three. Four. Five. Six. Seven. Eight. Nine."
    doc = document(text)
    chunks = chunk_document(doc, ChunkSettings(chunk_tokens=20, overlap_tokens=9), PER_CHAR)
    for before, after in itertools.pairwise(chunks):
        assert after.char_start < before.char_end
        assert text[after.char_start : before.char_end].endswith(".")


def test_chunk_fields_and_page_provenance() -> None:
    pages = ["Page one text. More of page one.", "Page two. Still two.", "Three."]
    text = "\n".join(pages)
    starts = (0, len(pages[0]) + 1, len(pages[0]) + len(pages[1]) + 2)
    doc = document(text, page_starts=starts)
    chunks = chunk_document(doc, ChunkSettings(chunk_tokens=40, overlap_tokens=0), PER_CHAR)
    assert [(c.index, c.count) for c in chunks] == [(i, len(chunks)) for i in range(len(chunks))]
    assert [(c.text, c.page_start, c.page_end) for c in chunks] == [
        ("Page one text. More of page one.", 1, 1),
        ("Page two. Still two.\nThree.", 2, 3),
    ]
    for chunk in chunks:
        assert chunk.text == text[chunk.char_start : chunk.char_end]
        assert chunk.tokens == PER_CHAR.count(chunk.text)


def test_formats_without_pages_have_no_page_numbers() -> None:
    chunks = chunk_document(document("Some text. More text."), ChunkSettings(), PER_CHAR)
    assert [(c.page_start, c.page_end) for c in chunks] == [(None, None)]


def test_a_chunk_starting_on_an_empty_page_boundary() -> None:
    # Page 2 is empty: pages 1 and 3 start at 0 and 7, page 2 also at 7 (its text is "").
    text = "Page 1.\nPage 3."
    doc = document(text, page_starts=(0, 8, 8))
    (chunk,) = chunk_document(doc, ChunkSettings(), PER_CHAR)
    assert (chunk.page_start, chunk.page_end) == (1, 3)


@pytest.mark.parametrize(
    ("chunk_tokens", "overlap_tokens", "message"),
    [
        (15, 0, "--chunk-tokens must be at least 16"),
        (0, 0, "--chunk-tokens must be at least 16"),
        (16, 8, "less than half"),
        (2000, 1000, "less than half"),
        (2000, -1, "at least 0"),
    ],
)
def test_settings_validation(chunk_tokens: int, overlap_tokens: int, message: str) -> None:
    settings = ChunkSettings(chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)
    with pytest.raises(UsageError, match=message):
        validate_chunk_settings(settings)
    with pytest.raises(UsageError, match=message):
        chunk_document(document("text"), settings, PER_CHAR)


@pytest.mark.parametrize(("chunk_tokens", "overlap_tokens"), [(16, 0), (16, 7), (2000, 999)])
def test_settings_at_the_limits_are_accepted(chunk_tokens: int, overlap_tokens: int) -> None:
    validate_chunk_settings(ChunkSettings(chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens))


LONG_MIXED = (
    "The quarterly report shows that revenue grew by 14.2% year over year. Operating margin "
    "fell to 18.7%.\n\n近年来，随着人工智能技术的快速发展，大型语言模型取得了显著进展。这些模型"
    "通过在海量文本数据上进行预训练，学会了理解和生成人类语言的能力。\n在部署 DeepSeek-V3 模型时，"
    "我们使用了 vLLM 作为推理引擎。P99 延迟约为 850ms。\n\n"
) * 30


@pytest.mark.parametrize("choice", ["exact", "estimate"])
def test_real_counters_keep_every_chunk_within_budget(choice: str) -> None:
    counter = make_counter(choice)  # type: ignore[arg-type]
    settings = ChunkSettings(chunk_tokens=300, overlap_tokens=50)
    chunks = chunk_document(document(LONG_MIXED), settings, counter)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.tokens == counter.count(chunk.text)
        assert chunk.tokens <= 300
    # Chunks are well filled, not cut to crumbs.
    assert sum(c.tokens for c in chunks[:-1]) / (len(chunks) - 1) > 200


def test_exact_and_estimate_chunk_differently() -> None:
    settings = ChunkSettings(chunk_tokens=300, overlap_tokens=0)
    exact = chunk_document(document(LONG_MIXED), settings, make_counter("exact"))
    estimate = chunk_document(document(LONG_MIXED), settings, make_counter("estimate"))
    # The margin makes the estimate cautious: fewer characters per chunk than the exact count.
    assert len(estimate) > len(exact)


class InflatedCounter:
    """Counts five tokens more for any text than the sum of its characters: spans measured by
    prefix sums undercount every chunk, so each must be checked and shrunk."""

    name = "inflated"

    def count(self, text: str) -> int:
        return len(text) + 5 if text else 0


def test_chunks_are_shrunk_when_the_real_count_is_over_budget() -> None:
    text = "alpha beta gamma. delta epsilon zeta. eta theta iota. kappa lambda mu. nu xi."
    counter = InflatedCounter()
    spans = split_text(text, ChunkSettings(chunk_tokens=30, overlap_tokens=0), counter)
    assert len(spans) > 2
    for start, end, tokens in spans:
        assert tokens == counter.count(text[start:end]) <= 30
    covered = "".join(text[start:end] for start, end, _ in spans)
    assert covered.replace(" ", "") == text.replace(" ", "")


def test_output_is_deterministic() -> None:
    settings = ChunkSettings(chunk_tokens=120, overlap_tokens=30)
    first = chunk_document(document(LONG_MIXED), settings, make_counter("estimate"))
    second = chunk_document(document(LONG_MIXED), settings, make_counter("estimate"))
    assert first == second
    assert all(isinstance(c, Chunk) for c in first)


def test_no_chunk_starts_with_a_combining_mark_in_real_text() -> None:
    text = "Cafe\u0301 cre\u0300me bru\u0302le\u0301e " * 40
    for piece in pieces(text, 16):
        assert unicodedata.category(piece[0])[0] != "M"
