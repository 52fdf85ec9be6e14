"""The values that flow between stages: files -> documents -> chunks -> calls -> rows.

Plain slotted dataclasses: cheap to build by the hundred thousand, picklable into worker
processes, and free of any library type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

DocType = Literal["pdf", "docx", "txt", "md"]


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file discovery found and dscall will read."""

    path: Path  # the path to open (as given or found under a folder argument)
    rel_path: str  # POSIX path relative to the argument it was found under: the doc_path
    doc_type: DocType
    size: int  # bytes, from the stat discovery already made
    # The rest of that stat, for the manifest (documents/manifest.py): 0 when not known.
    mtime_ns: int = 0
    ctime_ns: int = 0
    inode: int = 0


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A path discovery passed over, with a one-line reason (unsupported, unreadable, loop)."""

    path: str
    reason: str
    kind: Literal["unsupported", "unreadable", "loop", "missing"]


@dataclass(frozen=True, slots=True)
class Document:
    """The text of one file. Pages are joined with a single newline.

    ``page_starts[i]`` is the character offset in ``text`` where page ``i + 1`` begins; it is
    ``None`` for formats without pages (DOCX, text).
    """

    source: SourceFile
    doc_id: str  # sha256 hex of the file's bytes
    text: str
    page_starts: tuple[int, ...] | None
    no_text_pages: tuple[int, ...] = ()  # 1-based numbers of pages with no text layer
    warnings: tuple[str, ...] = ()  # per-page problems that did not fail the document
    ocr_pages: tuple[int, ...] = ()  # 1-based numbers of pages whose text came from OCR

    @property
    def page_count(self) -> int:
        return len(self.page_starts) if self.page_starts is not None else 0


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a document's text, with where it came from."""

    index: int  # 0-based position in the document
    count: int  # number of chunks in the document
    text: str
    char_start: int  # offset of text[0] in Document.text
    char_end: int  # offset one past the last character
    page_start: int | None  # 1-based, None for formats without pages
    page_end: int | None
    tokens: int  # counted (exact tokenizer) or estimated (rule of thumb with margin)
    ocr: bool = False  # some of its pages' text came from OCR (--ocr)


@dataclass(frozen=True, slots=True)
class ChunkedDocument:
    """What extraction and chunking hand on for one file that read successfully.

    ``chunks`` is a tuple, except for a text file too large to hold whole
    (``config.STREAM_TEXT_MIN_BYTES``): then a ``documents.bigtext.StreamedChunks``, whose
    length is known at once and whose iteration reads the chunk texts from the file (and
    raises ``UnreadableFile`` if the file changed meanwhile). Iterate it; do not index it.
    """

    source: SourceFile
    doc_id: str
    page_count: int
    char_count: int
    no_text_pages: tuple[int, ...]
    warnings: tuple[str, ...]
    chunks: Sequence[Chunk]
    ocr_pages: tuple[int, ...] = ()  # 1-based numbers of pages whose text came from OCR


@dataclass(frozen=True, slots=True)
class FailedDocument:
    """A file that could not be read; it becomes one error row, and the run goes on."""

    source: SourceFile
    doc_id: str | None  # None when the bytes could not even be read
    error_type: str  # the DocumentError subclass name
    message: str  # one line, no traceback


ExtractOutcome = ChunkedDocument | FailedDocument


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hit_tokens: int = 0
    cache_miss_tokens: int = 0


@dataclass(frozen=True, slots=True)
class CallRequest:
    """One chat-completions request, ready to send.

    ``body`` is the canonical JSON (sorted keys, compact separators), so that ``request_hash``
    (sha256 of namespace + body) is the cache key, the single-flight key and the audit log's
    input hash all at once.
    """

    body: bytes
    request_hash: str
    model: str
    estimated_prompt_tokens: int
    max_tokens: int | None
    stream: bool
    # With several answer sources (endpoints in different cache groups): the cache key of the
    # same request under each further source, in the run's order (calls/endpoint_plan.py).
    other_hashes: tuple[str, ...] = ()

    def hash_for(self, source_index: int) -> str:
        """The cache key of this request under the run's answer source ``source_index``."""
        return self.request_hash if source_index == 0 else self.other_hashes[source_index - 1]


@dataclass(frozen=True, slots=True)
class CallResponse:
    """A successful answer, parsed."""

    output: str
    finish_reason: str
    response_model: str
    usage: Usage
    reasoning: str | None = None
    status: int = 200


RowStatus = Literal["ok", "error"]
DocumentStatus = Literal["ok", "partial", "error", "incomplete"]


@dataclass(slots=True)
class ChunkRow:
    """One row of ``--out`` (SPEC §6): a chunk's call, or the error row of a document.

    A document-level error row (the file could not be read, or changed mid-run) has no
    ``chunk_index``. ``document`` is what the row belongs to; it is not a column.
    """

    document: ExtractOutcome = field(repr=False)
    run_id: str
    doc_path: str
    doc_id: str | None
    doc_type: str
    status: RowStatus
    step: str = "map"  # the step of the chain this row is a call of
    chunk_index: int | None = None
    chunk_count: int | None = None
    page_start: int | None = None
    page_end: int | None = None
    char_start: int | None = None
    char_end: int | None = None
    chunk_tokens: int | None = None
    ocr: bool | None = None  # chunk rows: its text (some of it) came from OCR
    chunk_text: str | None = None
    request_hash: str | None = None
    model: str | None = None
    endpoint: str | None = None  # the endpoint that answered, or whose cache group did
    response_model: str | None = None
    output: str | None = None
    finish_reason: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    attempts: int = 0
    cached: bool = False
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cache_hit_tokens: int | None = None
    cache_miss_tokens: int | None = None
    cost_usd: float | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    extra: dict[str, object] | None = None  # a schema's typed columns (--schema)


@dataclass(slots=True)
class DocumentRow:
    """One row of ``--documents-out``: a document's answer and its totals. ``extra`` holds
    columns a pipeline adds (``<step>_output``)."""

    run_id: str
    doc_path: str
    doc_id: str | None
    doc_type: str
    status: DocumentStatus
    page_count: int | None = None
    no_text_pages: list[int] | None = None
    chunk_count: int = 0
    chunks_ok: int = 0
    chunks_failed: int = 0
    output: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    calls: int = 0  # the calls of every step of the document, cached ones included
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cache_hit_tokens: int | None = None
    cache_miss_tokens: int | None = None
    cost_usd: float | None = None
    extra: dict[str, object] = field(default_factory=dict)
