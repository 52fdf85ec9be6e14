"""``--executor ray``: the run's shards as Ray tasks, driven from this process.

The driver connects to the cluster (``--ray-address``; by default it starts a Ray on this
machine for the run and stops it after), discovers the inputs once, skips the shards whose
marker says they are done with these settings over these documents, and sends each other shard
to a task calling ``run_shard``. Ray runs a task again when its worker dies (a crash, SIGKILL,
a lost node), up to ``--shard-retries`` times; an error the shard itself raised is not
retried (it would fail the same way). A shard lost for good leaves the other shards' parts and
markers, and the run exits 1 naming it. One actor, ``RunBoard``, holds the run's limits and
the shards' live figures; an explicit API key reaches the shards through it, never in a task's
arguments (``shard_task_kwargs``).

Ray is imported only here, and only for this executor (the ``dscall[ray]`` extra).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dscall.config import ProcessSettings
from dscall.errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_STOPPED, EXIT_USAGE, UsageError
from dscall.executors.dataset import clear_shard, is_done, prepare_folder
from dscall.executors.documents import check_documents_folder, clear_documents, prepare_documents
from dscall.executors.limit_board import LimitBoard, board_limits
from dscall.executors.live import PUSH_INTERVAL_S, ProgressBoard, show
from dscall.executors.merge import merge_into
from dscall.executors.ray_address import check_reachable
from dscall.executors.shard import ShardResult, run_shard
from dscall.executors.shards import Plan, ShardPlan, plan_shards, settings_fingerprint
from dscall.stats import RunStats

Notify = Callable[[str], None]
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(slots=True)
class ShardOutcome:
    """One shard as the driver saw it end: ran, skipped (done before), or lost."""

    rank: int
    state: str  # "ran", "skipped" (its marker matched), "lost" (failed for good)
    exit_code: int
    rows: int
    error: str | None = None
    wall_time_s: float | None = None  # the shard's own, from its start in its worker
    documents_rows: int = 0  # its --documents-out part's
    max_rss_kb: int | None = None  # its worker's peak resident memory (ran shards only)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "state": self.state,
            "exit_code": self.exit_code,
            "rows": self.rows,
            "documents_rows": self.documents_rows,
            "error": self.error,
            "wall_time_s": self.wall_time_s,
            "max_rss_kb": self.max_rss_kb,
        }


@dataclass(slots=True)
class DatasetResult:
    world_size: int
    shards: list[ShardOutcome] = field(default_factory=list)

    @property
    def rows_written(self) -> int:
        return sum(shard.rows for shard in self.shards)

    @property
    def documents_rows_written(self) -> int:
        return sum(shard.documents_rows for shard in self.shards)

    @property
    def exit_code(self) -> int:
        codes = [shard.exit_code for shard in self.shards]
        ran = [s for s in self.shards if s.state != "skipped"]
        if ran and all(s.exit_code == EXIT_USAGE for s in ran):
            return EXIT_USAGE
        if EXIT_STOPPED in codes:
            return EXIT_STOPPED
        if any(code != EXIT_OK for code in codes):
            return EXIT_SOME_FAILED
        return EXIT_OK

    def failed(self) -> list[ShardOutcome]:
        """The shards that ended without all their rows (lost, stopped, or a usage error)."""
        return [s for s in self.shards if s.state == "lost" or s.exit_code >= EXIT_USAGE]


def import_ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise UsageError(
            "--executor ray needs Ray: pip install 'dscall[ray]' (or pass --executor local)"
        ) from exc


def run_on_ray(
    settings: ProcessSettings, api_key: str | None, stats: RunStats, notify: Notify
) -> DatasetResult:
    """Run ``settings`` as shards on Ray; sum their figures into ``stats``. With ``--shards``
    and every shard done already, Ray is not even started."""
    documents = settings.output.documents_out
    if documents is not None:
        check_documents_folder(settings.output.out, documents)
    ray = import_ray()
    shards = settings.executor.shards
    started_here = False
    try:
        if shards is None:
            started_here = _connect(ray, settings.executor.ray_address)
            shards = max(1, int(ray.cluster_resources().get("CPU", 1)))
        plan = _plan(settings, shards, stats, notify)
        result, todo = _skip_done(settings, plan)
        if todo and not ray.is_initialized():
            started_here = _connect(ray, settings.executor.ray_address)
        if todo and documents is not None:
            for shard in todo:  # as clear_shard in _run_shards: a task never started
                clear_documents(documents, shard)
        if todo:
            _run_shards(ray, settings, todo, api_key, result, stats, notify)
        return result
    finally:
        if started_here:
            ray.shutdown()


def _plan(settings: ProcessSettings, world_size: int, stats: RunStats, notify: Notify) -> Plan:
    out = settings.output
    prepare_folder(out.out, world_size, settings.inputs, out.force)
    if out.documents_out is not None:
        prepare_documents(out.documents_out, world_size, settings.inputs, out.force)
    plan = plan_shards(settings, world_size)
    if plan.documents == 0:
        shown = " ".join(settings.inputs)
        raise UsageError(f"no supported documents (.pdf .docx .txt .md) found in {shown}")
    for skipped in plan.skipped:
        stats.front.skipped += 1
        notify(f"skipped {skipped.path}: {skipped.reason}")
    return plan


def _skip_done(settings: ProcessSettings, plan: Plan) -> tuple[DatasetResult, list[ShardPlan]]:
    """The shards done already (as outcomes) and those to run."""
    folder = settings.output.out
    fingerprint = settings_fingerprint(settings)
    result = DatasetResult(plan.shards[0].world_size)
    todo: list[ShardPlan] = []
    for shard in plan.shards:
        documents = settings.output.documents_out
        done = None if settings.cache.refresh else is_done(folder, shard, fingerprint, documents)
        if done is None:
            todo.append(shard)
        else:
            rows = int(done.get("rows", 0))
            skipped = ShardOutcome(shard.rank, "skipped", EXIT_OK, rows)
            skipped.documents_rows = int(done.get("documents_rows", 0))
            result.shards.append(skipped)
    return result, todo


def _connect(ray: Any, address: str | None) -> bool:
    """Start or reach Ray; True when this call initialised it (the driver then stops it)."""
    if ray.is_initialized():  # a caller's own Ray (a notebook, a test)
        return False
    # No dashboard, and the workers' output is not streamed into the driver's terminal: the
    # shards hand their notes back with their results instead.
    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
    }
    host = (address or "").rsplit(":", 1)[0].strip("[]")
    if address is None or host in _LOOPBACK:
        # A Ray of this machine only: its processes listen on loopback, and the driver must
        # say so (else Ray picks the machine's network address and finds no one there).
        options["_node_ip_address"] = "127.0.0.1"
    try:
        if address is None:
            ray.init(**options)
        else:
            check_reachable(address)  # nothing listening: ray.init would retry for ever
            ray.init(address=address, **options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = address or "this machine"
        raise UsageError(f"cannot start or reach Ray at {where}: {_one_line(exc)}") from exc
    return True


def _run_shards(
    ray: Any,
    settings: ProcessSettings,
    todo: list[ShardPlan],
    api_key: str | None,
    result: DatasetResult,
    stats: RunStats,
    notify: Notify,
) -> None:
    folder = settings.output.out
    if result.shards:
        notify(f"{len(result.shards)} of {result.world_size} shards already done: skipped")
    task = ray.remote(run_shard)
    # One actor for the live figures and the limits: one worker process to start, not two,
    # while the shards' own workers start on the same CPUs.
    board = limits = ray.remote(num_cpus=0)(RunBoard).remote(
        # A shard without documents never joins: it holds nothing
        *board_limits(settings, [s.rank for s in todo if s.sources], result.world_size)
    )
    if api_key is not None:  # not waited for: the actor starts while the shards' workers do
        limits.hold_api_key.remote(api_key)
    pending: dict[Any, int] = {}
    for shard in todo:
        clear_shard(folder, shard)  # the task clears it too; this covers a task never started
        options = task.options(
            name=f"dscall-shard-{shard.rank:05d}",
            num_cpus=1,
            max_retries=settings.executor.shard_retries,
            retry_exceptions=False,
        )
        kwargs = shard_task_kwargs(settings, shard, api_key is not None, board, limits)
        pending[options.remote(**kwargs)] = shard.rank
    finished = RunStats()  # the shards that ended; shown with the live figures of the others
    merge_into(finished, stats)  # what the driver counted itself (files discovery skipped)
    live: dict[int, RunStats] = {}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=PUSH_INTERVAL_S)
            if ready:
                rank = pending.pop(ready[0])
                outcome = _collect(ray, ready[0], rank, finished, notify)
                result.shards.append(outcome)
                board.drop.remote(rank)
                if outcome.state == "lost":  # it never said it was done: its slots go back
                    limits.lost.remote(rank)
            else:
                live = ray.get(board.snapshot.remote())
            running = set(pending.values())
            show(stats, finished, {rank: s for rank, s in live.items() if rank in running})
    finally:
        for ref in pending:  # interrupted: the shards still running are stopped
            ray.cancel(ref, force=True)
        ray.kill(board)
    result.shards.sort(key=lambda shard: shard.rank)


class RunBoard(LimitBoard, ProgressBoard):
    """The run's one actor: its cluster-wide limits (``LimitBoard``) and the shards' live
    figures (``ProgressBoard``)."""

    def __init__(self, *limits: Any) -> None:
        LimitBoard.__init__(self, *limits)
        ProgressBoard.__init__(self)


def shard_task_kwargs(
    settings: ProcessSettings, shard: ShardPlan, key_given: bool, board: Any, limits: Any
) -> dict[str, Any]:
    """``run_shard``'s arguments for one shard's task. Never the API key: Ray keeps a task's
    arguments in its spec (for retries, and sent for scheduling). With ``key_given`` the shard
    asks the ``limits`` board, to which the driver handed the key, for it."""
    return {
        "settings": settings,
        "rank": shard.rank,
        "world_size": shard.world_size,
        "plan": shard,
        "key_on_board": key_given,
        "board": board,
        "limits": limits,
        "directory": os.getcwd(),
    }


def _collect(ray: Any, ref: Any, rank: int, stats: RunStats, notify: Notify) -> ShardOutcome:
    try:
        shard: ShardResult = ray.get(ref)
    except ray.exceptions.RayError as exc:  # its worker died more often than retried
        # A task's own exception: its cause, not Ray's header line (task name, pid, colours).
        cause = getattr(exc, "cause", None)
        reason = _one_line(exc) if cause is None else f"{type(cause).__name__}: {_one_line(cause)}"
        notify(f"shard {rank} failed: {reason}")
        return ShardOutcome(rank, "lost", EXIT_SOME_FAILED, 0, reason)
    merge_into(stats, shard.stats)
    for note in shard.notes:
        notify(f"shard {rank}: {note}")
    if shard.error is not None:
        notify(f"shard {rank} stopped: {shard.error}")
    wall = round(shard.stats.elapsed_s(), 3)
    outcome = ShardOutcome(rank, "ran", shard.exit_code, shard.rows, shard.error, wall)
    outcome.documents_rows, outcome.max_rss_kb = shard.documents_rows, shard.max_rss_kb
    return outcome


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first[:300]
