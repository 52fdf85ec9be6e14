"""The cluster's limit board as plain arithmetic: shards' reports in, caps, rates, cuts and
budget leases out (``dscall.executors.limit_board``). The Ray tests run it as an actor."""

from __future__ import annotations

import random

import pytest

from dscall.executors import limit_board
from dscall.executors.limit_board import BoardReply as Reply
from dscall.executors.slot_pool import EndpointState


class BoardReply:
    """A reply seen from a one-endpoint run (its only endpoint's share)."""

    def __init__(self, reply: Reply) -> None:
        one = reply.endpoints[0] if reply.endpoints else None
        self.cap = None if one is None else one.cap
        self.rpm = None if one is None else one.rpm
        self.tpm = None if one is None else one.tpm
        self.peer_cuts = 0 if one is None else one.peer_cuts
        self.stop = reply.stop
        self.budget_usd = reply.budget_usd


def ShardReport(
    rank: int,
    cap: int,
    in_flight: int,
    waiting: int,
    cuts: int,
    committed_usd: float = 0.0,
    done: bool = False,
    lease_usd: float = 0.0,
) -> limit_board.ShardReport:
    state = EndpointState(cap, in_flight, waiting, cuts)
    return limit_board.ShardReport(rank, (state,), committed_usd, done, lease_usd)


class LimitBoard:
    """The board of a run with one endpoint (``max_concurrency`` None: with none)."""

    def __init__(
        self,
        ranks: list[int],
        world: int,
        max_concurrency: int | None,
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: float | None = None,
    ) -> None:
        limits = [] if max_concurrency is None else [(max_concurrency, rpm, tpm)]
        self.board = limit_board.LimitBoard(ranks, world, limits, budget_usd)

    def join(self, rank: int) -> BoardReply:
        return BoardReply(self.board.join(rank))

    def sync(self, report: limit_board.ShardReport) -> BoardReply:
        return BoardReply(self.board.sync(report))

    def top_up(self, rank: int, need: float) -> float:
        return self.board.top_up(rank, need)

    def stop_reason(self) -> str | None:
        return self.board.stop_reason()

    def held(self) -> int:
        return self.board.held()

    def lost(self, rank: int) -> None:
        self.board.lost(rank)


class FakeShard:
    """A shard's limiter as the board sees it: calls in flight never above the cap it runs
    with, except while draining after a cut of the cap."""

    def __init__(self, rank: int, reply: BoardReply) -> None:
        assert reply.cap is not None
        self.rank = rank
        self.cap = reply.cap
        self.in_flight = 0
        self.waiting = 0
        self.cuts = 0

    def work(self, rng: random.Random) -> None:
        self.waiting = rng.choice([0, 0, 1, 5, 40])
        if rng.random() < 0.6 and self.in_flight < self.cap:
            self.in_flight = rng.randint(self.in_flight, self.cap)
        else:
            self.in_flight = rng.randint(0, self.in_flight)

    def report(self, done: bool = False) -> ShardReport:
        return ShardReport(self.rank, self.cap, self.in_flight, self.waiting, self.cuts, 0.0, done)


@pytest.mark.parametrize("seed", range(20))
def test_calls_in_flight_summed_over_shards_never_pass_the_runs_limit(seed: int) -> None:
    rng = random.Random(seed)
    total, world = rng.choice([4, 16, 64]), rng.choice([2, 3, 4])
    board = LimitBoard(list(range(world)), world, total)
    shards = [FakeShard(rank, board.join(rank)) for rank in range(world)]
    peak = 0
    for _ in range(2000):
        shard = rng.choice(shards)
        shard.work(rng)
        assert sum(s.in_flight for s in shards) <= total
        reply = board.sync(shard.report())
        assert reply.cap is not None
        assert reply.cap >= 1
        shard.cap = reply.cap
        assert board.held() <= total
        peak = max(peak, max(s.in_flight for s in shards))
    if total > world:
        assert peak > total // world  # caps did move: a shard went past its even share


