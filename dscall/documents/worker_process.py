"""The parent's side of one extraction worker process (``worker.worker_main`` is the child's).

- Start method: forkserver (spawn where there is none), never fork: the parent runs an event
  loop and threads that a forked child must not inherit. The fork server preloads the
  extraction library of the first file's type (``_libraries``), so a new worker is ready in
  milliseconds after the first.
- Each worker has its own ``Pipe``; the parent waits on it with ``loop.add_reader``
  (``readable``): no thread, no polling, and the wait is cancellable. A worker that dies
  (segfault, OOM killer) is noticed through the pipe's EOF, never waited on forever, and
  ``WorkerProcess.death`` says why it went.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess

from dscall.config import ChunkSettings, ExtractSettings
from dscall.documents.pdf import pdfium_available
from dscall.documents.worker import worker_main

_STOP_GRACE_S = 2.0
# "__main__" (the dscall script) is meant to be imported once in the fork server, so that
# workers, which re-import the parent's main module, find it already loaded; Python 3.10 and
# 3.11 skip that preload (they look for the script's path under the wrong key), which is why
# the script itself is light to import (dscall.console).
# The libraries for the first file's type come too (and tokenizers for the exact counter):
# the fork server's preloading stands between dscall's start and its first PDF's first
# request, and importing pypdf and python-docx for a run of PDFs read by pdfium cost 0.45 s of
# it. A worker meeting another type imports its library once, on its first such file.
_PRELOAD = ["__main__", "dscall.documents.worker"]
_forkserver_configured = False


def _libraries(doc_type: str, exact: bool) -> list[str]:
    libraries = []
    if doc_type == "pdf":
        libraries.append("pypdfium2" if pdfium_available() else "pypdf")
    elif doc_type == "docx":
        libraries.append("docx")
    if exact:
        libraries.append("tokenizers")
    return libraries


def _context(doc_type: str = "", exact: bool = True) -> ForkServerContext | SpawnContext:
    global _forkserver_configured
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    if not _forkserver_configured:
        context.set_forkserver_preload(_PRELOAD + _libraries(doc_type, exact))
        _forkserver_configured = True
    return context


class WorkerProcess:
    """One started worker: its process, the parent's end of its pipe, and the files it did."""

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.files = 0

    def kill(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.process.kill()
        self.process.join(_STOP_GRACE_S)
        self.conn.close()

    def release(self) -> None:
        """Tell an idle worker to exit, without waiting for it (multiprocessing reaps it)."""
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.conn.close()

    def stop(self) -> None:
        """Wait for a released worker to exit; kill it if it does not."""
        self.process.join(_STOP_GRACE_S)
        if self.process.is_alive():
            self.kill()

    def death(self, memory_mb: int) -> str:
        """Why the worker's pipe closed, for an ``ExtractionCrashed`` message."""
        self.process.join(_STOP_GRACE_S)
        code = self.process.exitcode
        if code is None:
            return "the extraction worker stopped answering"
        if code >= 0:
            return f"the extraction worker exited with status {code}"
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        # Native code (pdfium, lxml) aborts or faults when an allocation fails under RLIMIT_AS;
        # SIGKILL is the kernel's OOM killer.
        return (
            f"the extraction worker crashed ({name}); out of memory? "
            f"(limit {memory_mb} MB per worker)"
        )


async def start_process(
    doc_type: str, exact: bool, extract: ExtractSettings, chunk: ChunkSettings
) -> WorkerProcess:
    """A started worker process (not yet ready: it sends ``READY`` once it is). The fork server,
    if it starts now, preloads what a ``doc_type`` file needs (and tokenizers with ``exact``).
    Raises ``OSError``."""
    context = _context(doc_type, exact)
    parent_conn, child_conn = context.Pipe(duplex=True)
    process = context.Process(
        target=worker_main,
        args=(child_conn, extract, chunk),
        name="dscall-extract",
        daemon=True,
    )
    try:
        await asyncio.get_running_loop().run_in_executor(None, process.start)
    except OSError:
        parent_conn.close()
        raise
    finally:
        child_conn.close()  # the child holds its end; EOF now means the child is gone
    return WorkerProcess(process, parent_conn)


async def readable(conn: Connection, timeout: float) -> bool:
    """Wait until ``conn`` has data (or EOF) without blocking the event loop; False when
    ``timeout`` seconds pass first. (Not ``asyncio.wait_for``: on Python 3.11 it drops a
    cancellation that arrives as the pipe becomes readable, so a Ctrl-C could go unheard.)"""
    if conn.poll():
        return True
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[bool] = loop.create_future()

    def settle(readable: bool) -> None:
        if not ready.done():
            ready.set_result(readable)

    fd = conn.fileno()
    loop.add_reader(fd, settle, True)
    timer = loop.call_later(max(0.0, timeout), settle, False)
    try:
        return await ready
    finally:
        timer.cancel()
        loop.remove_reader(fd)
