"""Outcomes in input order, the manifest asked first: ``extract_in_order`` with recall.

A file the manifest remembers (``Manifest.recall``) is handed on as it was stored, without a
task, a worker or an open; the others go to the extraction pool as in ``pool.extract_in_order``
and what they yield is remembered for the next run. Order is the input order either way: a
recalled document waits behind the files in progress ahead of it. Memory stays bounded by
``lookahead`` outcomes, recalled or in progress.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncGenerator, Iterable

from dscall.documents.manifest import Manifest
from dscall.documents.pool import ExtractionPool
from dscall.stats import FrontTally
from dscall.types import ChunkedDocument, ExtractOutcome, SourceFile

# Files looked up in the manifest at once (one query): the entries wait compressed, so this
# many more files ahead cost a few kilobytes each.
RECALL_BATCH = 64
# A file in progress: its task and when it was handed over (for the manifest's racy check).
_InProgress = tuple["asyncio.Task[ExtractOutcome]", int]


async def recalled_in_order(
    sources: Iterable[SourceFile],
    pool: ExtractionPool,
    manifest: Manifest,
    lookahead: int,
    tally: FrontTally,
) -> AsyncGenerator[ExtractOutcome, None]:
    """Outcomes in input order; leaving early cancels the files in progress."""
    pending: deque[ChunkedDocument | _InProgress] = deque()
    looked_up: deque[tuple[SourceFile, bytes | None]] = deque()
    iterator = iter(sources)
    exhausted = False

    def fill(limit: int) -> None:
        nonlocal exhausted
        while not exhausted and len(pending) < limit:
            if not looked_up:
                batch = list(itertools.islice(iterator, RECALL_BATCH))
                if not batch:
                    exhausted = True
                    return
                looked_up.extend(zip(batch, manifest.lookup(batch), strict=True))
            source, entry = looked_up.popleft()
            recalled = manifest.decode(source, entry)
            if recalled is not None:
                pending.append(recalled)
            else:
                task = asyncio.ensure_future(pool.process(source))
                pending.append((task, time.time_ns()))

    try:
        while True:
            fill(lookahead + 1)
            if not pending:
                return
            head = pending[0]
            if isinstance(head, ChunkedDocument):
                outcome: ExtractOutcome = head
                tally.from_manifest += 1
            else:
                task, read_at_ns = head
                outcome = await task
                if isinstance(outcome, ChunkedDocument):
                    manifest.remember(outcome, read_at_ns)
            pending.popleft()
            fill(lookahead)
            yield outcome
    finally:
        tasks = [item[0] for item in pending if not isinstance(item, ChunkedDocument)]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        manifest.flush()
