"""Token counting: the exact DeepSeek tokenizer when installed, else the rule of thumb.

(Interface fixed by the foundation; the chunking work replaces the bodies, keeping signatures.)
"""

from __future__ import annotations

import re
from typing import Protocol

from dscall.config import CJK_TOKENS_PER_CHAR, LATIN_TOKENS_PER_CHAR, TokenizerChoice

# CJK ideographs, kana, hangul, and full-width punctuation/forms.
_CJK = re.compile(
    r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef]"
)


def estimate_tokens(text: str, margin: float = 1.0) -> int:
    """DeepSeek's rule of thumb (0.3 token per Latin character, 0.6 per CJK character),
    multiplied by ``margin`` and rounded up. Shared with the simulator."""
    cjk = len(_CJK.findall(text))
    raw = (len(text) - cjk) * LATIN_TOKENS_PER_CHAR + cjk * CJK_TOKENS_PER_CHAR
    return int(-(-raw * margin // 1))


class TokenCounter(Protocol):
    """Counts tokens in text. ``name`` says which method ("exact" or "estimate")."""

    name: str

    def count(self, text: str) -> int: ...


def make_counter(choice: TokenizerChoice = "auto") -> TokenCounter:
    """The counter for ``choice``: "auto" picks the exact tokenizer when it is installed."""
    raise NotImplementedError
