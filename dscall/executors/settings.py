"""Where a run's stages run (SPEC §14): this process, or shards on a Ray cluster.

Apart from ``dscall.config`` so that it stays within its size; it holds the one field of
``ProcessSettings`` that a shard ignores (see ``shards.settings_fingerprint``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ExecutorChoice = Literal["local", "ray"]
DEFAULT_SHARD_RETRIES = 3  # --executor ray: runs again of a shard whose worker died


@dataclass(frozen=True, slots=True)
class ExecutorSettings:
    kind: ExecutorChoice = "local"
    ray_address: str | None = None  # None: start a Ray on this machine for the run
    shards: int | None = None  # None: one per CPU of the cluster
    shard_retries: int = DEFAULT_SHARD_RETRIES