def test_a_busy_shard_borrows_what_an_idle_one_does_not_use() -> None:
    board = LimitBoard([0, 1], 2, 64)
    busy, idle = (FakeShard(rank, board.join(rank)) for rank in (0, 1))
    assert (busy.cap, idle.cap) == (32, 32)
    busy.in_flight, busy.waiting = 32, 200
    idle.in_flight, idle.waiting = 1, 0
    for _ in range(3):
        idle.cap = board.sync(idle.report()).cap or 0
        busy.cap = board.sync(busy.report()).cap or 0
    assert idle.cap == 1
    assert busy.cap == 63


def test_a_lowered_cap_frees_its_slots_only_once_the_shard_runs_with_it() -> None:
    board = LimitBoard([0, 1], 2, 10)
    first, second = (FakeShard(rank, board.join(rank)) for rank in (0, 1))
    first.in_flight, first.waiting = 5, 0  # holds all 5 of its share
    second.in_flight, second.waiting = 5, 50
    first.cap = board.sync(first.report()).cap or 0
    # second asks for more, but first still runs with (and may fill) its old cap
    assert board.sync(second.report()).cap == 5
    first.in_flight = 0
    first.cap = board.sync(first.report()).cap or 0
    assert first.cap == 1  # lowered: it asks for nothing while the other asks for 55
    assert board.sync(second.report()).cap == 5  # first reported its old cap: still held
    board.sync(first.report())  # now it runs with 1
    assert board.sync(second.report()).cap == 9


def test_a_finished_shard_gives_its_slots_and_rates_to_the_others() -> None:
    board = LimitBoard([0, 1], 2, 8, rpm=600, tpm=60_000)
    first, second = (FakeShard(rank, board.join(rank)) for rank in (0, 1))
    reply = board.sync(first.report())
    assert (reply.rpm, reply.tpm) == (300, 30_000)
    board.sync(second.report(done=True))
    first.waiting = 20
    reply = board.sync(first.report())
    assert reply.cap == 8
    assert (reply.rpm, reply.tpm) == (600, 60_000)


def test_a_shards_throttle_cut_is_passed_to_every_other_shard_once() -> None:
    board = LimitBoard([0, 1, 2], 3, 30)
    shards = [FakeShard(rank, board.join(rank)) for rank in range(3)]
    shards[0].cuts = 1
    assert board.sync(shards[0].report()).peer_cuts == 0  # its own cut is not echoed
    assert board.sync(shards[1].report()).peer_cuts == 1
    assert board.sync(shards[1].report()).peer_cuts == 0
    assert board.sync(shards[2].report()).peer_cuts == 1
    assert board.sync(shards[0].report()).peer_cuts == 0


def test_a_lease_starts_at_nothing() -> None:
    board = LimitBoard([0, 1], 2, 8, rpm=600, budget_usd=1.0)
    assert board.join(0).budget_usd == 0.0  # the first hold asks


def test_each_endpoint_has_its_own_slots_rates_and_cuts() -> None:
    board = limit_board.LimitBoard([0, 1], 2, [(8, 600, None), (4, None, 1000)])
    first = board.join(0)
    board.join(1)
    assert [share.cap for share in first.endpoints] == [4, 2]
    assert (first.endpoints[0].rpm, first.endpoints[1].tpm) == (300, 500)
    busy = (EndpointState(4, 4, 30, 1), EndpointState(2, 0, 0, 0))  # a cut on the first one
    idle = (EndpointState(4, 0, 0, 0), EndpointState(2, 2, 20, 0))
    board.sync(limit_board.ShardReport(0, busy))
    reply = board.sync(limit_board.ShardReport(1, idle))
    assert [share.peer_cuts for share in reply.endpoints] == [1, 0]  # that endpoint only
    assert reply.endpoints[0].cap == 1  # it asks nothing of the first
    assert reply.endpoints[1].cap == 2  # the first shard still holds 2 of the second's 4
    assert (board.held(0), board.held(1)) == (8, 4)  # its old cap of 4 counts until it runs with 1
    board.sync(limit_board.ShardReport(1, (EndpointState(1, 0, 0, 0), idle[1])))
    again = board.sync(limit_board.ShardReport(0, busy))
    assert again.endpoints[0].cap == 7  # the second shard runs with 1 now
    assert board.held(0) <= 8


