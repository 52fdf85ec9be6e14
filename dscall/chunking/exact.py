"""The exact DeepSeek tokenizer, loaded once per process, with a faster road for plain text.

Most of the tokenizer's time goes to its pre-tokenizer (three regex splits, about 2 M
characters/s), not to BPE: 0.4 ms for a page of English. For ASCII text without control
characters and without any of the tokenizer's added tokens (all of which contain ``<``), the
same split is one Python regex (``_ASCII_WORDS``: the tokenizer's patterns read for ASCII, with
its digit split folded in), and each pre-token ("word") is BPE-encoded once per process and
remembered, since a word's tokens never depend on its neighbours. Any other text takes the
tokenizer's own road. The two roads agree token for token, offsets included
(tests/unit/test_tokenizer.py checks them against each other on generated text), and the fast
road checks that its words cover the text before it trusts them.

Long texts on the tokenizer's road are encoded in pieces, as ``exact_counter.py`` describes.
"""

from __future__ import annotations

import contextlib
import functools
import re
import string
import threading
from array import array
from bisect import bisect_right
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers import Tokenizer

_PUNCT = re.escape(string.punctuation)  # all of it is \p{P} or \p{S}
# \s as the tokenizer's regex engine reads it in ASCII (Python's \s also takes \x1c-\x1f).
_WS = "\\t\\n\\x0b\\x0c\\r "
# The tokenizer's pre-tokenizer is three splits in a row: digits in groups of up to three, CJK
# runs, then the word pattern below on each piece. For ASCII text the CJK split does nothing,
# and the digit split is folded in as the first alternative: its pieces end before a digit, so
# ``\s+(?!\S)`` also stops before one.
_ASCII_WORDS = re.compile(
    rf"[0-9]{{1,3}}|[{_PUNCT}][A-Za-z]+|[^\r\nA-Za-z0-9{_PUNCT}]?[A-Za-z]+"
    rf"| ?[{_PUNCT}]+[\r\n]*|[{_WS}]*[\r\n]+|[{_WS}]+(?![^{_WS}0-9])|[{_WS}]+"
)
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
# Words remembered per process; past this many the memory is dropped and refilled.
_MAX_WORDS = 100_000


class Exact:
    """The DeepSeek tokenizer of one ``tokenizer.json``: counts and token start offsets."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        from tokenizers import pre_tokenizers

        self.tokenizer = tokenizer
        # Only an ASCII added token can occur in the fast road's (ASCII) text, and the fast
        # road needs each of them to hold a "<" (true of DeepSeek's): then a text without one
        # holds none.
        added = [token.content for token in tokenizer.get_added_tokens_decoder().values()]
        added = [content for content in added if content.isascii()]
        self._fast = all("<" in content for content in added)
        self._added = re.compile("|".join(map(re.escape, added))) if added else None
        # BPE alone over words separated by NUL (which no fast-road text holds): the same
        # model, so no second load.
        from tokenizers import Tokenizer as _Tokenizer

        self._bare = _Tokenizer(tokenizer.model)
        self._bare.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split("\x00", "removed"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        # word -> start offsets of its tokens within it
        self._words: dict[str, tuple[int, ...]] = {}

    def words(self, text: str) -> list[str] | None:
        """The pre-tokens of ``text`` when it can take the fast road, else None."""
        if not self._fast or not text.isascii() or _CONTROL.search(text):
            return None
        if "<" in text and self._added is not None and self._added.search(text):
            return None
        words: list[str] = _ASCII_WORDS.findall(text)
        if sum(map(len, words)) != len(text):  # a character no pattern takes: not trusted
            return None
        return words

    def _learn(self, words: Iterable[str]) -> None:
        known = self._words
        new = [word for word in set(words) if word not in known]
        if not new:
            return
        if len(known) + len(new) > _MAX_WORDS:
            known.clear()
            new = list(set(words))
        encoding = self._bare.encode("\x00".join(new), add_special_tokens=False)
        bounds = []
        pos = 0
        for word in new:
            bounds.append(pos)
            pos += len(word) + 1
        starts: list[list[int]] = [[] for _ in new]
        for start, _ in encoding.offsets:
            i = bisect_right(bounds, start) - 1
            starts[i].append(start - bounds[i])
        for word, offsets in zip(new, starts, strict=True):
            known[word] = tuple(offsets)

    def count_words(self, words: list[str]) -> int:
        """The tokens of ``words`` (from ``words()``)."""
        try:
            return sum(map(len, map(self._words.__getitem__, words)))
        except KeyError:  # a word not met before: encode the new ones, then count
            self._learn(words)
            return sum(map(len, map(self._words.__getitem__, words)))

    def word_starts(self, words: list[str], base: int, out: array[int]) -> None:
        """Append the start offsets of the tokens of ``words`` (from ``words()``, beginning at
        ``base``)."""
        self._learn(words)
        known = self._words
        pos = base
        for word in words:
            offsets = known[word]
            if len(offsets) == 1:
                out.append(pos)
            else:
                out.extend([pos + offset for offset in offsets])
            pos += len(word)


_lock = threading.Lock()


@functools.lru_cache(maxsize=2)
def _load(path: str) -> Exact:
    from tokenizers import Tokenizer

    return Exact(Tokenizer.from_file(path))


def load(path: str) -> Exact:
    """The tokenizer at ``path``, loaded once per process (raises what ``Tokenizer`` raises)."""
    with _lock:  # a load started by ``preload`` is waited for, not repeated
        return _load(path)


def preload(path: str) -> None:
    """Start loading the tokenizer in a thread, so that it overlaps with other start-up work."""

    def run() -> None:
        # A failure is reported by the first real use, which loads again.
        with contextlib.suppress(Exception):
            load(path)

    threading.Thread(target=run, name="dscall-tokenizer-load", daemon=True).start()
