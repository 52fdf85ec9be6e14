"""Extraction and chunking off the event loop, in worker processes that can be killed.

Why not ``ProcessPoolExecutor``: it cannot stop one hung task. Here each worker is a
``multiprocessing.Process`` with its own ``Pipe``, so a file that runs past
``ExtractSettings.timeout_s`` costs exactly one worker: it is killed, the file becomes an
``ExtractionTimeout`` row, and the next file gets a fresh worker.

- The worker processes (forkserver, never fork; the pipe; why one died) are
  ``worker_process``; what runs inside them is ``worker``.
- Each worker caps its address space (``RLIMIT_AS`` = ``memory_mb``), ignores SIGINT (Ctrl-C is
  the parent's to handle) and builds its token counter once. A ``MemoryError`` becomes an
  ``ExtractionCrashed`` row and that worker retires; a worker that dies (segfault, OOM killer)
  is noticed through the pipe's EOF, never waited on forever.
- The per-file clock starts when the file is handed to a ready worker, so start-up time
  (loading the tokenizer) never counts against a file. A streamed text file (``bigtext``)
  reports progress as it goes, and each report restarts the clock: the limit stops a file
  that is stuck, not one that is merely large.
- A worker retires after ``MAX_FILES_PER_WORKER`` files, so memory stays flat over any
  number of documents even if a native library leaks a little.
- Workers start lazily: a run of small text files starts no process at all, because text files
  under ``INLINE_TEXT_MAX_BYTES`` are read and chunked in the parent (cheaper than the IPC).
  One that finds no free file descriptor there is tried again after an ``asyncio.sleep``, so
  the requests whose sockets hold the descriptors can finish meanwhile (``dscall.fdlimit``).
- Waiting on a worker's pipe is cancellable (cancelling a file kills its worker, the only way
  to stop it).

``process`` never raises for bad input: every failure is a ``FailedDocument``.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncGenerator, Iterable
from types import TracebackType
from typing import Any

from dscall.chunking.splitter import validate_chunk_settings
from dscall.chunking.tokens import TokenCounter, make_counter
from dscall.config import INLINE_TEXT_MAX_BYTES, ChunkSettings, ExtractSettings
from dscall.documents.extract import os_reason
from dscall.documents.ocr import check_ocr
from dscall.documents.pdf import check_backend
from dscall.documents.worker import PROGRESS, READY, RECEIVED, process_source
from dscall.documents.worker_process import WorkerProcess, readable, start_process
from dscall.fdlimit import fd_retry_delays, out_of_fds, retry_out_of_fds_async
from dscall.types import ExtractOutcome, FailedDocument, SourceFile

# Loading the exact tokenizer takes about a second; a worker not ready after this is broken.
_STARTUP_TIMEOUT_S = 120.0
# Tries to hand a file to a live worker (an idle one may have died meanwhile).
_SEND_ATTEMPTS = 3
# A worker retires after this many files: a slow leak in a native library (pdfium, lxml) then
# costs at most this many files' worth of memory, for one fork every few thousand files.
MAX_FILES_PER_WORKER = 2000


class ExtractionPool:
    """Turns ``SourceFile`` into ``ChunkedDocument`` or ``FailedDocument``.

    Use as ``async with ExtractionPool(extract, chunk) as pool``; ``workers`` defaults to
    ``extract.workers``, and 0 there means the number of CPUs.
    """

    def __init__(
        self,
        extract: ExtractSettings | None = None,
        chunk: ChunkSettings | None = None,
        *,
        workers: int | None = None,
    ) -> None:
        self._extract = extract or ExtractSettings()
        self._chunk = chunk or ChunkSettings()
        check_backend(self._extract.pdf_backend)
        check_ocr(self._extract.ocr)
        validate_chunk_settings(self._chunk)
        self.size = max(1, workers or self._extract.workers or os.cpu_count() or 1)
        self._slots = asyncio.Semaphore(self.size)
        self._idle: list[WorkerProcess] = []
        self._live: set[WorkerProcess] = set()
        self._counter: TokenCounter | None = None
        self._closed = False
        self.workers_started = 0  # for tests and benchmarks: how many processes were started
        self.progress_reports = 0  # for tests: signs of life from streamed files

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for tests and memory figures)."""
        return sorted(w.process.pid for w in self._live if w.process.pid is not None)

    @property
    def counter(self) -> TokenCounter:
        """The parent's token counter (for inline text files); built on first use."""
        if self._counter is None:
            self._counter = make_counter(self._chunk.tokenizer)
        return self._counter

    async def __aenter__(self) -> ExtractionPool:
        _ = self.counter  # built now, so a bad --tokenizer fails before any work
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for worker in idle:  # all told first, so that they exit in parallel
            worker.release()
        for worker in idle:
            self._live.discard(worker)
            worker.stop()
        for worker in list(self._live):  # still busy: their files were cancelled
            worker.kill()
        self._live.clear()

    async def process(self, source: SourceFile) -> ExtractOutcome:
        if self._closed:
            raise RuntimeError("ExtractionPool is closed")
        if source.doc_type in ("txt", "md") and source.size < INLINE_TEXT_MAX_BYTES:
            return await self._inline(source)
        async with self._slots:
            for _ in range(_SEND_ATTEMPTS):
                worker = await self._take_worker(source.doc_type)
                if isinstance(worker, str):
                    return FailedDocument(source, None, "ExtractionCrashed", worker)
                try:
                    outcome, healthy = await self._run(worker, source)
                except BaseException:  # cancelled mid-file: the worker's state is unknown
                    self._retire(worker, kill=True)
                    raise
                if outcome is not None:
                    break
                # The worker had died before the file reached it: not the file's fault.
                self._retire(worker, kill=True)
            else:
                message = "extraction workers keep dying before they get a file"
                return FailedDocument(source, None, "ExtractionCrashed", message)
            worker.files += 1
            if healthy and not self._closed and worker.files < MAX_FILES_PER_WORKER:
                self._idle.append(worker)
            else:
                self._retire(worker, kill=not healthy)
            return outcome

    async def _inline(self, source: SourceFile) -> ExtractOutcome:
        """A small text file, read on the event loop's thread. No free descriptor is waited
        for here without blocking the loop: in this process, the sockets of requests in
        flight hold them, and they close only while the loop runs."""

        def attempt() -> ExtractOutcome:
            return process_source(source, self._extract, self._chunk, self.counter, wait=False)

        try:
            return await retry_out_of_fds_async(attempt)
        except OSError as exc:  # still none after FD_RETRY_TOTAL_S
            return FailedDocument(source, None, "UnreadableFile", os_reason(exc))

    async def _take_worker(self, doc_type: str) -> WorkerProcess | str:
        while self._idle:
            worker = self._idle.pop()
            # An idle worker says nothing: a readable pipe is its EOF. That shows a death
            # before is_alive() does (the fork server reports exit codes a little later).
            if worker.process.is_alive() and not worker.conn.poll(0):
                return worker
            self._retire(worker, kill=True)  # died while idle (OOM killer?): not this file's fault
        return await self._start_worker(doc_type)

    async def _start_worker(self, doc_type: str) -> WorkerProcess | str:
        """A ready worker, or why one could not be started."""
        delays = fd_retry_delays()
        while True:
            try:
                worker = await self._launch(doc_type)
                break
            except OSError as exc:
                # No free descriptor for its pipes (or for the first import of the fork
                # server's module) is dscall's limit, not the file's: wait, without blocking
                # the loop whose sockets hold them, and try again.
                delay = next(delays, None) if out_of_fds(exc) else None
                if delay is None:
                    return f"could not start an extraction worker: {exc}"
            await asyncio.sleep(delay)
        parent_conn = worker.conn
        try:
            if not await readable(parent_conn, _STARTUP_TIMEOUT_S):
                raise asyncio.TimeoutError
            message = parent_conn.recv()
        except BaseException as exc:
            self._retire(worker, kill=True)
            if isinstance(exc, (asyncio.TimeoutError, EOFError, OSError)):
                return f"extraction worker failed to start: {self._death(worker)}"
            raise
        if message != READY:
            self._retire(worker, kill=True)
            return f"extraction worker failed to start: {message}"
        return worker

    async def _launch(self, doc_type: str) -> WorkerProcess:
        """A started worker process (not yet ready). Raises ``OSError``."""
        exact = self.counter.name == "exact"
        worker = await start_process(doc_type, exact, self._extract, self._chunk)
        self._live.add(worker)
        self.workers_started += 1
        return worker

    async def _run(
        self, worker: WorkerProcess, source: SourceFile
    ) -> tuple[ExtractOutcome | None, bool]:
        """Send one file, wait for its outcome; ``healthy`` says whether to reuse the worker.
        No outcome: the file could not be sent (the worker was already dead)."""
        timeout = self._extract.timeout_s
        try:
            worker.conn.send(source)
        except OSError:  # EPIPE: the worker's end is closed
            return None, False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        stalled = ""
        delivered = False
        while True:
            try:
                if not await readable(worker.conn, deadline - loop.time()):
                    message = (
                        f"extraction took longer than {timeout:g} s (--extract-timeout)"
                        f"{stalled}; its worker was stopped"
                    )
                    return FailedDocument(source, None, "ExtractionTimeout", message), False
                outcome: Any = worker.conn.recv()
            except (EOFError, OSError):
                if not delivered:  # died before the file reached it (a dying idle worker's
                    return None, False  # pipe can still take a write)
                return self._crashed(source, worker), False
            if isinstance(outcome, str) and outcome == RECEIVED:
                delivered = True
                continue
            if not (isinstance(outcome, str) and outcome == PROGRESS):
                break
            # A streamed text file reports each stretch of work done: the limit is for a
            # file that is stuck, not for one that is merely large.
            deadline = loop.time() + timeout
            stalled = " without progress"
            self.progress_reports += 1
        crashed = isinstance(outcome, FailedDocument) and outcome.error_type == "ExtractionCrashed"
        return outcome, not crashed

    def _death(self, worker: WorkerProcess) -> str:
        return worker.death(self._extract.memory_mb)

    def _crashed(self, source: SourceFile, worker: WorkerProcess) -> FailedDocument:
        return FailedDocument(source, None, "ExtractionCrashed", self._death(worker))

    def _retire(self, worker: WorkerProcess, kill: bool) -> None:
        self._live.discard(worker)
        if kill:
            worker.kill()  # SIGKILL, so the join that follows is immediate
        else:
            worker.release()


async def extract_in_order(
    sources: Iterable[SourceFile], pool: ExtractionPool, lookahead: int
) -> AsyncGenerator[ExtractOutcome, None]:
    """Outcomes in input order, with up to ``lookahead`` later files already in progress.

    Memory is bounded by ``lookahead`` outcomes whatever the number of files. Leaving the
    loop early cancels the files in progress.
    """
    pending: deque[asyncio.Task[ExtractOutcome]] = deque()
    iterator = iter(sources)
    exhausted = False

    def fill(limit: int) -> None:
        nonlocal exhausted
        while not exhausted and len(pending) < limit:
            source = next(iterator, None)
            if source is None:
                exhausted = True
            else:
                pending.append(asyncio.ensure_future(pool.process(source)))

    try:
        while True:
            fill(lookahead + 1)
            if not pending:
                return
            outcome = await pending[0]
            pending.popleft()
            fill(lookahead)  # keep the next files going while the caller works on this one
            yield outcome
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
