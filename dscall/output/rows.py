"""Outcomes -> output rows, in deterministic order, and per-document merging.

Calls finish in any order; rows must come out in input order, then chunk index. Each row gets
a sequence number when its chunk is dispatched; ``ReorderBuffer`` holds finished rows until all
earlier ones are out, and the engine stops dispatching when the buffer's window is full, so
memory is bounded by the window, not by the corpus.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from dscall.calls.caller import CallOutcome
from dscall.pricing import PriceTable
from dscall.stats import RunStats
from dscall.types import CallRequest, Chunk, ChunkedDocument, FailedDocument

Row = dict[str, Any]
# Rows carry the document they belong to under this key; writers ignore non-column keys.
DOC_KEY = "_doc"


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


class RowBuilder:
    """Builds the SPEC §6 row of a chunk, or the error row of a document that failed."""

    def __init__(
        self, run_id: str, include_text: bool, prices: PriceTable, stats: RunStats
    ) -> None:
        self.run_id = run_id
        self.include_text = include_text
        self.prices = prices
        self.stats = stats

    def chunk_row(
        self, doc: ChunkedDocument, chunk: Chunk, request: CallRequest, outcome: CallOutcome
    ) -> Row:
        response = outcome.response
        stats = self.stats
        finished = _utc(outcome.finished_at)
        row: Row = {
            DOC_KEY: doc,
            "run_id": self.run_id,
            "doc_path": doc.source.rel_path,
            "doc_id": doc.doc_id,
            "doc_type": doc.source.doc_type,
            "chunk_index": chunk.index,
            "chunk_count": chunk.count,
            "page_start": chunk.page_start,
            "page_end": chunk.page_end,
            "char_start": chunk.char_start,
            "char_end": chunk.char_end,
            "chunk_tokens": chunk.tokens,
            "chunk_text": chunk.text if self.include_text else None,
            "request_hash": request.request_hash,
            "model": request.model,
            "attempts": outcome.attempts,
            "cached": outcome.cached,
            "latency_ms": outcome.latency_ms if outcome.attempts else None,
            "started_at": _utc(outcome.started_at),
            "finished_at": finished,
        }
        stats.chunks_done += 1
        if outcome.cached:
            stats.chunks_cached += 1
        if response is None:
            stats.chunks_failed += 1
            row["status"] = "error"
            row["error_type"] = outcome.error_type
            row["error_message"] = outcome.error_message
            row["cost_usd"] = 0.0
            return row
        stats.chunks_ok += 1
        usage = response.usage
        row["status"] = "ok"
        row["response_model"] = response.response_model
        row["output"] = response.output
        row["finish_reason"] = response.finish_reason
        row["prompt_tokens"] = usage.prompt_tokens
        row["completion_tokens"] = usage.completion_tokens
        row["cache_hit_tokens"] = usage.cache_hit_tokens
        row["cache_miss_tokens"] = usage.cache_miss_tokens
        if outcome.cached:
            # Paid for in an earlier run (or by an identical request in this one).
            row["cost_usd"] = 0.0
            return row
        stats.prompt_tokens += usage.prompt_tokens
        stats.completion_tokens += usage.completion_tokens
        stats.cache_hit_tokens += usage.cache_hit_tokens
        stats.cache_miss_tokens += usage.cache_miss_tokens
        cost = self.prices.cost(request.model, usage, finished)
        if cost is None:
            stats.cost_unknown = True
        else:
            stats.cost_usd += cost
        row["cost_usd"] = cost
        return row

    @staticmethod
    def no_text(doc: ChunkedDocument) -> FailedDocument:
        """A document that read fine but holds no text (scanned pages, empty body)."""
        if doc.no_text_pages:
            reason = f"no extractable text ({len(doc.no_text_pages)} page(s) without a text layer)"
        else:
            reason = "no extractable text"
        return FailedDocument(doc.source, doc.doc_id, "NoTextFound", reason)

    def changed_document_row(self, doc: ChunkedDocument, message: str) -> Row:
        """The error row of a document whose file changed or vanished mid-run."""
        return {
            DOC_KEY: doc,
            "run_id": self.run_id,
            "doc_path": doc.source.rel_path,
            "doc_id": doc.doc_id,
            "doc_type": doc.source.doc_type,
            "chunk_count": len(doc.chunks),
            "status": "error",
            "error_type": "FileChanged",
            "error_message": message,
            "attempts": 0,
            "cached": False,
        }

    def failed_document_row(self, failed: FailedDocument) -> Row:
        return {
            DOC_KEY: failed,
            "run_id": self.run_id,
            "doc_path": failed.source.rel_path,
            "doc_id": failed.doc_id,
            "doc_type": failed.source.doc_type,
            "status": "error",
            "error_type": failed.error_type,
            "error_message": failed.message,
            "attempts": 0,
            "cached": False,
        }


class ReorderBuffer:
    """Releases rows to ``sink`` in sequence order, whatever order they arrive in."""

    def __init__(self, sink: Callable[[Row], None], window: int) -> None:
        self._sink = sink
        self._pending: dict[int, Row | None] = {}
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

    def put(self, seq: int, row: Row | None) -> None:
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


class DocumentMerger:
    """Folds the ordered chunk rows of each document into one document row."""

    def __init__(self, run_id: str, sink: Callable[[Row], None]) -> None:
        self._run_id = run_id
        self._sink = sink
        self._doc: ChunkedDocument | FailedDocument | None = None
        self._rows: list[Row] = []

    def add(self, row: Row) -> None:
        doc = row[DOC_KEY]
        if doc is not self._doc:
            self.finish()
            self._doc = doc
        self._rows.append(row)

    def finish(self) -> None:
        """Emit the document collected so far (call once more at the end of the run)."""
        if self._doc is None:
            return
        self._sink(self._merge(self._doc, self._rows))
        self._doc = None
        self._rows = []

    def _merge(self, doc: ChunkedDocument | FailedDocument, rows: list[Row]) -> Row:
        merged: Row = {
            "run_id": self._run_id,
            "doc_path": doc.source.rel_path,
            "doc_id": doc.doc_id,
            "doc_type": doc.source.doc_type,
        }
        if isinstance(doc, FailedDocument):
            merged.update(
                status="error",
                error_type=doc.error_type,
                error_message=doc.message,
                chunk_count=0,
                chunks_ok=0,
                chunks_failed=0,
            )
            return merged
        chunk_rows = [row for row in rows if row.get("chunk_index") is not None]
        # A document-level error row (the file changed mid-run) fails the whole document.
        doc_error = next((row for row in rows if row.get("chunk_index") is None), None)
        ok = [row for row in chunk_rows if row.get("status") == "ok"]
        failed = [row for row in chunk_rows if row.get("status") == "error"]
        missing = len(doc.chunks) - len(chunk_rows)
        if doc_error is not None:
            status = "error"
        elif missing:
            status = "incomplete"
        elif not failed:
            status = "ok"
        else:
            status = "error" if not ok else "partial"
        first_error = doc_error or (failed[0] if failed else None)
        merged.update(
            page_count=doc.page_count,
            no_text_pages=list(doc.no_text_pages),
            chunk_count=len(doc.chunks),
            chunks_ok=len(ok),
            chunks_failed=len(failed),
            # The answers of a file that changed under dscall are not the document's answer.
            output=None if doc_error else "\n\n".join(row["output"] for row in ok),
            status=status,
            error_type=first_error["error_type"] if first_error else None,
            error_message=(
                first_error["error_message"]
                if first_error
                else (
                    f"{missing} chunk(s) not processed: the run stopped early" if missing else None
                )
            ),
            prompt_tokens=sum(row.get("prompt_tokens") or 0 for row in ok),
            completion_tokens=sum(row.get("completion_tokens") or 0 for row in ok),
            cache_hit_tokens=sum(row.get("cache_hit_tokens") or 0 for row in ok),
            cache_miss_tokens=sum(row.get("cache_miss_tokens") or 0 for row in ok),
            cost_usd=sum(row.get("cost_usd") or 0.0 for row in ok),
        )
        return merged