def report(rank: int, committed: float, lease: float, done: bool = False) -> ShardReport:
    return ShardReport(rank, 4, 0, 0, 0, committed, done, lease)


def test_the_leases_follow_what_the_shards_commit_and_stop_where_a_local_run_would() -> None:
    board = LimitBoard([0, 1], 2, 8, budget_usd=1.0)
    board.join(0), board.join(1)
    assert board.top_up(0, 0.6) == pytest.approx(0.6)
    assert board.top_up(1, 0.05) == pytest.approx(0.125)  # at least the slack: 1/4 of 1/2
    assert board.top_up(1, 0.3) == 0.0  # 0.6 + 0.125 + 0.3 > 1: where one run would stop
    assert "budget of $1.0000 reached for the whole run" in (board.stop_reason() or "")
    assert board.sync(report(1, 0.1, 0.125)).stop == board.stop_reason()


def test_a_lease_shrinks_to_what_is_committed_once_the_shard_runs_with_it() -> None:
    board = LimitBoard([0, 1], 2, 8, budget_usd=1.0)
    board.join(0), board.join(1)
    board.top_up(0, 0.8)  # a big reservation, answered since: 0.1 was spent
    reply = board.sync(report(0, 0.1, 0.8))
    assert reply.budget_usd == pytest.approx(0.1 + 0.125)
    assert board.top_up(1, 0.5) == 0.0  # its old lease still counts until it reports the new


def test_a_shrunk_lease_leaves_room_for_another_shard() -> None:
    board = LimitBoard([0, 1], 2, 8, budget_usd=1.0)
    board.join(0), board.join(1)
    board.top_up(0, 0.8)
    lease = board.sync(report(0, 0.1, 0.8)).budget_usd or 0.0
    board.sync(report(0, 0.1, lease))
    assert board.top_up(1, 0.5) == pytest.approx(0.5)


def test_a_finished_shard_keeps_only_what_it_spent() -> None:
    board = LimitBoard([0, 1], 2, 8, budget_usd=1.0)
    board.join(0), board.join(1)
    board.top_up(1, 0.9)
    board.sync(report(1, 0.2, 0.9, done=True))
    assert board.top_up(0, 0.8) == pytest.approx(0.8)


def test_a_retried_shards_dead_attempt_keeps_its_lease_counted() -> None:
    board = LimitBoard([0, 1], 2, 8, budget_usd=1.0)
    board.join(0), board.join(1)
    board.top_up(0, 0.7)  # then its worker dies: all of it may have been spent
    assert board.join(0).budget_usd == 0.0
    assert board.top_up(0, 0.4) == 0.0


def test_a_retried_shard_gets_slots_that_nobody_holds() -> None:
    board = LimitBoard([0, 1], 2, 8)
    board.join(0), board.join(1)
    board.sync(ShardReport(1, 4, 4, 50, 0))  # asks for more: 0 still holds its share
    assert board.held() == 8
    retry = board.join(0)
    assert retry.cap is not None
    assert retry.cap >= 1
    assert board.held() <= 8


def test_a_shard_lost_for_good_gives_its_slots_back_but_not_its_lease() -> None:
    board = LimitBoard([0, 1], 2, 8, budget_usd=1.0)
    board.join(0), board.join(1)
    board.top_up(1, 0.7)
    board.lost(1)
    assert board.held() == 4
    reply = board.sync(ShardReport(0, 4, 4, 20, 0, 0.0, False, 0.0))
    assert reply.cap == 8
    assert board.top_up(0, 0.4) == 0.0
