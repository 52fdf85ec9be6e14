"""The exact tokenizer's fast road against its own: same tokens, same offsets; and the counts
the chunker derives from one pass over a text against counting each span anew."""

from __future__ import annotations

import string
from array import array

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dscall.chunking import exact as tokenizer
from dscall.chunking import exact_counter
from dscall.chunking.exact_counter import ExactCounter
from dscall.chunking.tokens import make_counter, single_chunk_tokens, span_meter

ASCII_PIECES = [
    "the", " cat", "Word", "  ", "   ", "\n", "\n\n", "\r\n", "\t", "\x0b", "\x0c", "...", ". ",
    ".\n", "?!\n\n", "12345", "7", " -", "'s", "a.b", " x", "'re", "--", "(a)", "$5", "<b>",
    "<think>", "a<b", "\x00", "\x1c", "\x7f",
]  # fmt: skip
ascii_texts = st.lists(
    st.one_of(st.sampled_from(ASCII_PIECES), st.sampled_from(string.printable)), max_size=80
).map("".join)
any_texts = st.lists(
    st.one_of(
        st.sampled_from(ASCII_PIECES),
        st.sampled_from(["中文", "。", "，", "é", "e\u0301", "😀", "\u3000", "\ud83d"]),
    ),
    max_size=60,
).map("".join)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def counter() -> ExactCounter:
    exact = make_counter("exact")
    assert isinstance(exact, ExactCounter)
    return exact


@SETTINGS
@given(text=ascii_texts)
def test_the_fast_road_gives_the_tokenizers_own_tokens(text: str) -> None:
    exact = exact_counter._load_exact(counter().path)
    reference = exact.tokenizer.encode(text, add_special_tokens=False)
    words = exact.words(text)
    if words is None:  # control characters or an added token: the tokenizer's road
        return
    starts: array[int] = array("q")
    exact.word_starts(words, 0, starts)
    assert exact.count_words(words) == len(reference.ids)
    assert list(starts) == [start for start, _ in reference.offsets]


def test_the_fast_road_is_taken_for_plain_text_only() -> None:
    exact = exact_counter._load_exact(counter().path)
    assert exact.words("Hello world. 12345 times.\n") is not None
    assert exact.words("say <think> now") is None  # an added token
    assert exact.words("a\x00b") is None
    assert exact.words("中文") is None


def test_the_word_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    exact = exact_counter._load_exact(counter().path)
    monkeypatch.setattr(tokenizer, "_MAX_WORDS", 3)
    text = "alpha beta gamma delta. Epsilon zeta eta theta, iota 123."
    for sample in (text, text + " kappa lambda", text):
        reference = len(exact.tokenizer.encode(sample, add_special_tokens=False).ids)
        assert counter().count(sample) == reference
    assert len(exact._words) <= 20


@SETTINGS
@given(text=any_texts, data=st.data())
def test_span_counts_from_one_pass_equal_counting_the_span(text: str, data: st.DataObject) -> None:
    exact = counter()
    meter = span_meter(exact, text)
    start = data.draw(st.integers(min_value=0, max_value=len(text)))
    end = data.draw(st.integers(min_value=start, max_value=len(text)))
    assert meter.count(start, end) == exact.count(text[start:end])


@SETTINGS
@given(text=any_texts, budget=st.integers(min_value=1, max_value=40))
def test_one_chunk_is_decided_as_the_meter_would(text: str, budget: int) -> None:
    exact = counter()
    body = text.strip()
    if not body:
        return
    start = len(text) - len(text.lstrip())
    end = start + len(body)
    tokens_found = single_chunk_tokens(exact, text, start, end, budget)
    meter = span_meter(exact, text)
    honest = exact.count(body)
    fits = honest <= budget and meter.prefix(end) - meter.prefix(start) <= budget
    if tokens_found is not None:
        assert fits
        assert tokens_found == honest
