"""Text files too large to hold whole: chunked in windows by a worker, read again on demand.

A 200 MB text file held whole costs several times its size at once: the bytes, the decoded
string (up to four bytes a character), the sentence and token tables, the chunk texts, and
their pickle on both sides of the worker's pipe. From ``config.STREAM_TEXT_MIN_BYTES`` on, a
.txt/.md file goes another way, and memory follows ``STREAM_WINDOW_CHARS``, not the file:

1. ``scan_text_file`` (worker) reads the file once, block by block: its sha256 (the doc_id),
   a CRC of every block, and what ``text.EncodingSniffer`` needs to pick the encoding exactly
   as for a small file (a rare encoding costs one more read to be confirmed).
2. ``chunk_text_file`` (worker) reads it again, decodes and normalises it block by block and
   chunks it in windows (``chunk_windows.split_stream``), keeping only each chunk's
   ``(char_start, char_end, tokens)``: 24 bytes a chunk.
3. The ``ChunkedDocument`` that goes back to dscall carries a ``StreamedChunks``: a sequence
   of known length (so ``chunk_count`` is right on every row from the first) whose iteration
   reads and decodes the file a third time, in dscall's process, slicing each chunk's text
   out of a rolling buffer of about one block.

Every read checks each block against its CRC (and the file against its size): a file changed
between the reads raises ``UnreadableFile`` instead of yielding text that does not belong to
the doc_id. In the worker that fails the document; while dscall iterates the chunks it is
raised from the iteration, after the chunks already yielded (which were checked).
"""

from __future__ import annotations

import hashlib
import os
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, overload

from dscall.chunking.tokens import TokenCounter
from dscall.chunking.windows import split_stream
from dscall.config import STREAM_BLOCK_BYTES, ChunkSettings
from dscall.documents.extract import open_source, os_reason
from dscall.documents.text import Encoding, EncodingSniffer, decode_stream, encoding_warnings
from dscall.errors import EmptyDocument, UnreadableFile
from dscall.types import Chunk, ChunkedDocument, SourceFile

Progress = Callable[[], None]
_CHANGED = "the file changed while dscall was reading it; run again once it is complete"


@dataclass(frozen=True, slots=True)
class TextFile:
    """What it takes to read a scanned text file again and know it is the same file."""

    path: Path
    size: int
    encoding: Encoding
    crcs: array[int]  # CRC-32 of each STREAM_BLOCK_BYTES block, in order
    block: int = STREAM_BLOCK_BYTES

    def blocks(self, handle: BinaryIO, progress: Progress | None = None) -> Iterator[bytes]:
        """The file's blocks from the start, each checked against the scan."""
        try:
            if os.fstat(handle.fileno()).st_size != self.size:
                raise UnreadableFile(_CHANGED)
            handle.seek(0)
            for crc in self.crcs:
                block = handle.read(self.block)
                if zlib.crc32(block) != crc:
                    raise UnreadableFile(_CHANGED)
                if progress is not None:
                    progress()
                yield block
            if handle.read(1):
                raise UnreadableFile(_CHANGED)
        except OSError as exc:
            raise UnreadableFile(os_reason(exc)) from exc

    def text(self, handle: BinaryIO, progress: Progress | None = None) -> Iterator[str]:
        """The normalised text, in pieces of about a block."""
        return decode_stream(self.blocks(handle, progress), self.encoding)


@dataclass(frozen=True, slots=True)
class Scan:
    doc_id: str
    file: TextFile


def streamed(handle: BinaryIO, threshold: int) -> bool:
    """Whether the open file is large enough to be streamed."""
    return os.fstat(handle.fileno()).st_size >= threshold


