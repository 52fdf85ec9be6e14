"""The cluster's limits, held for the whole run (SPEC §14): ``--max-concurrency``, ``--rpm``,
``--tpm`` and ``--budget-usd`` are the run's, not each shard's.

``LimitBoard`` is part of the run's one Ray actor (``executors.ray.RunBoard``); each shard's
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

Several endpoints: each has a pool of its own (its ``max_concurrency``, ``rpm``, ``tpm`` as
the run's plan gives them), and a throttle of one endpoint cuts that endpoint only.

- **The API key.** An explicit key reaches the shards through the board, not in their task
  arguments (Ray keeps a task's arguments in its spec, for retries and scheduling): the driver
  hands it over with one method call (``hold_api_key``; not a constructor argument, which Ray
  stores for actor restarts) and each shard asks for it once (``api_key``). It is held in
  memory only; no reply, report, error or ``repr`` of the board shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dscall.calls.endpoint_plan import plan_endpoints
from dscall.config import ProcessSettings
from dscall.executors.slot_pool import EndpointShare, EndpointState, SlotPool

# A lease's slack (and the least top-up) as a share of an even split of the budget, so that a
# busy shard does not ask per call.
TOP_UP_SHARE = 0.25

Limits = tuple[int, int | None, int | None]  # an endpoint's max_concurrency, rpm, tpm


def board_limits(settings: ProcessSettings, ranks: list[int], world_size: int) -> tuple[Any, ...]:
    """``LimitBoard``'s arguments for a run of ``settings`` (its whole, unsplit limits)."""
    endpoints = plan_endpoints(settings.call, settings.mock).endpoints
    limits = [(e.max_concurrency, e.rpm, e.tpm) for e in endpoints]
    return (ranks, world_size, limits, settings.budget_usd)


@dataclass(frozen=True, slots=True)
class ShardReport:
    """A shard's state as it syncs: each endpoint's limiter (in the run's order of endpoints)
    and the money it has committed."""

    rank: int
    endpoints: tuple[EndpointState, ...]
    committed_usd: float = 0.0  # spent plus reserved (0 without --budget-usd)
    done: bool = False
    lease_usd: float = 0.0  # the lease its Budget runs with now


@dataclass(frozen=True, slots=True)
class BoardReply:
    endpoints: tuple[EndpointShare, ...]  # empty: nothing changes (a finished shard)
    stop: str | None  # the run's budget is reached: why (the shard stops dispatching)
    budget_usd: float | None = None  # its lease (None: unchanged)


@dataclass(slots=True)
class _Lease:
    usd: float = 0.0
    attempts: int = 0


class LimitBoard:
    def __init__(
        self,
        ranks: list[int],
        world_size: int,
        limits: list[Limits],
        budget_usd: float | None = None,
    ) -> None:
        """``ranks``: the shards of this run (those done before are not run again)."""
        self._pools = [SlotPool(ranks, world_size, *one) for one in limits]
        self._budget = budget_usd
        self._world = max(1, world_size)
        self._leases = {rank: _Lease() for rank in ranks}
        self._sunk_usd = 0.0  # leases of attempts whose worker died
        self._stop: str | None = None
        self._api_key: str | None = None  # the run's explicit key: never shown

    def __repr__(self) -> str:
        key = "held" if self._api_key is not None else "none"
        return f"LimitBoard(shards={len(self._leases)}, endpoints={len(self._pools)}, key={key})"

    def hold_api_key(self, key: str) -> None:
        """The run's explicit API key, from the driver, for the shards (``api_key``)."""
        self._api_key = key

    def api_key(self) -> str | None:
        """The key the driver handed over (None: none was; the shards use their own env)."""
        return self._api_key

    def join(self, rank: int) -> BoardReply:
        """A shard's attempt starts: its caps and lease. A retry's dead attempt keeps its lease
        counted as spent and its slots are freed (its worker is gone)."""
        lease = self._leases[rank]
        lease.attempts += 1
        retry = lease.attempts > 1
        if retry:
            self._sunk_usd += lease.usd
            lease.usd = 0.0
        shares = tuple(pool.join(rank, retry) for pool in self._pools)
        return BoardReply(shares, self._stop, None if self._budget is None else 0.0)

    def sync(self, report: ShardReport) -> BoardReply:
        lease = self._leases[report.rank]
        if report.done:
            self.lost(report.rank)
            if self._budget is not None:  # what it did not spend goes back to the pool
                lease.usd = report.committed_usd
            return BoardReply((), self._stop)
        budget = None
        if self._budget is not None:
            budget = min(report.lease_usd, report.committed_usd + self._slack())
            lease.usd = max(report.lease_usd, report.committed_usd)
        shares = tuple(
            pool.sync(report.rank, state)
            for pool, state in zip(self._pools, report.endpoints, strict=True)
        )
        return BoardReply(shares, self._stop, budget)

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
        granted = min(max(need_usd, self._slack()), self._pool())
        self._leases[rank].usd += granted
        return granted

    def lost(self, rank: int) -> None:
        """``rank`` ended, or failed for good (the driver saw its retries run out): its slots
        and rates go to the others; its lease stays counted, as it may have been spent."""
        for pool in self._pools:
            pool.finished(rank)

    def stop_reason(self) -> str | None:
        return self._stop

    def held(self, endpoint: int = 0) -> int:
        """Slots of ``endpoint`` held by all shards together (never above its limit)."""
        return self._pools[endpoint].held()

    def _slack(self) -> float:
        return 0.0 if self._budget is None else TOP_UP_SHARE * self._budget / self._world

    def _committed(self) -> float:
        return self._sunk_usd + sum(lease.usd for lease in self._leases.values())

    def _pool(self) -> float:
        return 0.0 if self._budget is None else max(0.0, self._budget - self._committed())
