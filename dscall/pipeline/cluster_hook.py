"""What a run lets a cluster executor hold it to (SPEC §14): once its engine is built and
before its first call, ``attached`` is entered with the engine, the endpoints' limits and the
budget, and stays entered until the last call has ended. The Ray executor's shard side
(``dscall.executors.cluster_link``) moves the limits and the budget to the run's share of the
cluster's, and stops the engine when the cluster's budget is spent. A local run has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from dscall.calls.limits import CallLimits
from dscall.pipeline.budget import Budget
from dscall.pipeline.engine import Engine


class ClusterHook(Protocol):
    def attached(
        self, engine: Engine, limits: Sequence[CallLimits], budget: Budget | None
    ) -> AbstractAsyncContextManager[None]: ...
