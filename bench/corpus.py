"""Deterministic synthetic documents for the benchmarks (no randomness between runs).

Text corpora live in one tree under bench/.work/text/ (gitignored): part-000, part-001, ...
with ``PART_SIZE`` one-chunk documents each, so that a 500-document run, a 5,000-document run
and the 100,000-document scale run all read prefixes of the same tree, and the files are
written once and reused by later runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

_VOCABULARY = (
    "revenue growth quarter market customer product margin region forecast policy report "
    "analysis supply demand price cost risk model data result table figure section summary"
)
_WORDS = _VOCABULARY.split()

PART_SIZE = 500
_DONE = ".complete"


def document_text(index: int, words: int = 120) -> str:
    """About ``words`` words of English prose, different for every index."""
    out = []
    for i in range(words):
        out.append(_WORDS[(index * 7 + i * 13 + (i // 5)) % len(_WORDS)])
        if i % 12 == 11:
            out[-1] += "."
    return f"Document {index}. " + " ".join(out) + "."


def write_text_corpus(folder: Path, count: int, words: int = 120, start: int = 0) -> Path:
    """``count`` one-chunk .txt documents under ``folder`` (created), named in sorted order."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(start, start + count):
        (folder / f"doc_{index:06d}.txt").write_text(document_text(index, words), encoding="utf-8")
    return folder


def text_parts(root: Path, count: int) -> list[Path]:
    """The part folders under ``root`` holding documents 0..count-1 (written if missing).

    ``count`` must be a multiple of ``PART_SIZE``; document ``i`` has ``document_text(i)``.
    """
    return _parts(
        root, count, lambda folder, start: write_text_corpus(folder, PART_SIZE, start=start)
    )


def sentence_text(index: int, sentences: int) -> str:
    """``sentences`` sentences of one document, every one different (from each other and from
    every other document's) and all of the same length, so that a budget of N sentences' tokens
    cuts every document into the same number of chunks.

    Different: dscall answers identical requests of one run once, and a benchmark of calls must
    not be a benchmark of that. Same length: each sentence is a fixed-width label and a rotation
    of the same twelve words.
    """
    words = _WORDS[:12]
    lines = []
    for k in range(sentences):
        shift = (index * 5 + k) % len(words)
        rotated = words[shift:] + words[:shift]
        lines.append(f"Record {index:07d} line {k:04d}: " + " ".join(rotated) + ".")
    return " ".join(lines) + "\n"


def sentence_parts(root: Path, count: int, sentences: int) -> list[Path]:
    """Like ``text_parts``, with ``sentence_text(i, sentences)`` for document ``i`` (use one
    ``root`` per ``sentences``)."""

    def write(folder: Path, start: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(start, start + PART_SIZE):
            text = sentence_text(index, sentences)
            (folder / f"doc_{index:07d}.txt").write_text(text, encoding="utf-8")

    return _parts(root, count, write)


def _parts(root: Path, count: int, write: Callable[[Path, int], object]) -> list[Path]:
    if count % PART_SIZE:
        raise ValueError(f"corpus sizes are multiples of {PART_SIZE}, not {count}")
    parts = []
    for part in range(count // PART_SIZE):
        folder = root / f"part-{part:03d}"
        if not (folder / _DONE).exists():
            write(folder, part * PART_SIZE)
            (folder / _DONE).touch()  # hidden: dscall skips it
        parts.append(folder)
    return parts


_PAGE_TEXT = (
    "Shipments through the northern corridor rose again in week {n}, helped by shorter customs "
    "checks and a second daily train between the two inland terminals. Costs per container fell "
    "by {p} percent, while on-time delivery reached its best level of the year. The operators "
    "expect volumes to keep growing through the next quarter, although a planned maintenance "
    "closure of the river crossing will slow traffic for about ten days. Customers were told "
    "to book early and to expect short delays on the eastern routes during that period."
)


def write_report_pdf(path: Path, pages: int = 100, paragraphs: int = 4) -> Path:
    """A ``pages``-page English report with a text layer (reportlab, deterministic)."""
    if path.exists():
        return path
    from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
    from reportlab.lib.styles import getSampleStyleSheet  # type: ignore[import-untyped]
    from reportlab.platypus import (  # type: ignore[import-untyped]
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
    )

    styles = getSampleStyleSheet()
    story: list[object] = []
    for number in range(1, pages + 1):
        story.append(Paragraph(f"Section {number}: corridor report", styles["Heading2"]))
        for k in range(paragraphs):
            text = _PAGE_TEXT.format(n=number, p=(number * 7 + k) % 9 + 1)
            story.append(Paragraph(text, styles["BodyText"]))
        story.append(PageBreak())
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    SimpleDocTemplate(str(temp), pagesize=A4, invariant=1).build(story)
    temp.replace(path)
    return path
