"""An explicit API key reaches Ray shards through the run's ``LimitBoard`` actor, never in a
task's arguments (Ray keeps those in the task's spec, for retries and scheduling): the
arguments the driver builds hold no key, and the board hands back the key it holds without
showing it anywhere else."""

from __future__ import annotations

import pickle
from pathlib import Path

from dscall.config import ProcessSettings
from dscall.executors.limit_board import LimitBoard, ShardReport
from dscall.executors.ray import RunBoard, shard_task_kwargs
from dscall.executors.shard import run_shard
from dscall.executors.shards import ShardPlan
from dscall.executors.slot_pool import EndpointState
from dscall.stats import RunStats

SECRET = "sk-board-only-9f8e7d6c5b4a39281706"


class Handle:
    """Stands in for a Ray actor handle (which pickles to the actor's id only)."""

    def __init__(self, name: str) -> None:
        self.name = name


def test_the_task_arguments_carry_no_key(tmp_path: Path) -> None:
    settings = ProcessSettings(inputs=(str(tmp_path),))
    shard = ShardPlan(1, 3, (), "digest")
    kwargs = shard_task_kwargs(settings, shard, True, Handle("board"), Handle("limits"))
    assert kwargs["key_on_board"] is True
    assert "api_key" not in kwargs
    assert SECRET.encode() not in pickle.dumps(kwargs)
    assert SECRET not in repr(kwargs)
    # and they are run_shard's: the task is called with them as they are
    assert set(kwargs) <= set(run_shard.__code__.co_varnames)
    without = shard_task_kwargs(settings, shard, False, Handle("board"), Handle("limits"))
    assert without["key_on_board"] is False


def test_the_board_hands_back_the_key_and_shows_it_nowhere() -> None:
    board = LimitBoard([0, 1], 2, [(8, 60, None)], budget_usd=1.0)
    assert board.api_key() is None  # none handed over: the shards use their own env
    assert "none" in repr(board)
    board.hold_api_key(SECRET)
    assert board.api_key() == SECRET
    assert SECRET not in repr(board)
    assert SECRET not in str(board)
    replies = [board.join(0), board.join(1)]
    state = (EndpointState(4, 2, 3, 0),)
    replies.append(board.sync(ShardReport(0, state, 0.1, False, 0.2)))
    replies.append(board.sync(ShardReport(1, state, 0.0, True, 0.0)))
    assert board.top_up(0, 0.1) > 0
    assert board.top_up(0, 5.0) == 0.0  # past the run's budget: stopped, with a reason
    replies.append(board.join(0))
    for reply in replies:
        assert SECRET not in repr(reply)
    assert SECRET not in str(board.stop_reason())
    assert SECRET not in repr(board)


def test_the_run_board_is_one_actor_for_limits_and_live_figures() -> None:
    # The driver starts one actor for both (one worker process fewer to start with the
    # shards'): the limits' calls and the live figures' calls reach the same object.
    board = RunBoard([0, 1], 2, [(8, None, None)])
    board.hold_api_key(SECRET)
    assert board.join(0).endpoints[0].cap == 4
    stats = RunStats()
    stats.chunks_done = 3
    board.report(0, stats)
    assert board.snapshot()[0].chunks_done == 3
    board.drop(0)
    assert board.snapshot() == {}
    assert board.api_key() == SECRET
    assert SECRET not in repr(board)
