"""`dscall chunks`: documents in, one Parquet row per chunk out; no model is called.

Useful on its own (chunking documents for a retrieval pipeline) and a dry view of what
``dscall process`` would send. A document that cannot be read becomes one row with
``status = "error"``; files discovery passes over (unsupported, unreadable, loops) are listed
on stderr and counted, not written. Exit 0 when every document was read, 1 when some failed,
2 on a usage error (bad option, no documents found, unwritable --out).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dscall import config
from dscall.cli import options
from dscall.cli.app import app, run

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterator

    from dscall.stats import FrontTally
    from dscall.types import ChunkedDocument, ExtractOutcome, FailedDocument, SourceFile


@app.command(no_args_is_help=True)
def chunks(
    paths: options.Paths,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Parquet file to write: one row per chunk, one per document that failed.",
            rich_help_panel=options.OUTPUT,
        ),
    ] = Path("chunks.parquet"),
    include: options.Include = None,
    exclude: options.Exclude = None,
    hidden: options.Hidden = False,
    chunk_tokens: options.ChunkTokens = config.DEFAULT_CHUNK_TOKENS,
    overlap_tokens: options.OverlapTokens = config.DEFAULT_OVERLAP_TOKENS,
    tokenizer: options.Tokenizer = "auto",
    pdf_backend: options.PdfBackend = "auto",
    ocr: options.Ocr = None,
    headers: options.Headers = False,
    extract_timeout: options.ExtractTimeout = config.DEFAULT_EXTRACT_TIMEOUT_S,
    workers: options.Workers = 0,
    no_text: Annotated[
        bool,
        typer.Option(
            "--no-text", help="Leave the chunk_text column out.", rich_help_panel=options.OUTPUT
        ),
    ] = False,
    force: Annotated[
        bool,
        options.force("Replace an --out file that dscall did not write (never an input document)."),
    ] = False,
    quiet: Annotated[
        bool, options.quiet("No notes or summary; only errors (failed documents, usage errors).")
    ] = False,
) -> None:
    """Split documents into token-budgeted chunks and write them to Parquet (no model call).

    Exit codes: 0 every document read; 1 some failed (their error rows are written);
    2 usage error.
    """

    def body() -> int:
        job = ChunksJob(
            inputs=tuple(paths),
            discovery=options.discovery_settings(include, exclude, hidden),
            extract=options.extract_settings(extract_timeout, pdf_backend, workers, ocr, headers),
            chunk=options.chunk_settings(chunk_tokens, overlap_tokens, tokenizer),
            out=out,
            include_text=not no_text,
            quiet=quiet,
            force=force,
        )
        return run_chunks(job)

    run(body)


@dataclass(frozen=True, slots=True)
class ChunksJob:
    inputs: tuple[str, ...]
    discovery: config.DiscoverySettings
    extract: config.ExtractSettings
    chunk: config.ChunkSettings
    out: Path
    include_text: bool = True
    quiet: bool = False
    force: bool = False  # replace an --out file dscall did not write


def run_chunks(job: ChunksJob) -> int:
    """Run ``dscall chunks``; returns the exit code."""
    import asyncio

    from dscall.chunking.splitter import validate_chunk_settings
    from dscall.errors import Interrupted, UsageError
    from dscall.fdlimit import raise_soft_limit

    validate_chunk_settings(job.chunk)
    raise_soft_limit()  # each extraction worker holds pipes here: many CPUs, a low soft limit
    if job.out.is_dir():
        raise UsageError(f"--out {job.out} is a folder; give a file name, e.g. chunks.parquet")
    from dscall.output.safety import OutputPath, check_outputs
    from dscall.stats import FrontTally

    check_outputs([OutputPath("--out", job.out, "parquet")], job.inputs, job.force)
    tally = FrontTally()
    try:
        rows = asyncio.run(_terminable(_run(job, tally)))
    except asyncio.CancelledError:  # SIGTERM (Ctrl-C arrives as KeyboardInterrupt instead)
        raise Interrupted("terminated: nothing written") from None
    if not job.quiet:
        _say(_summary(tally, rows, job.out))
    return 1 if tally.failed else 0


async def _terminable(work: Coroutine[Any, Any, int]) -> int:
    """Run ``work`` so that SIGTERM (cron's `timeout`, a container stop) cancels it like
    Ctrl-C: workers are stopped and the output's temporary file is removed."""
    import asyncio
    import signal

    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
        return await task
    try:
        return await task
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _run(job: ChunksJob, tally: FrontTally) -> int:
    from dscall import __version__
    from dscall.config import settings_metadata
    from dscall.documents.stage import front_half
    from dscall.output.parquet import ParquetRowWriter, chunks_schema
    from dscall.types import FailedDocument

    def notify(message: str) -> None:
        if not job.quiet:
            _say(message)

    async with front_half(
        job.inputs, job.discovery, job.extract, job.chunk, tally, notify
    ) as front:
        metadata = {
            "dscall_version": __version__,
            "command": "chunks",
            "inputs": list(job.inputs),
            "tokenizer": front.tokenizer,
            "settings": settings_metadata(job.discovery, job.extract, job.chunk),
            "include_text": job.include_text,
        }
        with ParquetRowWriter(job.out, chunks_schema(job.include_text), metadata) as writer:
            async for outcome in front.outcomes:
                if isinstance(outcome, FailedDocument):
                    _say(f"failed {_shown(outcome.source)}: {_error(outcome)}")
                elif not job.quiet:
                    _notes(outcome)
                writer.write_many(_rows(outcome, job.include_text))
    return writer.rows_written  # final once the writer has closed


def _notes(document: ChunkedDocument) -> None:
    if document.no_text_pages:
        pages = ", ".join(str(page) for page in document.no_text_pages)
        _say(f"note {_shown(document.source)}: no text layer on page(s) {pages} (scanned?)")
    for warning in document.warnings:
        _say(f"warning {_shown(document.source)}: {warning}")


def _rows(outcome: ExtractOutcome, include_text: bool) -> Iterator[dict[str, Any]]:
    from dscall.types import FailedDocument

    source = outcome.source
    base = {"doc_path": source.rel_path, "doc_id": outcome.doc_id, "doc_type": source.doc_type}
    if isinstance(outcome, FailedDocument):
        yield base | {
            "status": "error",
            "error_type": outcome.error_type,
            "error_message": outcome.message,
        }
        return
    for chunk in outcome.chunks:
        row = base | {
            "chunk_index": chunk.index,
            "chunk_count": chunk.count,
            "page_start": chunk.page_start,
            "page_end": chunk.page_end,
            "char_start": chunk.char_start,
            "char_end": chunk.char_end,
            "chunk_tokens": chunk.tokens,
            "ocr": chunk.ocr,
            "status": "ok",
        }
        if include_text:
            row["chunk_text"] = chunk.text
        yield row


def _error(failed: FailedDocument) -> str:
    return f"{failed.error_type}: {failed.message}"


def _shown(source: SourceFile) -> str:
    return str(source.path)  # escaped by _say


def _summary(tally: FrontTally, rows: int, out: Path) -> str:
    ok = tally.documents - tally.failed
    return (
        f"documents: {tally.documents} ({ok} ok, {tally.failed} failed), pages: {tally.pages}, "
        f"chunks: {tally.chunks}, tokens: {tally.tokens:,}, "
        f"no-text pages: {tally.no_text_pages}, "
        + (f"OCR'd pages: {tally.ocr_pages}, " if tally.ocr_pages else "")
        + f"skipped: {tally.skipped}, "
        f"failed: {tally.failed}\nwrote {rows} rows to {out}"
    )


def _say(message: str) -> None:
    """One or more lines on stderr; anything from a file name or a file's content that a
    terminal would interpret (escape sequences, control characters) is shown escaped."""
    from dscall.documents.discover import printable

    typer.echo("\n".join(printable(line) for line in message.split("\n")), err=True)
