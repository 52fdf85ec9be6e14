"""Properties of the chunker over generated documents (hypothesis)."""

from __future__ import annotations

import itertools
import re
from bisect import bisect_right
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dscall.chunking.splitter import chunk_document
from dscall.chunking.tokens import EstimateCounter, TokenCounter, make_counter
from dscall.config import ChunkSettings
from dscall.types import Chunk, Document, SourceFile

ESTIMATE = EstimateCounter()
PER_CHAR = EstimateCounter(margin=10 / 3)

WORDS = ["alpha", "beta", "3,000", "e\u0301te\u0301", "x" * 70, "中文", "😀", "\ud83d\ude00"]
PUNCT = [".", "!", "?", ",", ";", ":", "。", "！", "？", "，", "、", "：", '."', "。”", ")"]
SPACES = [" ", " ", " ", "\n", "\n\n", "\r\n", "\t", "  \n \n", "\u3000"]

token = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(PUNCT),
    st.sampled_from(SPACES),
    st.text(alphabet="ab中文。，！ \n", min_size=1, max_size=12),
)
texts = st.lists(token, max_size=120).map("".join)
budgets = st.integers(min_value=16, max_value=90)


def make_doc(text: str, page_starts: tuple[int, ...] | None = None) -> Document:
    source = SourceFile(path=Path("d.txt"), rel_path="d.txt", doc_type="txt", size=len(text))
    return Document(source=source, doc_id="0" * 64, text=text, page_starts=page_starts)


def run(
    text: str, budget: int, overlap: int, counter: TokenCounter, pages: tuple[int, ...] | None
) -> tuple[Chunk, ...]:
    chunk_settings = ChunkSettings(chunk_tokens=budget, overlap_tokens=overlap)
    return chunk_document(make_doc(text, pages), chunk_settings, counter)


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, int, int, tuple[int, ...] | None]:
    text = draw(texts)
    budget = draw(budgets)
    overlap = draw(st.integers(min_value=0, max_value=(budget - 1) // 2))
    pages: tuple[int, ...] | None = None
    if text and draw(st.booleans()):
        cuts = draw(st.lists(st.integers(min_value=0, max_value=len(text)), max_size=6))
        pages = (0, *sorted(cuts))
    return text, budget, overlap, pages


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), counter=st.sampled_from([ESTIMATE, PER_CHAR]))
def test_chunks_cover_the_text_in_order_within_budget(
    case: tuple[str, int, int, tuple[int, ...] | None], counter: EstimateCounter
) -> None:
    text, budget, overlap, pages = case
    chunks = run(text, budget, overlap, counter, pages)
    if not text.strip():
        assert chunks == ()
        return
    covered = [False] * len(text)
    for chunk in chunks:
        assert chunk.count == len(chunks)
        assert chunk.text == text[chunk.char_start : chunk.char_end]
        # Trimmed: starts and ends on a non-space character.
        assert chunk.text
        assert not chunk.text[0].isspace()
        assert not chunk.text[-1].isspace()
        assert chunk.tokens == counter.count(chunk.text)
        assert chunk.tokens <= budget
        for i in range(chunk.char_start, chunk.char_end):
            covered[i] = True
        if pages is None:
            assert chunk.page_start is None
            assert chunk.page_end is None
        else:
            assert chunk.page_start == bisect_right(pages, chunk.char_start)
            assert chunk.page_end == bisect_right(pages, chunk.char_end - 1)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    # Every non-space character is in some chunk; what no chunk holds is whitespace.
    assert all(covered[i] or text[i].isspace() for i in range(len(text)))
    for before, after in itertools.pairwise(chunks):
        assert before.char_start < after.char_start
        assert before.char_end < after.char_end
        if overlap == 0:
            assert after.char_start >= before.char_end
        if after.char_start < before.char_end:
            # Overlap repeats whole sentences: it starts where the previous one ended.
            assert counter.count(text[after.char_start : before.char_end]) <= overlap
        else:
            assert not text[before.char_end : after.char_start].strip()
    # Never inside a surrogate pair or a CRLF.
    for chunk in chunks:
        for cut in (chunk.char_start, chunk.char_end):
            pair = text[cut - 1 : cut + 1] if 0 < cut < len(text) else ""
            assert pair != "\r\n"
            assert not (len(pair) == 2 and "\ud800" <= pair[0] <= "\udbff" <= pair[1])


@settings(max_examples=60, deadline=None)
@given(case=cases())
def test_output_is_deterministic(case: tuple[str, int, int, tuple[int, ...] | None]) -> None:
    text, budget, overlap, pages = case
    assert run(text, budget, overlap, ESTIMATE, pages) == run(
        text, budget, overlap, ESTIMATE, pages
    )


CJK_CHARS = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自可"
cjk_sentence = st.tuples(
    st.text(alphabet=CJK_CHARS + "，、：", min_size=1, max_size=40),
    st.sampled_from(["。", "！", "？", "。”", "？！", "）。"]),
).map("".join)
_SENTENCE = re.compile(r"[^。！？]+[。！？]+[”）]*")


@settings(max_examples=200, deadline=None)
@given(
    sentences=st.lists(cjk_sentence, min_size=1, max_size=40),
    budget=st.integers(min_value=16, max_value=80),
    overlap_share=st.floats(min_value=0, max_value=0.49),
    counter=st.sampled_from([ESTIMATE, PER_CHAR]),
)
def test_cjk_is_cut_at_sentence_ends_when_a_sentence_fits(
    sentences: list[str], budget: int, overlap_share: float, counter: EstimateCounter
) -> None:
    text = "".join(sentences)
    spans = [(m.start(), m.end()) for m in _SENTENCE.finditer(text)]
    assert spans[-1][1] == len(text)
    ends = {end for _, end in spans}
    starts = {start for start, _ in spans}
    chunks = run(text, budget, int(budget * overlap_share), counter, None)
    for before, after in itertools.pairwise(chunks):
        if after.char_start < before.char_end:  # an overlap starts on a sentence start
            assert after.char_start in starts
    for chunk in chunks:
        assert chunk.tokens <= budget
        if chunk.char_end in ends:
            continue
        # Cut inside a sentence: allowed only if that sentence alone exceeds the budget.
        start, end = next((s, e) for s, e in spans if s < chunk.char_end < e)
        assert counter.count(text[start:end]) > budget


@settings(max_examples=25, deadline=None)
@given(case=cases())
def test_exact_counter_chunks_are_within_budget(
    case: tuple[str, int, int, tuple[int, ...] | None],
) -> None:
    text, budget, overlap, pages = case
    counter = make_counter("exact")
    chunks = run(text, budget, overlap, counter, pages)
    assert all(c.tokens == counter.count(c.text) <= budget for c in chunks)
    assert all(
        text[i].isspace() or any(c.char_start <= i < c.char_end for c in chunks)
        for i in range(len(text))
    )


class InflatedCounter:
    """Five tokens more for any text than its length: chunks sized by adding up spans come out
    over budget once counted, and must be shrunk."""

    name = "inflated"

    def count(self, text: str) -> int:
        return len(text) + 5 if text else 0


@settings(max_examples=40, deadline=None)
@given(case=cases())
def test_chunks_counted_over_budget_are_shrunk(
    case: tuple[str, int, int, tuple[int, ...] | None],
) -> None:
    text, budget, overlap, pages = case
    counter = InflatedCounter()
    chunks = run(text, budget, overlap, counter, pages)
    assert all(c.tokens == counter.count(c.text) <= budget for c in chunks)
    held = {i for c in chunks for i in range(c.char_start, c.char_end)}
    assert all(text[i].isspace() or i in held for i in range(len(text)))
