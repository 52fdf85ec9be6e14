"""One manifest entry: a ``ChunkedDocument`` as compressed JSON of plain lists, and back.

JSON, never pickle: reading an entry can build nothing but strings, numbers and lists, and
every field is checked on the way back (a wrong type is a ``ValueError``, which the manifest
treats as a corrupt entry: the file is read again). orjson when installed (the ``fast``
extra); text holding lone surrogates, which orjson refuses, goes through the standard library.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from dscall import jsonio
from dscall.types import Chunk, ChunkedDocument, SourceFile

# First byte of an entry written by the standard library's json (text with lone surrogates,
# which orjson refuses); JSON itself never starts with it.
_SURROGATES = b"\x00"


def encode_document(document: ChunkedDocument) -> bytes:
    chunks = [
        [c.index, c.count, c.text, c.char_start, c.char_end, c.page_start, c.page_end, c.tokens,
         c.ocr]
        for c in document.chunks
    ]  # fmt: skip
    entry = [
        document.doc_id,
        document.page_count,
        document.char_count,
        list(document.no_text_pages),
        list(document.warnings),
        list(document.ocr_pages),
        chunks,
    ]
    try:
        data = jsonio.dumps(entry)
    except TypeError:  # orjson refuses lone surrogates; they round-trip as \uXXXX escapes
        data = _SURROGATES + json.dumps(entry, separators=(",", ":")).encode("ascii")
    return zlib.compress(data, 1)


def decode_document(source: SourceFile, blob: bytes) -> ChunkedDocument:
    """The remembered document of ``source``; ``ValueError`` for anything malformed."""
    try:
        data = zlib.decompress(blob)
        entry = json.loads(data[1:]) if data[:1] == _SURROGATES else jsonio.loads(data)
        doc_id, pages, chars, no_text, warnings, ocr_pages, rows = entry
        chunks = tuple([_chunk(*row) for row in rows])
        document = ChunkedDocument(
            source,
            _typed(doc_id, str),
            _typed(pages, int),
            _typed(chars, int),
            tuple([_typed(page, int) for page in no_text]),
            tuple([_typed(line, str) for line in warnings]),
            chunks,
            tuple([_typed(page, int) for page in ocr_pages]),
        )
    except (zlib.error, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc
    return document


def _chunk(
    index: Any,
    count: Any,
    text: Any,
    start: Any,
    end: Any,
    page_start: Any,
    page_end: Any,
    tokens: Any,
    ocr: Any,
) -> Chunk:
    """A stored chunk, its fields checked (a TypeError for the wrong number of them)."""
    # One expression, no calls: this runs once per chunk of every unchanged file.
    if not (
        type(index) is int
        and type(count) is int
        and type(text) is str
        and type(start) is int
        and type(end) is int
        and type(tokens) is int
        and type(ocr) is bool
        and (page_start is None or type(page_start) is int)
        and (page_end is None or type(page_end) is int)
    ):
        raise ValueError("a chunk field of the wrong type (int, str or bool expected)")
    return Chunk(index, count, text, start, end, page_start, page_end, tokens, ocr)


def _typed(value: Any, kind: type) -> Any:
    if type(value) is not kind:
        raise ValueError(f"{kind.__name__} expected, found {type(value).__name__}")
    return value
