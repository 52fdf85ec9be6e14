"""What runs inside an extraction worker process: one file in, one outcome out.

``process_source`` is also what the pool runs in the parent for small text files, so a file is
extracted and chunked the same way wherever it runs. Every failure becomes a
``FailedDocument``: a ``DocumentError`` keeps its class name and message, ``MemoryError``
(the worker's ``RLIMIT_AS`` at work) becomes ``ExtractionCrashed``, and anything a library
raises without documenting it becomes ``CorruptDocument`` (or ``ExtractionCrashed`` when it
happens while chunking, where it would be dscall's bug, not the file's).
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

from dscall.chunking.exact_counter import use_parallel_encoding
from dscall.chunking.splitter import chunk_document
from dscall.chunking.tokens import TokenCounter, make_counter
from dscall.config import STREAM_TEXT_MIN_BYTES, ChunkSettings, ExtractSettings
from dscall.documents.bigtext import chunk_text_file, scan_text_file, streamed
from dscall.documents.extract import doc_id_of, extract_bytes, open_source, os_reason
from dscall.errors import DocumentError, one_line
from dscall.fdlimit import out_of_fds
from dscall.types import ChunkedDocument, ExtractOutcome, FailedDocument, SourceFile

READY = "ready"
# Sent as soon as a file arrives: a pipe that closes before it means the worker died before
# the file reached it (not the file's fault: the parent hands it to another worker).
RECEIVED = "received"
# Sent by a busy worker while a streamed file makes headway: the parent restarts its clock.
PROGRESS = "progress"
# How often a busy worker's watchdog checks that dscall is still there.
_WATCH_INTERVAL_S = 1.0
_PROGRESS_INTERVAL_S = 0.25


def process_source(
    source: SourceFile,
    extract: ExtractSettings,
    chunk: ChunkSettings,
    counter: TokenCounter,
    progress: Callable[[], None] | None = None,
    *,
    wait: bool = True,
) -> ExtractOutcome:
    """Extract and chunk one file; every failure becomes a ``FailedDocument``.

    A text file of ``STREAM_TEXT_MIN_BYTES`` or more is streamed (see ``bigtext``), calling
    ``progress`` after each block read and each window chunked. Without ``wait``, a file that
    cannot be opened for want of a free descriptor raises that ``OSError`` instead of waiting
    (``open_source``): the caller on the event loop waits for one without blocking it.
    """
    doc_id = None
    stage = "reading"
    try:
        with open_source(source.path, wait=wait) as handle:
            if source.doc_type in ("txt", "md") and streamed(handle, STREAM_TEXT_MIN_BYTES):
                scan = scan_text_file(handle, source.path, progress)
                doc_id = scan.doc_id
                stage = "chunking"
                return chunk_text_file(handle, source, scan, chunk, counter, progress)
            data = handle.read()
        doc_id = doc_id_of(data)
        document = extract_bytes(source, data, doc_id, extract)
        del data
        stage = "chunking"
        chunks = chunk_document(document, chunk, counter)
    except DocumentError as exc:
        return FailedDocument(source, doc_id, exc.error_type, exc.message)
    except MemoryError:
        return FailedDocument(source, doc_id, "ExtractionCrashed", _out_of_memory(extract))
    except RecursionError:
        return FailedDocument(source, doc_id, "CorruptDocument", "structure nested too deeply")
    except OSError as exc:  # a read failing half-way (I/O error, file vanished from NFS)
        if not wait and out_of_fds(exc):
            raise
        return FailedDocument(source, doc_id, "UnreadableFile", os_reason(exc))
    except Exception as exc:  # a library failing in a way it does not document, or a bug
        error_type = "CorruptDocument" if stage == "reading" else "ExtractionCrashed"
        message = one_line(f"unexpected error while {stage} ({type(exc).__name__}: {exc})")
        return FailedDocument(source, doc_id, error_type, message)
    return ChunkedDocument(
        source,
        doc_id,
        document.page_count,
        len(document.text),
        document.no_text_pages,
        document.warnings,
        chunks,
        document.ocr_pages,
    )


def worker_main(conn: Connection, extract: ExtractSettings, chunk: ChunkSettings) -> None:
    """A worker's life: limit itself, say ready, then one file in, one outcome out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_memory(extract.memory_mb)
    use_parallel_encoding()  # a worker never forks: safe to let the tokenizer use every core
    try:
        counter = make_counter(chunk.tokenizer)
        counter.count("warm up")  # loads the exact tokenizer now, not on the first file's clock
    except Exception as exc:  # reported to the parent, which fails the file with it
        conn.send(one_line(f"{type(exc).__name__}: {exc}"))
        return
    # Everything loaded so far (libraries, the tokenizer) lives as long as the worker: frozen,
    # the garbage collector stops re-scanning it after every few hundred allocations.
    gc.collect()
    gc.freeze()
    watch = _ParentWatch(conn)
    conn.send(READY)
    while True:
        try:
            source = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if source is None:
            return
        try:
            conn.send(RECEIVED)
        except OSError:
            return
        watch.busy()
        outcome = process_source(source, extract, chunk, counter, _reporter(conn))
        watch.idle()
        try:
            conn.send(outcome)
        except MemoryError:  # the outcome was too large to pickle within the limit
            outcome = FailedDocument(source, None, "ExtractionCrashed", _out_of_memory(extract))
            conn.send(outcome)
        except OSError:
            return
        if isinstance(outcome, FailedDocument) and outcome.error_type == "ExtractionCrashed":
            return  # after running out of memory, a fresh process is the safe next step


def _reporter(conn: Connection) -> Callable[[], None]:
    """``progress`` for ``process_source``: one message a second at most, so that a file
    read in many blocks does not flood the pipe (the parent only needs a sign of life)."""
    last = time.monotonic()

    def report() -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= _PROGRESS_INTERVAL_S:
            last = now
            conn.send(PROGRESS)

    return report


class _ParentWatch:
    """Ends the worker if dscall dies while a file is being processed.

    An idle worker notices a dead parent through EOF on its pipe, but a busy one is deep in a
    library and would go on, possibly forever on a pathological file, after a ``kill -9`` of
    dscall (the fork server it hangs from outlives dscall for as long as any worker lives). So
    a thread watches the pipe while the worker is busy: dscall never writes to a busy worker,
    hence a readable pipe then means EOF, and the worker exits at once.
    """

    def __init__(self, conn: Connection) -> None:
        self._fd = conn.fileno()
        self._task = 0
        self._busy = threading.Event()
        threading.Thread(target=self._run, name="dscall-parent-watch", daemon=True).start()

    def busy(self) -> None:
        self._task += 1
        self._busy.set()

    def idle(self) -> None:
        self._busy.clear()

    def _run(self) -> None:
        while True:
            self._busy.wait()
            task = self._task
            readable, _, _ = select.select([self._fd], [], [], _WATCH_INTERVAL_S)
            # Still the same file: the pipe cannot hold the next one, so it is EOF.
            if readable and self._busy.is_set() and self._task == task:
                os._exit(1)


def _limit_memory(memory_mb: int) -> None:
    try:
        import resource
    except ImportError:  # not on Unix: no cap, the timeout still applies
        return
    limit = memory_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    with contextlib.suppress(ValueError, OSError):  # e.g. macOS refuses to lower RLIMIT_AS
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _out_of_memory(extract: ExtractSettings) -> str:
    return f"ran out of memory (an extraction worker may use {extract.memory_mb} MB)"
