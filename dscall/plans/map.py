"""Map mode: one call per chunk, one row per chunk, in input order (SPEC §9 ``--mode map``).

Each chunk's row gets its place in the output order when its job is handed to the engine;
``ReorderBuffer`` holds finished rows until all earlier ones are out, and the plan is ``full``
while the buffer's window is, so memory is bounded by the window, not by the corpus.

A document that ends without a call (unreadable, no text) is one error row in its place. A
document whose file changes or vanishes while its chunks are being read (streamed text files
are read again as their chunks are handed out) ends with a ``FileChanged`` error row after the
rows of the chunks already sent; later documents go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial

from dscall.calls.caller import CallOutcome, RequestContext
from dscall.calls.request import RequestBuilder
from dscall.errors import DocumentError
from dscall.output.rows import ReorderBuffer, RowBuilder
from dscall.plans.base import NO_JOBS, Cost, Job, changed_message, each_chunk
from dscall.plans.structured import Checked, Structured, checked_job
from dscall.stats import RunStats
from dscall.types import (
    CallRequest,
    Chunk,
    ChunkedDocument,
    ChunkRow,
    ExtractOutcome,
    FailedDocument,
)


class MapPlan:
    def __init__(
        self,
        requests: RequestBuilder,
        rows: RowBuilder,
        reorder: ReorderBuffer[ChunkRow],
        stats: RunStats,
        notify: Callable[[str], None],
        structured: Structured | None = None,
    ) -> None:
        self._requests = requests
        self._rows = rows
        self._reorder = reorder
        self._stats = stats
        self._notify = notify
        self._structured = structured
        stats.schema_checked = structured is not None

    @property
    def full(self) -> bool:
        return self._reorder.full

    async def wait_for_room(self) -> None:
        await self._reorder.wait_for_room()

    def close(self) -> None:
        self._reorder.drain()

    def start(self, document: ExtractOutcome) -> Iterator[Job]:
        if isinstance(document, FailedDocument):
            self._document_failed(document)
            return
        if not document.chunks:
            self._document_failed(self._rows.no_text(document))
            return
        for chunk in each_chunk(document, partial(self._document_changed, document)):
            yield self._job(document, chunk)

    def _job(self, doc: ChunkedDocument, chunk: Chunk) -> Job:
        path = doc.source.rel_path
        request = self._requests.build(chunk, path)
        seq = self._reorder.assign()
        if self._structured is not None:
            return self._structured_job(doc, chunk, request, seq)

        def done(outcome: CallOutcome, cost: Cost) -> Iterable[Job]:
            self._reorder.put(seq, self._rows.chunk_row(doc, chunk, request, outcome, cost))
            return NO_JOBS

        return Job(
            request, RequestContext(path, chunk.index), done, lambda: self._reorder.skip(seq)
        )

    def _structured_job(
        self, doc: ChunkedDocument, chunk: Chunk, request: CallRequest, seq: int
    ) -> Job:
        structured = self._structured
        assert structured is not None
        path = doc.source.rel_path

        def settle(outcome: CallOutcome, cost: Cost, checked: Checked) -> list[Job]:
            row = self._rows.chunk_row(doc, chunk, request, outcome, cost)
            self._reorder.put(seq, checked.fill(row, structured))
            return []

        return checked_job(
            structured,
            self._requests,
            request,
            RequestContext(path, chunk.index),
            settle,
            partial(self._reorder.skip, seq),
            self._stats,
        )

    def _document_failed(self, failed: FailedDocument) -> None:
        self._error_row(
            f"{failed.source.rel_path}: {failed.error_type}: {failed.message}",
            self._rows.failed_document_row(failed),
        )

    def _document_changed(self, doc: ChunkedDocument, sent: int, exc: DocumentError) -> None:
        """The rest of ``doc`` cannot be read as it was chunked: one error row for the
        document after the rows of the chunks already sent; the run goes on."""
        message = changed_message(doc, sent, exc)
        self._error_row(
            f"{doc.source.rel_path}: FileChanged: {message}",
            self._rows.changed_document_row(doc, message),
        )

    def _error_row(self, note: str, row: ChunkRow) -> None:
        """Count, tell and write (in order) the error row of a document. The engine waited
        for room before asking for this document's next job, so there is room for it."""
        self._stats.documents_failed += 1
        self._notify(note)
        self._reorder.put(self._reorder.assign(), row)
