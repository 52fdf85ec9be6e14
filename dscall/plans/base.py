"""The contract between the engine and a plan: jobs with what to do with their outcome.

The engine knows calls and their dependencies, not chunks: a ``Job`` is a request, where it
comes from (for the audit log), and two callbacks. ``done`` receives the call's outcome and
its cost and returns the jobs that were waiting for it (none, for a map call); ``dropped``
says the call will not finish in this run (the run stopped, or was cancelled), so that the
plan can give up its place in the output order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from dscall.calls.caller import CallOutcome, RequestContext
from dscall.errors import DocumentError
from dscall.types import CallRequest, Chunk, ChunkedDocument, ExtractOutcome

# What a call cost in this run: 0.0 when cached or failed, None when the model's price is
# unknown.
Cost = float | None


@dataclass(slots=True)  # not frozen: a frozen __init__ costs a microsecond a job
class Job:
    request: CallRequest
    context: RequestContext
    done: Callable[[CallOutcome, Cost], Iterable[Job]]
    dropped: Callable[[], None]
    trace: object | None = None  # with traces on: its document's span context (dscall.traces)


NO_JOBS: tuple[Job, ...] = ()


def each_chunk(
    doc: ChunkedDocument, changed: Callable[[int, DocumentError], None]
) -> Iterator[Chunk]:
    """The chunks of ``doc`` in order. A streamed text file is read again as its chunks are
    taken: if it changed or vanished since it was chunked, ``changed(sent, error)`` is told
    how many chunks were handed out before, and the iteration ends."""
    chunks = iter(doc.chunks)
    sent = 0
    while True:
        try:
            chunk = next(chunks, None)
        except DocumentError as exc:
            changed(sent, exc)
            return
        if chunk is None:
            return
        yield chunk
        sent += 1


def changed_message(doc: ChunkedDocument, sent: int, exc: DocumentError) -> str:
    return f"{exc.message} (after {sent} of {len(doc.chunks)} chunks were sent)"


class Plan(Protocol):
    """A mode (map, map-reduce, refine, a pipeline of steps) as the engine sees it."""

    def start(self, document: ExtractOutcome) -> Iterator[Job]:
        """The jobs a document can start with, lazily: the engine waits for room before it
        takes each one. A document that ends without a call (it could not be read, it has no
        text, it changed mid-run) writes its row from here."""
        ...

    @property
    def full(self) -> bool:
        """Whether the output order holds as much as it may: take no new input until there is
        room again."""
        ...

    async def wait_for_room(self) -> None: ...

    def close(self) -> None:
        """The engine is done: release whatever is still held, in order."""
        ...
