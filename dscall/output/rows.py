"""Outcomes -> output rows, in deterministic order.

Calls finish in any order; rows must come out in input order, then chunk index. Each row gets
a sequence number when its chunk is dispatched; ``ReorderBuffer`` holds finished rows until all
earlier ones are out, and the engine stops dispatching when the buffer's window is full, so
memory is bounded by the window, not by the corpus.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Generic, TypeVar

from dscall.calls.caller import CallOutcome
from dscall.stats import RunStats
from dscall.types import CallRequest, Chunk, ChunkedDocument, ChunkRow, FailedDocument

R = TypeVar("R")


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


class RowBuilder:
    """Builds the SPEC §6 row of a chunk, or the error row of a document that failed.

    Counts chunks by how they ended; what a call cost is the ledger's (``pipeline.ledger``),
    handed in as ``cost``.
    """

    def __init__(self, run_id: str, include_text: bool, stats: RunStats) -> None:
        self.run_id = run_id
        self.include_text = include_text
        self.stats = stats

    def chunk_row(
        self,
        doc: ChunkedDocument,
        chunk: Chunk,
        request: CallRequest,
        outcome: CallOutcome,
        cost: float | None,
        step: str = "map",
    ) -> ChunkRow:
        response = outcome.response
        stats = self.stats
        row = ChunkRow(
            doc,
            self.run_id,
            doc.source.rel_path,
            doc.doc_id,
            doc.source.doc_type,
            "ok" if response is not None else "error",
            step=step,
            chunk_index=chunk.index,
            chunk_count=chunk.count,
            page_start=chunk.page_start,
            page_end=chunk.page_end,
            char_start=chunk.char_start,
            char_end=chunk.char_end,
            chunk_tokens=chunk.tokens,
            ocr=chunk.ocr,
            chunk_text=chunk.text if self.include_text else None,
            request_hash=request.request_hash,
            model=request.model,
            attempts=outcome.attempts,
            cached=outcome.cached,
            latency_ms=outcome.latency_ms if outcome.attempts else None,
            started_at=_utc(outcome.started_at),
            finished_at=_utc(outcome.finished_at),
            cost_usd=cost,
        )
        stats.chunks_done += 1
        if outcome.cached:
            stats.chunks_cached += 1
        if response is None:
            stats.chunks_failed += 1
            row.error_type = outcome.error_type
            row.error_message = outcome.error_message
            return row
        stats.chunks_ok += 1
        usage = response.usage
        row.response_model = response.response_model
        row.output = response.output
        row.finish_reason = response.finish_reason
        row.prompt_tokens = usage.prompt_tokens
        row.completion_tokens = usage.completion_tokens
        row.cache_hit_tokens = usage.cache_hit_tokens
        row.cache_miss_tokens = usage.cache_miss_tokens
        return row

    @staticmethod
    def no_text(doc: ChunkedDocument) -> FailedDocument:
        """A document that read fine but holds no text (scanned pages, empty body)."""
        if doc.no_text_pages:
            reason = f"no extractable text ({len(doc.no_text_pages)} page(s) without a text layer)"
        else:
            reason = "no extractable text"
        return FailedDocument(doc.source, doc.doc_id, "NoTextFound", reason)

    def changed_document_row(self, doc: ChunkedDocument, message: str) -> ChunkRow:
        """The error row of a document whose file changed or vanished mid-run."""
        return ChunkRow(
            doc,
            self.run_id,
            doc.source.rel_path,
            doc.doc_id,
            doc.source.doc_type,
            "error",
            chunk_count=len(doc.chunks),
            error_type="FileChanged",
            error_message=message,
        )

    def failed_document_row(self, failed: FailedDocument) -> ChunkRow:
        return ChunkRow(
            failed,
            self.run_id,
            failed.source.rel_path,
            failed.doc_id,
            failed.source.doc_type,
            "error",
            error_type=failed.error_type,
            error_message=failed.message,
        )


class ReorderBuffer(Generic[R]):
    """Releases rows to ``sink`` in sequence order, whatever order they arrive in."""

    def __init__(self, sink: Callable[[R], None], window: int) -> None:
        self._sink = sink
        self._pending: dict[int, R | None] = {}
        self._next = 0
        self._assigned = 0
        self.window = window
        self._room = asyncio.Event()

    def assign(self) -> int:
        """The sequence number of the next row to be dispatched."""
        seq = self._assigned
        self._assigned += 1
        return seq

    @property
    def full(self) -> bool:
        return self._assigned - self._next >= self.window

    async def wait_for_room(self) -> None:
        while self.full:
            self._room.clear()
            await self._room.wait()

    def put(self, seq: int, row: R | None) -> None:
        """Hand in the row of ``seq`` (None: that chunk ends without a row in this run)."""
        if seq != self._next:
            self._pending[seq] = row
            return
        if row is not None:
            self._sink(row)
        self._next += 1
        pending = self._pending
        while self._next in pending:
            held = pending.pop(self._next)
            if held is not None:
                self._sink(held)
            self._next += 1
        self._room.set()

    def skip(self, seq: int) -> None:
        """Give up on a sequence number (its chunk will not finish in this run)."""
        self.put(seq, None)

    def drain(self) -> None:
        """Release everything still held, in order, passing over numbers never filled."""
        for seq in sorted(self._pending):
            row = self._pending.pop(seq)
            if row is not None:
                self._sink(row)
        self._next = self._assigned
