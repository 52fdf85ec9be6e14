"""One endpoint's limits across the cluster's shards (``executors.limit_board``): its
``max_concurrency`` as caps that follow each shard's demand, its throttle cuts passed on, its
``rpm``/``tpm`` split between the shards still running. Plain arithmetic, tested directly.

A shard counts as holding ``max(cap it runs with, requests it has in flight, cap just sent)``,
and a rise is granted only out of what no shard holds, so the requests in flight summed over
the shards never pass the endpoint's limit, even while caps move.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EndpointState:
    """One endpoint's limiter in a shard, as it syncs."""

    cap: int  # the ceiling its limiter runs with now
    in_flight: int
    waiting: int  # requests waiting for a slot
    cuts: int  # cuts on its own throttles so far


@dataclass(frozen=True, slots=True)
class EndpointShare:
    """What the board answers for one endpoint of a shard."""

    cap: int
    rpm: int | None
    tpm: int | None
    peer_cuts: int  # cuts of other shards since its last sync: cut (once) when above 0


@dataclass(slots=True)
class _Slots:
    held: int  # slots counted as its own (see the module docstring)
    demand: int = 0
    cuts: int = 0
    seen_cuts: int = 0  # the pool's cut count when it last synced
    done: bool = False


class SlotPool:
    def __init__(
        self,
        ranks: list[int],
        world_size: int,
        max_concurrency: int,
        rpm: int | None = None,
        tpm: int | None = None,
    ) -> None:
        self._total = max_concurrency
        self._rpm, self._tpm = rpm, tpm
        self._even = max(1, max_concurrency // max(1, world_size))
        self._shards = {rank: _Slots(held=self._even) for rank in ranks}
        self._cuts = 0

    def join(self, rank: int, retry: bool) -> EndpointShare:
        """A shard's attempt starts (a retry's dead attempt holds nothing any more)."""
        shard = self._shards[rank]
        if retry:
            shard.held = 0
        cap = max(1, min(max(self._even, shard.held), self._free(rank)))
        shard.held = cap
        shard.seen_cuts = self._cuts
        return self._share(cap, 0)

    def sync(self, rank: int, state: EndpointState) -> EndpointShare:
        shard = self._shards[rank]
        peer_cuts = self._cuts - shard.seen_cuts
        if state.cuts > shard.cuts:  # throttled on its own: the others cut too
            self._cuts += state.cuts - shard.cuts
            shard.cuts = state.cuts
        shard.seen_cuts = self._cuts
        shard.demand = state.in_flight + state.waiting
        now = max(state.cap, state.in_flight)
        cap = max(1, min(self._target(rank), self._free(rank)))
        shard.held = max(now, cap)
        return self._share(cap, peer_cuts)

    def finished(self, rank: int) -> None:
        """``rank`` ended (done, or lost for good): its slots and rates go to the others."""
        shard = self._shards.get(rank)
        if shard is not None:
            shard.done = True
            shard.held = shard.demand = 0

    def held(self) -> int:
        """Slots held by all shards together (never above ``max_concurrency``)."""
        return sum(shard.held for shard in self._shards.values())

    def _share(self, cap: int, peer_cuts: int) -> EndpointShare:
        running = sum(1 for s in self._shards.values() if not s.done) or 1
        rpm = None if self._rpm is None else max(1, self._rpm // running)
        tpm = None if self._tpm is None else max(1, self._tpm // running)
        return EndpointShare(cap, rpm, tpm, peer_cuts)

    def _free(self, rank: int) -> int:
        others = sum(s.held for r, s in self._shards.items() if r != rank)
        return self._total - others

    def _target(self, rank: int) -> int:
        """Its fair cap: what it asks for plus an even part of what nobody asks for, or, when
        the shards ask for more than the limit, its part of the limit by demand."""
        running = [s for s in self._shards.values() if not s.done]
        demand = sum(s.demand for s in running)
        mine = self._shards[rank].demand
        if demand <= self._total:
            return mine + (self._total - demand) // max(1, len(running))
        return self._total * mine // demand
