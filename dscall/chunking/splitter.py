"""Document -> chunks under a token budget, with overlap and provenance.

How a chunk ends. The text is read once into sentences (paragraph ends are sentence ends of
the strongest kind). A chunk takes whole sentences while they fit, and then ends at the
strongest boundary it holds, from paragraph down to sentence, line, clause and whitespace,
provided the chunk is at least ``CHUNK_MIN_FILL`` full there; otherwise at the strongest
boundary present. A sentence that fits within the budget on its own is never cut (unless an
exact count finds a one-sentence chunk over budget and it must shrink). Only a
sentence larger than the budget is cut inside, at lines, then clause punctuation, then
whitespace, and only a run with none of these gets a hard cut, which never splits a CRLF or a
surrogate pair and steps back so as not to split a character from its combining marks
(``graphemes``).

Boundaries, as the spec names them:
- paragraph: a blank line (two newlines with only spaces between);
- sentence: ``.!?`` followed by whitespace, ``。！？｡`` anywhere, each with any closing quotes or
  brackets right after them kept on the left;
- line: a single newline. Pages are joined with one, so a page break is a line break. It ranks
  above clause punctuation because in Word and text files a line is a table row, a list item
  or a heading; in PDFs line wraps fall inside sentences, where sentence ends come first anyway;
- clause: ``；，、：`` anywhere, ``;,:`` followed by whitespace (so 3,000 and 12:30 stay whole);
- whitespace, then the hard cut.

Whitespace is trimmed: a chunk starts and ends on a non-space character, ``text`` is exactly
``doc.text[char_start:char_end]``, and what lies between two chunks that do not overlap is
whitespace only. Overlap repeats whole trailing sentences of the previous chunk, as many as fit
in ``overlap_tokens`` (none when the last sentence alone is larger), and shrinks when the next
sentence would not fit after it. The budget includes the overlap.

A text too long to hold is chunked window by window with the same rules: ``chunk_windows``.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_right

from dscall.chunking.graphemes import hard_cut
from dscall.chunking.tokens import SpanMeter, TokenCounter, single_chunk_tokens, span_meter
from dscall.config import CHUNK_MIN_FILL, MIN_CHUNK_TOKENS, ChunkSettings
from dscall.errors import UsageError
from dscall.types import Chunk, Document

PARAGRAPH, SENTENCE, LINE, CLAUSE, SPACE = 5, 4, 3, 2, 1

_CLOSE = "[)\\]}\"'”’»›」』）】〕〉》〗〙〛｣＂＇]*"
# One pass over the text finds paragraph breaks and sentence ends (with the whitespace after).
# It opens with a plain character class, which lets the regex engine skip ahead quickly; the
# lookbehinds then tell which kind of break the class matched.
_BREAKS = re.compile(
    r"[\n.!?。！？｡](?:(?<=\n)[^\S\n]*\n\s*|(?:"
    rf"(?<=[.!?])[.!?]*{_CLOSE}(?=\s)|(?<=[。！？｡])[。！？｡]*{_CLOSE})(\s*))"
)
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")
_LINE = re.compile(r"[^\S\n]*\n\s*")
_CLAUSE = re.compile(rf"[；，、：]+{_CLOSE}|[;,:]+{_CLOSE}(?=\s)")
_SPACE = re.compile(r"\s+")
_NON_SPACE = re.compile(r"\S")
# The last line, clause or space before a cut is looked for in a window this wide, widened
# fourfold until found: a chunk costs its own length, however many spaces it holds.
_LOOK_BACK = 64


def validate_chunk_settings(settings: ChunkSettings) -> None:
    """Raise UsageError unless the budget and overlap make sense together."""
    if settings.chunk_tokens < MIN_CHUNK_TOKENS:
        raise UsageError(
            f"--chunk-tokens must be at least {MIN_CHUNK_TOKENS} (got {settings.chunk_tokens})"
        )
    if not 0 <= settings.overlap_tokens * 2 < settings.chunk_tokens:
        raise UsageError(
            f"--overlap-tokens must be at least 0 and less than half of --chunk-tokens "
            f"(got {settings.overlap_tokens} with --chunk-tokens {settings.chunk_tokens})"
        )


def chunk_document(
    doc: Document, settings: ChunkSettings, counter: TokenCounter
) -> tuple[Chunk, ...]:
    """Split ``doc.text`` into chunks of at most ``settings.chunk_tokens`` tokens."""
    spans = split_text(doc.text, settings, counter)
    pages = doc.page_starts
    ocr_pages = doc.ocr_pages
    return tuple(
        Chunk(
            index=index,
            count=len(spans),
            text=doc.text[start:end],
            char_start=start,
            char_end=end,
            page_start=None if pages is None else max(1, bisect_right(pages, start)),
            page_end=None if pages is None else max(1, bisect_right(pages, end - 1)),
            tokens=tokens,
            ocr=bool(ocr_pages) and _any_ocr_page(ocr_pages, pages, start, end),
        )
        for index, (start, end, tokens) in enumerate(spans)
    )


def _any_ocr_page(
    ocr_pages: tuple[int, ...], starts: tuple[int, ...] | None, start: int, end: int
) -> bool:
    if starts is None:
        return False
    first, last = max(1, bisect_right(starts, start)), max(1, bisect_right(starts, end - 1))
    return any(first <= page <= last for page in ocr_pages)


def split_text(
    text: str, settings: ChunkSettings, counter: TokenCounter
) -> list[tuple[int, int, int]]:
    """The chunks of ``text`` as ``(char_start, char_end, tokens)``."""
    validate_chunk_settings(settings)
    first = _NON_SPACE.search(text)
    if first is None:
        return []
    # Most texts fit in one chunk: then one count decides, without the sentences or a meter.
    start, end = first.start(), len(text.rstrip())
    tokens = single_chunk_tokens(counter, text, start, end, settings.chunk_tokens)
    if tokens is not None:
        return [(start, end, tokens)]
    return Splitter(text, settings, counter).run()


class Splitter:
    """Chunks one text. With ``final=False`` the text is a window of a longer document, and
    ``truncated`` says its last sentence may go on past the window's end (the window was not
    cut at a paragraph break); see ``walk``. Used here and by ``chunk_windows``."""

    def __init__(
        self,
        text: str,
        settings: ChunkSettings,
        counter: TokenCounter,
        *,
        final: bool = True,
        truncated: bool = False,
    ) -> None:
        self.text = text
        self.final = final
        self.truncated = truncated and not final
        self.open = False  # the last chunk chosen depended on where the window ends
        self.budget = settings.chunk_tokens
        self.counter = counter
        self.meter: SpanMeter = span_meter(counter, text)
        self.limit = self.meter.limit(settings.chunk_tokens)
        self.overlap_limit = self.meter.limit(settings.overlap_tokens)
        # The sentences: where each starts and ends, the boundary after it, and the index of
        # the latest sentence up to it that ends a paragraph (-1 if none).
        # Arrays, not lists: a text of short sentences holds millions of them.
        self.starts = array("q")
        self.ends = array("q")
        self.levels = array("b")
        self.last_para = array("q")
        self._read_sentences()
        # Measured once; a span of sentences then costs one subtraction.
        prefix = self.meter.prefix
        self.start_at = array("q", map(prefix, self.starts))
        self.end_at = array("q", map(prefix, self.ends))

    def _read_sentences(self) -> None:
        text = self.text
        starts, ends, levels, last_para = self.starts, self.ends, self.levels, self.last_para
        start = self._skip_space(0)
        para = -1
        for match in _BREAKS.finditer(text):
            end, stop = match.span(1)
            level = SENTENCE
            if end < 0:  # a blank line; trailing spaces (or the \r of a CRLF) stay out
                end, level = match.start(), PARAGRAPH
                while end > start and text[end - 1].isspace():
                    end -= 1
            elif stop - end > 1 and _BLANK_LINE.search(text, end, stop):
                level = PARAGRAPH
            if end > start:
                if level == PARAGRAPH:
                    para = len(ends)
                starts.append(start)
                ends.append(end)
                levels.append(level)
                last_para.append(para)
            start = match.end()
        last = len(text.rstrip())
        if last > start:
            starts.append(start)
            ends.append(last)
            levels.append(PARAGRAPH)
            last_para.append(len(ends) - 1)
        elif ends:
            levels[-1] = PARAGRAPH
            last_para[-1] = len(ends) - 1

    def run(self) -> list[tuple[int, int, int]]:
        if not self.starts:
            return []
        spans, _ = self.walk(self.starts[0], self.starts[0])
        return spans

    def walk(self, start: int, floor: int) -> tuple[list[tuple[int, int, int]], tuple[int, int]]:
        """The chunks from ``start`` (``floor``: the chunk must end after it, the previous
        chunk's end) up to the end of the text, or, in a window that is not final, up to the
        first chunk whose choice would change if the window went on: then also the
        ``(start, floor)`` to resume from in the next window."""
        spans: list[tuple[int, int, int]] = []
        text_end = self.ends[-1]
        while True:
            end, tokens = self._honest_chunk(start, floor)
            if not self.final and (self.open or self._next_depends_on_tail(end)):
                return spans, (start, floor)
            spans.append((start, end, tokens))
            if end >= text_end:
                return spans, (self._skip_space(end), end)
            resume = self._skip_space(end)
            start = self._overlap_start(spans[-1][0], end, resume)
            floor = max(start, end)

    def _next_depends_on_tail(self, end: int) -> bool:
        """Whether the overlap after a chunk ending at ``end`` would be sized against the
        window's truncated last sentence (which may be longer in the document)."""
        if not self.truncated:
            return False
        last = len(self.starts) - 1
        return self._skip_space(end) >= self.starts[last] and (
            self.end_at[last] - self.start_at[last] <= self.limit
        )

    def _honest_chunk(self, start: int, floor: int) -> tuple[int, int]:
        """Choose the end; with an inexact meter, count the chunk and shrink it if over."""
        limit = self.limit
        self.open = False
        end = self._choose_end(start, floor, limit)
        meter = self.meter
        if meter.exact_sums:
            return end, meter.tokens(meter.prefix(end) - meter.prefix(start))
        tokens = meter.count(start, end)
        # Each shrink depends on the count before it: the window's end mattered if it
        # mattered to any of them (self.open only ever turns True here).
        while tokens > self.budget and limit > 1:
            limit = max(1, limit - (tokens - self.budget))
            end = self._choose_end(start, floor, limit)
            tokens = meter.count(start, end)
        return end, tokens

    def _choose_end(self, start: int, floor: int, limit: int) -> int:
        starts, ends, levels = self.starts, self.ends, self.levels
        base = self.meter.prefix(start)
        top = base + limit  # a position fits when its prefix is at most this
        k = bisect_right(starts, start) - 1  # the sentence holding ``start``
        j = bisect_right(self.end_at, top, k)  # sentences k..j-1 fit, sentence j does not
        if j == len(ends):
            self.open = True
            return ends[-1]
        latest: dict[int, int] = {}  # level -> the latest boundary of that level that fits
        if j > k and ends[j - 1] > floor:
            latest[levels[j - 1]] = ends[j - 1]
            para = self.last_para[j - 1]
            if para >= k and ends[para] > floor:
                latest[PARAGRAPH] = ends[para]
        # Cut inside sentence j only if it would not fit in a chunk of its own.
        inner_from = max(start, starts[j])
        oversized = inner_from > starts[j] or self.end_at[j] - self.start_at[j] > limit
        if self.truncated and j == len(ends) - 1 and not oversized:
            self.open = True  # the whole sentence may not fit, though its start here does
        fit = inner_from
        if oversized or not latest:
            fit = self._fit_end(top, inner_from, ends[j])
        if oversized:
            latest.update(self._inner_boundaries(max(inner_from, floor), fit))
        chosen = self._select(latest, base, limit)
        # Without a boundary the sentence is one unbroken run, or (after an exact count lowered
        # the limit) the overlap leaves no room for it: cut inside it.
        return chosen if chosen is not None else hard_cut(self.text, max(start, floor), fit)

    def _select(self, latest: dict[int, int], base: int, limit: int) -> int | None:
        """The latest boundary of the strongest level that leaves the chunk full enough, else
        the latest of the strongest level there is."""
        if not latest:
            return None
        enough = base + CHUNK_MIN_FILL * limit
        best = -1
        for level in (PARAGRAPH, SENTENCE, LINE, CLAUSE, SPACE):
            best = max(best, latest.get(level, -1))  # this level or a stronger one
            if best >= 0 and self.meter.prefix(best) >= enough:
                return best
        return latest[max(latest)]

    def _inner_boundaries(self, lo: int, hi: int) -> dict[int, int]:
        """The latest line, clause and whitespace boundary in (lo, hi], by level."""
        found: dict[int, int] = {}
        for pattern, level, at_end in (
            (_LINE, LINE, False),
            (_CLAUSE, CLAUSE, True),
            (_SPACE, SPACE, False),
        ):
            pos = self._last_match(pattern, at_end, lo, hi)
            if pos is not None:
                found[level] = pos
        return found

    def _last_match(self, pattern: re.Pattern[str], at_end: bool, lo: int, hi: int) -> int | None:
        text = self.text
        stop = min(hi + 1, len(text))  # one more character, for the lookaheads
        width = _LOOK_BACK
        while True:
            begin = max(lo, hi - width)
            best = None
            for match in pattern.finditer(text, begin, stop):
                pos = match.end() if at_end else match.start()
                # A match cut short by the window's left edge starts after a space: skipped.
                if lo < pos <= hi and not text[pos - 1].isspace():
                    best = pos
            if best is not None or begin == lo:
                return best
            width *= 4

    def _fit_end(self, top: int, lo: int, hi: int) -> int:
        """The largest position p in [lo, hi] with prefix(p) <= top (or lo)."""
        prefix = self.meter.prefix
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if prefix(mid) <= top:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _overlap_start(self, prev_start: int, end: int, resume: int) -> int:
        """Where the next chunk starts: at the earliest trailing sentence of the last chunk
        that fits in the overlap budget and leaves room for the next sentence, else at
        ``resume``."""
        if self.overlap_limit <= 0:
            return resume
        starts, start_at, end_at = self.starts, self.start_at, self.end_at
        end_prefix = self.meter.prefix(end)
        nxt = bisect_right(starts, resume) - 1
        # The next sentence must fit after the overlap, unless it is cut up anyway.
        need = end_at[nxt] if end_at[nxt] - start_at[nxt] <= self.limit else None
        best = resume
        k = bisect_right(starts, end - 1) - 1
        while k >= 0 and starts[k] > prev_start:
            if end_prefix - start_at[k] > self.overlap_limit:
                break
            if need is not None and need - start_at[k] > self.limit:
                break
            best = starts[k]
            k -= 1
        return best

    def _skip_space(self, pos: int) -> int:
        match = _NON_SPACE.search(self.text, pos)
        return match.start() if match else len(self.text)
