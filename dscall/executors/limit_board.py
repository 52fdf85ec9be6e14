"""The cluster's limits, held for the whole run (SPEC §14): ``--max-concurrency``, ``--rpm``,
``--tpm`` and ``--budget-usd`` are the run's, not each shard's.

``LimitBoard`` is a Ray actor (made remote by the driver, ``num_cpus=0``); each shard's
``ClusterLink`` (``executors.cluster_link``) syncs with it about five times a second. The
board is plain arithmetic over the shards' reports, so the unit tests call it directly.

- **Concurrency.** Each running shard holds a cap (its local limiter's ceiling). The board
  counts a shard as holding ``max(cap it runs with, requests it has in flight, cap just sent)``
  and grants a rise only out of what no shard holds, so the calls in flight summed over the
  shards never pass the run's limit, even while caps move. Caps follow demand (in flight plus
  waiting): a busy shard borrows what an idle or finished one does not use.
- **Throttles.** A shard whose limiter cut on the endpoint's 429s says so; the board passes the
  cut on, and every other shard cuts too at its next sync: the endpoint throttles the account,
  so the whole cluster backs off, not just the shard that happened to be refused.
- **Rates.** ``--rpm``/``--tpm`` are split evenly between the shards still running; a finished
  shard's share goes to the others.
- **Budget.** A shard's lease is what its own ``Budget`` may commit (spend plus reservations).
  It starts at nothing; a hold that would pass it asks for more there and then (``top_up``),
  and each sync shrinks it back to what the shard has committed plus a little slack. So the
  leases follow the money committed across the cluster, and when the pool cannot cover a
  hold, the budget is reached for the run exactly where one local run would stop: that shard
  stops, and every other shard is told to stop at its next sync. Like caps, a lease shrinks
  in the board's count only once the shard reports running with the smaller one. A finished
  shard keeps only what it spent. A shard whose worker died keeps its whole lease counted (it
  may have spent all of it); its retry starts from nothing again.

Several endpoints: their own limits stay split evenly (``shards.shard_settings``); the board
then coordinates the budget only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dscall.calls.endpoint_plan import plan_endpoints
from dscall.config import ProcessSettings

# A lease's slack (and the least top-up) as a share of an even split of the budget, so that a
# busy shard does not ask per call.
TOP_UP_SHARE = 0.25


def board_limits(settings: ProcessSettings, ranks: list[int], world_size: int) -> tuple[Any, ...]:
    """``LimitBoard``'s arguments for a run of ``settings`` (its whole, unsplit limits)."""
    budget = settings.budget_usd
    if not holds_limits(settings):
        return (ranks, world_size, None, None, None, budget)
    one = plan_endpoints(settings.call, settings.mock).endpoints[0]
    return (ranks, world_size, one.max_concurrency, one.rpm, one.tpm, budget)


def holds_limits(settings: ProcessSettings) -> bool:
    """Whether the board holds the concurrency and rates of a run of ``settings`` (one
    endpoint), not only its budget."""
    return len(plan_endpoints(settings.call, settings.mock).endpoints) == 1


@dataclass(frozen=True, slots=True)
class ShardReport:
    """A shard's state as it syncs: its cap, calls, throttle cuts and money committed."""

    rank: int
    cap: int  # the ceiling its limiter runs with now
    in_flight: int
    waiting: int  # requests waiting for a slot
    cuts: int  # cuts on its own throttles so far
    committed_usd: float = 0.0  # spent plus reserved (0 without --budget-usd)
    done: bool = False
    lease_usd: float = 0.0  # the lease its Budget runs with now


@dataclass(frozen=True, slots=True)
class BoardReply:
    cap: int | None  # its new ceiling; None: concurrency is not coordinated
    rpm: int | None
    tpm: int | None
    peer_cuts: int  # cuts of other shards since its last sync: cut that many times (at most once)
    stop: str | None  # the run's budget is reached: why (the shard stops dispatching)
    budget_usd: float | None = None  # its lease (None: unchanged)


@dataclass(slots=True)
class _Shard:
    held: int  # slots counted as its own (see the module docstring)
    demand: int = 0
    cuts: int = 0
    seen_cuts: int = 0  # the board's cut count when it last synced
    lease_usd: float = 0.0
    attempts: int = 0
    done: bool = False


