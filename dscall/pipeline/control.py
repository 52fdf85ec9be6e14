"""What a running ``dscall process`` shares between its engine, its output writers and its
signal handlers: why it stopped, whether the outputs still take rows, and what an interrupt
means at each moment of the run.

    first SIGINT/SIGTERM     stop dispatching; requests in flight finish and are written
    second                   abandon the requests in flight; what finished is written
    during the final write   acknowledged only: the write of what finished is never abandoned
    after it                 ignored: it could only lose the summary and the exit code

A failed output (disk full, I/O error) stops the run like an interrupt: nothing new is sent,
calls in flight finish into the cache, later rows are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections import Counter
from collections.abc import Callable, Iterator

from dscall.errors import Interrupted, OutputFailed, RunStopped
from dscall.output.parquet import ParquetRowWriter
from dscall.pipeline.engine import Engine
from dscall.types import ChunkRow, DocumentRow

Notify = Callable[[str], None]


class RunControl:
    """What the signal handlers and the output writers share with the engine: the stop
    reason, whether the outputs still take rows, and rows written per status."""

    def __init__(self, notify: Notify) -> None:
        self.notify = notify
        self.engine: Engine | None = None
        self.writing = False  # the engine is done; the outputs are being published
        self.output_failed: OutputFailed | None = None
        self.counts: dict[ParquetRowWriter, Counter[str]] = {}
        self.abandoned = False  # a second interrupt cancelled the requests in flight

    @property
    def stop_reason(self) -> RunStopped | None:
        if self.output_failed is not None:
            return self.output_failed
        return self.engine.stop_reason if self.engine is not None else None

    def guarded(self, writer: ParquetRowWriter) -> Callable[[ChunkRow | DocumentRow], None]:
        """``writer.write`` that turns a failed output into a stop of the run: calls in
        flight finish into the cache, nothing new is sent, later rows are dropped."""
        counts = self.counts[writer] = Counter()

        def write(row: ChunkRow | DocumentRow) -> None:
            if self.output_failed is not None:
                return
            try:
                writer.write(row)
            except OutputFailed as exc:
                self.fail_output(exc)
                return
            counts[row.status] += 1

        return write

    def fail_output(self, exc: OutputFailed) -> None:
        if self.output_failed is not None:
            return
        self.output_failed = exc
        if self.engine is not None and not self.writing:
            self.engine.request_stop(exc)

    def interrupted(self) -> None:
        """SIGINT/SIGTERM, as the module docstring says."""
        engine = self.engine
        if engine is None:
            return
        if self.writing:
            self.notify("writing what finished; the output will be complete in a moment")
        elif engine.stop_reason is None:
            engine.request_stop(Interrupted("interrupted"))
            self.notify("finishing the requests in flight (interrupt again to abandon them)")
        else:
            if not self.abandoned:
                self.abandoned = True
                self.notify("abandoning the requests in flight; writing what finished")
            engine.cancel_in_flight()


@contextlib.contextmanager
def signals_stop(control: RunControl) -> Iterator[None]:
    """Route SIGINT/SIGTERM to ``control.interrupted`` while the block runs."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, control.interrupted)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
            # What finished is written: an interrupt from now on could only lose the summary
            # and the exit code. The CLI restores the handlers when it runs in-process.
            signal.signal(sig, signal.SIG_IGN)
