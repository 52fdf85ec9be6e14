"""Chunks of a text too long to hold, window by window (``split_stream``).

A window is cut at its last paragraph break (else between whitespace and a word, else
anywhere) and chunked with ``chunking.Splitter``; the chunk that runs into the cut, and any
chunk whose choice the cut could change (``Splitter.walk`` knows which), is left for the next
window, which starts where that chunk starts. So the chunks do not depend on where windows
fall: with the rule of thumb they are exactly those ``split_text`` gives for the whole text
(the tests check this over generated texts), and with the exact tokenizer they may differ
only by where a token near a window edge is attributed, within budget and stable from run to
run. Memory follows the window, which grows only while one chunk reaches past all of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from dscall.chunking.splitter import Splitter, validate_chunk_settings
from dscall.chunking.tokens import TokenCounter
from dscall.config import STREAM_WINDOW_CHARS, ChunkSettings

# Where a window may end: after a blank line (and the whitespace after it), else between
# whitespace and a word.
_PARAGRAPH_CUT = re.compile(r"\n[^\S\n]*\n\s*")
_SPACE_CUT = re.compile(r"\s+")
# The last cut is looked for in a tail this wide, widened fourfold until one is found.
_CUT_LOOK_BACK = 4096


def split_stream(
    pieces: Iterable[str],
    settings: ChunkSettings,
    counter: TokenCounter,
    *,
    window_chars: int = STREAM_WINDOW_CHARS,
    on_window: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, int, int]]:
    """The chunks, as ``(char_start, char_end, tokens)``, of the text that ``pieces`` make
    up, read in windows of about ``window_chars`` characters. ``on_window`` gets the number of
    characters read so far after each window."""
    validate_chunk_settings(settings)
    source = iter(pieces)
    buffer = ""  # the text from offset ``base`` of the document on, not yet chunked
    base = 0
    state: tuple[int, int] | None = None  # (start, floor) of the next chunk, in the buffer
    want = window_chars
    exhausted = False
    while True:
        if not exhausted and len(buffer) < want:
            more = [buffer]
            size = len(buffer)
            for piece in source:
                more.append(piece)
                size += len(piece)
                if size >= want:
                    break
            else:
                exhausted = True
            buffer = "".join(more)
            del more
        if exhausted:
            splitter = Splitter(buffer, settings, counter)
            if splitter.starts:
                first = splitter.starts[0]
                spans, _ = splitter.walk(*(state or (first, first)))
                for start, end, tokens in spans:
                    yield base + start, base + end, tokens
            if on_window is not None:
                on_window(base + len(buffer))
            return
        lowest = state[0] + 1 if state is not None else 0
        cut, truncated = _window_cut(buffer, max(lowest, len(buffer) // 2))
        splitter = Splitter(buffer[:cut], settings, counter, final=False, truncated=truncated)
        if state is None and not splitter.starts:
            # Only whitespace so far: nothing to chunk, nothing to keep.
            buffer, base = buffer[cut:], base + cut
            continue
        if state is None:
            state = (splitter.starts[0], splitter.starts[0])
        spans, state = splitter.walk(*state)
        del splitter
        for start, end, tokens in spans:
            yield base + start, base + end, tokens
        if on_window is not None:
            on_window(base + cut)
        if not spans:
            want *= 2  # one chunk reaches past the whole window: read on until it ends
            continue
        want = window_chars
        keep = state[0]
        buffer, base = buffer[keep:], base + keep
        state = (0, state[1] - keep)


def _window_cut(buffer: str, lowest: int) -> tuple[int, bool]:
    """Where to end a window of ``buffer`` (at or after ``lowest``), and whether the cut may
    fall inside a sentence."""
    # Searched only up to the last word: then every whitespace run met is followed by one,
    # and each pattern matches a run at its first try (past trailing whitespace, a run of
    # a million spaces would be re-scanned from each of its newlines).
    stop = len(buffer.rstrip())
    for pattern, truncated in ((_PARAGRAPH_CUT, False), (_SPACE_CUT, True)):
        cut = _last_end(pattern, buffer, lowest, stop)
        if cut is not None:
            return cut, truncated
    return len(buffer), True


def _last_end(pattern: re.Pattern[str], text: str, lo: int, hi: int) -> int | None:
    """The end of the last match of ``pattern`` in ``text[lo:hi]``, looked for in a tail of the
    range that widens fourfold until one is found."""
    width = _CUT_LOOK_BACK
    while True:
        begin = max(lo, hi - width)
        last = None
        for match in pattern.finditer(text, begin, hi):
            last = match.end()
        if last is not None or begin == lo:
            return last
        width *= 4
