"""Live progress of a Ray run: the shards push their figures to one small Ray actor about once
a second; the driver reads them and shows the run's sum (finished shards plus live ones) on its
one display. Figures only: no rows, no text, no key.

``ProgressBoard``'s methods are part of the run's one actor (``executors.ray.RunBoard``, made
remote with ``num_cpus=0``: it takes no CPU from the shards). A shard whose worker dies leaves
its last figures until its retry pushes new ones under the same rank, so nothing is counted
twice on screen; the summary is made from the shards' final results, never from these
figures.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import fields
from typing import Any

from dscall.executors.merge import merge_into
from dscall.stats import RunStats

PUSH_INTERVAL_S = 1.0
_CLOCK = {"started_monotonic", "finished_monotonic"}


class ProgressBoard:
    """The latest figures of each running shard, by rank."""

    def __init__(self) -> None:
        self._live: dict[int, RunStats] = {}

    def report(self, rank: int, stats: RunStats) -> None:
        self._live[rank] = stats

    def drop(self, rank: int) -> None:
        self._live.pop(rank, None)

    def snapshot(self) -> dict[int, RunStats]:
        return dict(self._live)


def copy_of(stats: RunStats) -> RunStats | None:
    """A copy of figures the event loop is changing; None when a table of them changed size
    while being copied (the next tick copies them)."""
    copy = RunStats()
    try:
        merge_into(copy, stats)
    except RuntimeError:
        return None
    return copy


@contextlib.contextmanager
def pushing(board: Any, rank: int, stats: RunStats) -> Iterator[None]:
    """While the block runs, push ``stats`` to ``board`` every ``PUSH_INTERVAL_S`` from a
    thread (the run's event loop is never held up by it)."""
    if board is None:
        yield
        return
    stop = threading.Event()

    def push() -> None:
        while not stop.wait(PUSH_INTERVAL_S):
            copy = copy_of(stats)
            if copy is None:
                continue
            try:
                board.report.remote(rank, copy)
            except Exception:  # the driver is gone: the shard's own work goes on
                return

    thread = threading.Thread(target=push, name=f"dscall-progress-{rank}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def show(stats: RunStats, finished: RunStats, live: dict[int, RunStats]) -> None:
    """Make ``stats`` (what the display reads) the sum of ``finished`` and ``live``."""
    total = RunStats()
    merge_into(total, finished)
    for part in live.values():
        merge_into(total, part)
    for item in fields(RunStats):
        if item.name not in _CLOCK:
            setattr(stats, item.name, getattr(total, item.name))
