"""One shard of a run: ``run_shard(settings, rank, world_size) -> ShardResult``.

Synchronous and picklable (settings are frozen dataclasses), so any executor can call it: the
Ray executor runs one per task; ``world_size = 1`` is the whole run. It runs the same stages as
a local run (``pipeline.run.run_process``) over the shard's documents, writes its part of the
dataset, then its completion marker. The cache is the checkpoint: a shard retried after a
crash pays only for the calls whose answers never arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dscall import __version__
from dscall.config import ProcessSettings
from dscall.errors import EXIT_OK, DscallError, UsageError
from dscall.executors.dataset import clear_shard, write_marker
from dscall.executors.documents import (
    clear_documents,
    documents_part_name,
    documents_rows,
    with_documents,
)
from dscall.executors.live import pushing
from dscall.executors.shards import (
    ShardPlan,
    part_name,
    plan_shards,
    settings_fingerprint,
    shard_settings,
)
from dscall.executors.workdir import in_directory
from dscall.stats import RunStats

MAX_NOTES = 50  # notes a shard hands back to the driver (skipped files, warnings)


@dataclass(slots=True)
class ShardResult:
    """How one shard ended, and its figures (the driver sums them into the run's)."""

    rank: int
    world_size: int
    exit_code: int
    rows: int
    documents: int
    run_id: str = ""
    error: str | None = None  # why it stopped or failed: one line, never a secret
    stats: RunStats = field(default_factory=RunStats)
    notes: list[str] = field(default_factory=list)
    documents_rows: int = 0  # rows of its --documents-out part
    max_rss_kb: int = 0  # peak resident memory of the worker process so far (ru_maxrss)


def run_shard(
    settings: ProcessSettings,
    rank: int,
    world_size: int,
    *,
    plan: ShardPlan | None = None,
    api_key: str | None = None,
    board: Any = None,
    limits: Any = None,
    directory: str | None = None,
    key_on_board: bool = False,
) -> ShardResult:
    """Run shard ``rank`` of ``world_size`` of ``settings`` (whose ``--out`` is the dataset's
    folder). ``plan``: its documents as the driver discovered them; by default they are
    discovered here (every shard then lists the inputs itself). ``board``: a Ray actor handle
    (``executors.live``) to push live figures to. ``limits``: the run's ``LimitBoard`` actor
    (``executors.limit_board``), which holds the limits and the budget for all shards.
    ``directory``: the driver's working directory, where relative paths are (``workdir``).
    ``key_on_board``: the run's explicit API key is held by ``limits`` (the Ray executor sends
    no key in a task's arguments): the shard asks for it once, before its run."""
    try:
        with in_directory(directory, settings):
            key = _KeyOnBoard() if key_on_board else api_key
            return _shard(settings, rank, world_size, plan, key, board, limits)
    except UsageError as exc:  # the same on every retry: told, not retried
        return ShardResult(rank, world_size, exc.exit_code, 0, 0, error=str(exc))


class _KeyOnBoard:
    """The key is the board's: asked for once, in ``_run`` (a shard without documents never
    asks)."""

    __slots__ = ()


def _shard(
    settings: ProcessSettings,
    rank: int,
    world_size: int,
    plan: ShardPlan | None,
    api_key: str | _KeyOnBoard | None,
    board: Any,
    limits: Any,
) -> ShardResult:
    if plan is None:
        plan = plan_shards(settings, world_size).shards[rank]
    folder = settings.output.out
    documents = settings.output.documents_out  # a folder, like --out
    fingerprint = settings_fingerprint(settings)
    clear_shard(folder, plan)
    if documents is not None:
        clear_documents(documents, plan)
    result = ShardResult(rank, world_size, EXIT_OK, 0, len(plan.sources))
    if plan.sources:
        mine = shard_settings(settings, rank, world_size, held=limits is not None)
        mine = with_documents(mine, documents, rank, world_size)
        with pushing(board, rank, result.stats):
            _run(mine, plan, api_key, result, limits)
    if documents is not None:
        result.documents_rows = documents_rows(documents, rank, world_size)
    result.max_rss_kb = _max_rss_kb()
    if result.error is None:
        marker = {
            "dscall_version": __version__,
            "rank": rank,
            "world_size": world_size,
            "part": part_name(rank, world_size) if result.rows else None,
            "fingerprint": fingerprint,
            "inputs_digest": plan.inputs_digest,
            "documents": result.documents,
            "rows": result.rows,
            "exit_code": result.exit_code,
            "run_id": result.run_id,
            "finished_at": datetime.now(timezone.utc).isoformat(),
        }
        if documents is not None:
            named = documents_part_name(rank, world_size) if result.documents_rows else None
            marker.update(documents_part=named, documents_rows=result.documents_rows)
        write_marker(folder, rank, marker)
    return result


def _run(
    settings: ProcessSettings,
    plan: ShardPlan,
    api_key: str | _KeyOnBoard | None,
    result: ShardResult,
    limits: Any,
) -> None:
    from dscall.executors.cluster_link import ClusterLink, board_api_key
    from dscall.pipeline.run import run_process

    def note(text: str) -> None:
        if len(result.notes) < MAX_NOTES:
            result.notes.append(text)

    try:
        key = board_api_key(limits) if isinstance(api_key, _KeyOnBoard) else api_key
        with _signals_kept():
            cluster = None if limits is None else ClusterLink(limits, plan.rank, note)
            ran = asyncio.run(run_process(settings, key, result.stats, note, plan.sources, cluster))
    except DscallError as exc:  # a usage or configuration error: the same on every retry
        result.exit_code = exc.exit_code
        result.error = str(exc)
        return
    result.stats.finish()
    result.run_id = ran.run_id
    result.exit_code = ran.exit_code
    result.rows = ran.rows_written if ran.published else 0
    if ran.stop_reason is not None:
        result.error = str(ran.stop_reason)


def _max_rss_kb() -> int:
    """This process's peak resident set, in KiB (Linux's ``ru_maxrss`` unit); 0 if unknown."""
    try:
        import resource
    except ImportError:  # not on this platform
        return 0
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


@contextlib.contextmanager
def _signals_kept() -> Iterator[None]:
    """A run leaves SIGINT/SIGTERM ignored when it ends (see ``pipeline.control``); a Ray worker
    lives on after the task, and its SIGTERM must still stop it."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            with contextlib.suppress(ValueError, TypeError):  # not the main thread
                signal.signal(sig, handler)
        sys.stderr.flush()