class LimitBoard:
    def __init__(
        self,
        ranks: list[int],
        world_size: int,
        max_concurrency: int | None,
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: float | None = None,
    ) -> None:
        """``ranks``: the shards of this run (those done before are not run again);
        ``max_concurrency`` None: concurrency and rates are not coordinated."""
        self._total = max_concurrency
        self._rpm, self._tpm = rpm, tpm
        self._budget = budget_usd
        self._world = max(1, world_size)
        share = 0 if max_concurrency is None else max(1, max_concurrency // self._world)
        self._shards = {rank: _Shard(held=share) for rank in ranks}
        self._sunk_usd = 0.0  # leases of attempts whose worker died
        self._cuts = 0
        self._stop: str | None = None

    def join(self, rank: int) -> BoardReply:
        """A shard's attempt starts: its cap and lease. A retry's dead attempt keeps its lease
        counted as spent and its slots are freed (its worker is gone)."""
        shard = self._shards[rank]
        shard.attempts += 1
        if shard.attempts > 1:
            self._sunk_usd += shard.lease_usd
            shard.lease_usd = 0.0
            shard.held = 0
        cap = None
        if self._total is not None:
            even = max(1, self._total // self._world)
            cap = max(1, min(max(even, shard.held), self._free(rank)))
            shard.held = cap
        shard.seen_cuts = self._cuts
        lease = None if self._budget is None else 0.0
        return self._reply(shard, cap, budget=lease)

    def sync(self, report: ShardReport) -> BoardReply:
        shard = self._shards[report.rank]
        peer_cuts = self._cuts - shard.seen_cuts
        if report.cuts > shard.cuts:  # throttled on its own: the others cut too
            self._cuts += report.cuts - shard.cuts
            shard.cuts = report.cuts
        shard.seen_cuts = self._cuts
        if report.done:
            shard.done = True
            shard.held = shard.demand = 0
            if self._budget is not None:  # what it did not spend goes back to the pool
                shard.lease_usd = report.committed_usd
            return self._reply(shard, None, peer_cuts=0)
        lease = None
        if self._budget is not None:
            lease = min(report.lease_usd, report.committed_usd + self._slack())
            shard.lease_usd = max(report.lease_usd, report.committed_usd)
        cap = None
        if self._total is not None:
            shard.demand = report.in_flight + report.waiting
            now = max(report.cap, report.in_flight)
            cap = max(1, min(self._target(report.rank), self._free(report.rank)))
            shard.held = max(now, cap)
        return self._reply(shard, cap, peer_cuts=peer_cuts, budget=lease)

    def top_up(self, rank: int, need_usd: float) -> float:
        """More lease for ``rank``, whose next hold passes its lease by ``need_usd``: the amount
        granted, or 0 when the run's budget cannot cover it (then every shard is stopped)."""
        if self._budget is None or self._stop is not None:
            return 0.0
        if self._pool() + 1e-12 < need_usd:
            self._stop = (
                f"budget of ${self._budget:.4f} reached for the whole run "
                f"(${self._committed():.4f} of it committed by the shards)"
            )
            return 0.0
        granted = self._grant(max(need_usd, self._slack()))
        self._shards[rank].lease_usd += granted
        return granted

    def lost(self, rank: int) -> None:
        """``rank`` failed for good (the driver saw its retries run out): its slots and rates go
        to the others; its lease stays counted, as it may have been spent."""
        shard = self._shards.get(rank)
        if shard is not None:
            shard.done = True
            shard.held = shard.demand = 0

    def stop_reason(self) -> str | None:
        return self._stop

    def held(self) -> int:
        """Slots held by all shards together (never above ``max_concurrency``)."""
        return sum(shard.held for shard in self._shards.values())

    def _reply(
        self, shard: _Shard, cap: int | None, peer_cuts: int = 0, budget: float | None = None
    ) -> BoardReply:
        running = sum(1 for s in self._shards.values() if not s.done) or 1
        rpm = None if self._rpm is None else max(1, self._rpm // running)
        tpm = None if self._tpm is None else max(1, self._tpm // running)
        if self._total is None:
            rpm = tpm = None
        return BoardReply(cap, rpm, tpm, peer_cuts, self._stop, budget)

    def _free(self, rank: int) -> int:
        assert self._total is not None
        others = sum(s.held for r, s in self._shards.items() if r != rank)
        return self._total - others

    def _target(self, rank: int) -> int:
        """Its fair cap: what it asks for plus an even part of what nobody asks for, or, when
        the shards ask for more than the run's limit, its part of the limit by demand."""
        assert self._total is not None
        running = [s for s in self._shards.values() if not s.done]
        demand = sum(s.demand for s in running)
        mine = self._shards[rank].demand
        if demand <= self._total:
            return mine + (self._total - demand) // max(1, len(running))
        return self._total * mine // demand

    def _slack(self) -> float:
        return 0.0 if self._budget is None else TOP_UP_SHARE * self._budget / self._world

    def _committed(self) -> float:
        return self._sunk_usd + sum(s.lease_usd for s in self._shards.values())

    def _pool(self) -> float:
        return 0.0 if self._budget is None else max(0.0, self._budget - self._committed())

    def _grant(self, want: float) -> float:
        return min(want, self._pool())
