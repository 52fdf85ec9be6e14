"""Deterministic synthetic documents for the benchmarks (no randomness between runs)."""

from __future__ import annotations

from pathlib import Path

_WORDS = (
    "revenue growth quarter market customer product margin region forecast policy report "
    "analysis supply demand price cost risk model data result table figure section summary"
).split()


def document_text(index: int, words: int = 120) -> str:
    """About ``words`` words of English prose, different for every index."""
    out = []
    for i in range(words):
        out.append(_WORDS[(index * 7 + i * 13 + (i // 5)) % len(_WORDS)])
        if i % 12 == 11:
            out[-1] += "."
    return f"Document {index}. " + " ".join(out) + "."


def write_text_corpus(folder: Path, count: int, words: int = 120) -> Path:
    """``count`` one-chunk .txt documents under ``folder`` (created), named in sorted order."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        (folder / f"doc_{index:06d}.txt").write_text(document_text(index, words), encoding="utf-8")
    return folder
