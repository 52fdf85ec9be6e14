"""The front half of every command, wired once: discover -> extract -> chunk, in input order.

    async with front_half(inputs, discovery, extract, chunk, tally, notify) as front:
        async for outcome in front.outcomes:  # ChunkedDocument | FailedDocument, in order
            ...

``dscall process``, ``process --dry-run`` and ``dscall chunks`` differ only in what they do
with each outcome. What they share lives here: the ``ExtractionPool`` (opened and closed by the
context manager), one lookahead rule, files discovery passes over (told through ``notify`` and
counted), the usage error for inputs that hold no supported document (raised on entering, before
any outcome is awaited), and one ``stats.FrontTally`` of what was read.

Given the run's ``CacheSettings`` (``process`` and ``--dry-run``), files are looked up in the
manifest first (``documents.manifest``): an unchanged file is handed on as remembered, never
read (counted in ``FrontTally.from_manifest``); ``--refresh`` reads every file again and
remembers it afresh, ``--no-cache`` neither reads nor writes the manifest.

The tally is counted as each outcome is handed on, so a progress display reading it sees
``documents`` and ``chunks`` grow while extraction is still running. ``failed`` counts the
documents extraction could not read; ``dscall process`` counts more failures than that (a
document with no text, one that changed while it was being sent) in ``RunStats``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass

from dscall.config import CacheSettings, ChunkSettings, DiscoverySettings, ExtractSettings
from dscall.documents.bigtext import StreamedChunks
from dscall.documents.discover import discover, printable
from dscall.documents.manifest import Manifest, open_manifest, settings_key
from dscall.documents.manifest_order import recalled_in_order
from dscall.documents.pool import ExtractionPool, extract_in_order
from dscall.errors import UsageError
from dscall.stats import FrontTally
from dscall.types import ChunkedDocument, ExtractOutcome, FailedDocument, SkippedFile, SourceFile

Notify = Callable[[str], None]

# Files in progress ahead of the one being handed on: enough to keep every worker busy while
# the consumer works on the current document, and bounded so memory follows the lookahead,
# not the corpus.
LOOKAHEAD_MIN = 8
LOOKAHEAD_PER_WORKER = 4


def lookahead(pool_size: int) -> int:
    return max(LOOKAHEAD_MIN, LOOKAHEAD_PER_WORKER * pool_size)


@dataclass(frozen=True, slots=True)
class FrontHalf:
    """What ``front_half`` yields: the outcomes, and the name of the token counter in use."""

    outcomes: AsyncGenerator[ExtractOutcome, None]
    tokenizer: str  # "exact" or "estimate"
    workers: int  # the pool's size


@contextlib.asynccontextmanager
async def front_half(
    inputs: tuple[str, ...],
    discovery: DiscoverySettings,
    extract: ExtractSettings,
    chunk: ChunkSettings,
    tally: FrontTally,
    notify: Notify,
    cache: CacheSettings | None = None,
    found: Iterable[SourceFile | SkippedFile] | None = None,
) -> AsyncIterator[FrontHalf]:
    """Open the extraction pool and find the first document (``UsageError`` if there is none);
    yield the outcomes in input order. Leaving the block cancels the files in progress and
    stops the workers. ``cache``: consult and update the manifest in its folder. ``found``:
    files discovered already (a shard's share of the inputs, ``dscall.executors``) instead of
    discovering ``inputs`` again."""
    async with (
        ExtractionPool(extract, chunk) as pool,
        _manifest(cache, extract, chunk, pool, notify) as known,
    ):
        listed = discover(inputs, discovery) if found is None else found
        sources = _reported(listed, tally, notify)
        first = next(sources, None)
        if first is None:
            shown = " ".join(printable(path) for path in inputs)
            raise UsageError(f"no supported documents (.pdf .docx .txt .md) found in {shown}")
        files = _chain(first, sources)
        ordered = (
            extract_in_order(files, pool, lookahead(pool.size))
            if known is None
            else recalled_in_order(files, pool, known, lookahead(pool.size), tally)
        )
        outcomes = _tallied(ordered, tally)
        try:
            yield FrontHalf(outcomes, pool.counter.name, pool.size)
        finally:
            # Before the pool closes: the files in progress are cancelled and awaited. A
            # generator still being awaited (its consumer's task is being cancelled) is left to
            # that consumer, which closes it as its cancellation unwinds.
            if not getattr(outcomes, "ag_running", False):
                await outcomes.aclose()


@contextlib.asynccontextmanager
async def _manifest(
    cache: CacheSettings | None,
    extract: ExtractSettings,
    chunk: ChunkSettings,
    pool: ExtractionPool,
    notify: Notify,
) -> AsyncIterator[Manifest | None]:
    if cache is None or not cache.enabled:
        yield None
        return
    key = settings_key(extract, chunk, pool.counter.name)
    keep = extract.ocr == "never"  # see Manifest.keep_warned
    manifest = open_manifest(
        cache.directory, key, read=not cache.refresh, notify=notify, keep_warned=keep
    )
    try:
        yield manifest
    finally:
        manifest.close()


def _reported(
    found: Iterable[SourceFile | SkippedFile], tally: FrontTally, notify: Notify
) -> Iterator[SourceFile]:
    """Pass files on; count and tell what discovery skipped."""
    for item in found:
        if isinstance(item, SkippedFile):
            tally.skipped += 1
            notify(f"skipped {item.path}: {item.reason}")
            continue
        yield item


def _chain(first: SourceFile, rest: Iterator[SourceFile]) -> Iterator[SourceFile]:
    yield first
    yield from rest


async def _tallied(
    outcomes: AsyncGenerator[ExtractOutcome, None], tally: FrontTally
) -> AsyncGenerator[ExtractOutcome, None]:
    """``outcomes``, counted; closing this closes them (their files in progress cancelled)."""
    async with contextlib.aclosing(outcomes):
        async for outcome in outcomes:
            _count(tally, outcome)
            yield outcome


def _count(tally: FrontTally, outcome: ExtractOutcome) -> None:
    tally.documents += 1
    if isinstance(outcome, FailedDocument):
        tally.failed += 1
        return
    tally.pages += outcome.page_count
    tally.chunks += len(outcome.chunks)
    tally.tokens += _tokens(outcome)
    tally.no_text_pages += len(outcome.no_text_pages)
    tally.ocr_pages += len(outcome.ocr_pages)


def _tokens(document: ChunkedDocument) -> int:
    chunks = document.chunks
    if isinstance(chunks, StreamedChunks):
        # Iterating would read the whole file again to rebuild texts not needed here.
        return sum(chunks.tokens)
    return sum(chunk.tokens for chunk in chunks)
