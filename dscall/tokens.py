"""Token counting: the exact DeepSeek tokenizer when installed, else the rule of thumb.

(Interface fixed by the foundation; implementation pending.)
"""

from __future__ import annotations

from typing import Protocol

from dscall.config import TokenizerChoice


class TokenCounter(Protocol):
    """Counts tokens in text. ``name`` says which method ("exact" or "estimate")."""

    name: str

    def count(self, text: str) -> int: ...


def make_counter(choice: TokenizerChoice = "auto") -> TokenCounter:
    """The counter for ``choice``: "auto" picks the exact tokenizer when it is installed."""
    raise NotImplementedError
