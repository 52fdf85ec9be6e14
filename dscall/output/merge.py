"""Map mode's documents table: the ordered chunk rows of each document folded into one row."""

from __future__ import annotations

from collections.abc import Callable

from dscall.types import ChunkedDocument, ChunkRow, DocumentRow, DocumentStatus, ExtractOutcome


class DocumentMerger:
    """Folds the ordered chunk rows of each document into one document row."""

    def __init__(self, run_id: str, sink: Callable[[DocumentRow], None]) -> None:
        self._run_id = run_id
        self._sink = sink
        self._doc: ExtractOutcome | None = None
        self._rows: list[ChunkRow] = []

    def add(self, row: ChunkRow) -> None:
        if row.document is not self._doc:
            self.finish()
            self._doc = row.document
        self._rows.append(row)

    def finish(self) -> None:
        """Emit the document collected so far (call once more at the end of the run)."""
        if self._doc is None:
            return
        self._sink(self._merge(self._doc, self._rows))
        self._doc = None
        self._rows = []

    def _merge(self, doc: ExtractOutcome, rows: list[ChunkRow]) -> DocumentRow:
        source = doc.source
        if not isinstance(doc, ChunkedDocument):
            return DocumentRow(
                self._run_id,
                source.rel_path,
                doc.doc_id,
                source.doc_type,
                "error",
                error_type=doc.error_type,
                error_message=doc.message,
            )
        chunk_rows = [row for row in rows if row.chunk_index is not None]
        # A document-level error row (the file changed mid-run) fails the whole document.
        doc_error = next((row for row in rows if row.chunk_index is None), None)
        ok = [row for row in chunk_rows if row.status == "ok"]
        failed = [row for row in chunk_rows if row.status == "error"]
        missing = len(doc.chunks) - len(chunk_rows)
        status: DocumentStatus
        if doc_error is not None:
            status = "error"
        elif missing:
            status = "incomplete"
        elif not failed:
            status = "ok"
        else:
            status = "error" if not ok else "partial"
        first_error = doc_error or (failed[0] if failed else None)
        if first_error is not None:
            error_message = first_error.error_message
        elif missing:
            error_message = f"{missing} chunk(s) not processed: the run stopped early"
        else:
            error_message = None
        return DocumentRow(
            self._run_id,
            source.rel_path,
            doc.doc_id,
            source.doc_type,
            status,
            page_count=doc.page_count,
            no_text_pages=list(doc.no_text_pages),
            chunk_count=len(doc.chunks),
            chunks_ok=len(ok),
            chunks_failed=len(failed),
            calls=len(chunk_rows),
            # The answers of a file that changed under dscall are not the document's answer.
            output=None if doc_error else "\n\n".join(row.output or "" for row in ok),
            error_type=first_error.error_type if first_error else None,
            error_message=error_message,
            prompt_tokens=sum(row.prompt_tokens or 0 for row in ok),
            completion_tokens=sum(row.completion_tokens or 0 for row in ok),
            cache_hit_tokens=sum(row.cache_hit_tokens or 0 for row in ok),
            cache_miss_tokens=sum(row.cache_miss_tokens or 0 for row in ok),
            cost_usd=sum(row.cost_usd or 0.0 for row in ok),
        )