def scan_text_file(handle: BinaryIO, path: Path, progress: Progress | None = None) -> Scan:
    """First read: doc_id, block CRCs and encoding. Raises ``DocumentError``."""
    digest = hashlib.sha256()
    crcs: array[int] = array("I")
    sniffer = EncodingSniffer()
    for block in _read_blocks(handle, progress):
        digest.update(block)
        crcs.append(zlib.crc32(block))
        sniffer.feed(block)
    if not sniffer.size:
        raise EmptyDocument("empty file (0 bytes)")
    provisional = TextFile(path, sniffer.size, Encoding("latin-1", "strict", ""), crcs)
    encoding = sniffer.choose(lambda: provisional.blocks(handle, progress))
    file = TextFile(path, sniffer.size, encoding, crcs)
    return Scan(digest.hexdigest(), file)


def chunk_text_file(
    handle: BinaryIO,
    source: SourceFile,
    scan: Scan,
    settings: ChunkSettings,
    counter: TokenCounter,
    progress: Progress | None = None,
) -> ChunkedDocument:
    """Second read: the chunk boundaries, window by window. Raises ``DocumentError``."""
    starts: array[int] = array("q")
    ends: array[int] = array("q")
    tokens: array[int] = array("q")
    chars = 0

    def counted(pieces: Iterable[str]) -> Iterator[str]:
        nonlocal chars
        for piece in pieces:
            chars += len(piece)
            yield piece

    def window_done(_: int) -> None:
        if progress is not None:
            progress()

    pieces = counted(scan.file.text(handle, progress))
    for start, end, count in split_stream(pieces, settings, counter, on_window=window_done):
        starts.append(start)
        ends.append(end)
        tokens.append(count)
    if not starts:
        raise EmptyDocument("no text: the document holds only whitespace")
    warnings = encoding_warnings(scan.file.encoding.name)
    chunks = StreamedChunks(scan.file, starts, ends, tokens)
    return ChunkedDocument(source, scan.doc_id, 0, chars, (), warnings, chunks)


def _read_blocks(handle: BinaryIO, progress: Progress | None) -> Iterator[bytes]:
    try:
        while block := handle.read(STREAM_BLOCK_BYTES):
            if progress is not None:
                progress()
            yield block
    except OSError as exc:
        raise UnreadableFile(os_reason(exc)) from exc


@dataclass(frozen=True, slots=True, eq=False)
class StreamedChunks(Sequence[Chunk]):
    """The chunks of a streamed text file: their number at once, their texts as iterated.

    Iterating reads the file again (one block and one chunk in memory at a time) and raises
    ``UnreadableFile`` if it changed since it was scanned. Indexing walks from the start, so
    ``chunks[i]`` costs as much as iterating up to ``i``: iterate instead. The open waits out a
    moment without free descriptors (``open_source``), blocking: iteration is synchronous, and
    the run's concurrency is sized so that the document being read always has one
    (``dscall.fdlimit``).
    """

    file: TextFile
    starts: array[int]
    ends: array[int]
    tokens: array[int]

    def __len__(self) -> int:
        return len(self.starts)

    def __iter__(self) -> Iterator[Chunk]:
        count = len(self.starts)
        with open_source(self.file.path) as handle:
            pieces = self.file.text(handle)
            buffer, buffer_start = "", 0  # text from offset buffer_start on
            for index in range(count):
                start, end = self.starts[index], self.ends[index]
                while buffer_start + len(buffer) < end:
                    piece = next(pieces, None)
                    if piece is None:  # shorter than at the scan: cannot happen unchanged
                        raise UnreadableFile(_CHANGED)
                    # Text before this chunk is not needed again: chunk starts only grow.
                    buffer = buffer[start - buffer_start :] + piece
                    buffer_start = start
                text = buffer[start - buffer_start : end - buffer_start]
                yield Chunk(index, count, text, start, end, None, None, self.tokens[index])

    @overload
    def __getitem__(self, index: int) -> Chunk: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Chunk]: ...

    def __getitem__(self, index: int | slice) -> Chunk | Sequence[Chunk]:
        if isinstance(index, slice):
            return tuple(self)[index]
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError("chunk index out of range")
        for chunk in self:
            if chunk.index == position:
                return chunk
        raise IndexError("chunk index out of range")  # pragma: no cover - the loop returns
