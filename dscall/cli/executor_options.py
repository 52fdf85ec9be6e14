"""The options of ``dscall process`` that choose where it runs (SPEC §14)."""

from __future__ import annotations

from typing import Annotated

import typer

from dscall.executors.settings import ExecutorChoice, ExecutorSettings

EXECUTOR = "Executor"

Executor = Annotated[
    ExecutorChoice,
    typer.Option(
        metavar="NAME",
        help="local (this process) or ray (shards as Ray tasks; --out names a folder that "
        "becomes a Parquet dataset; needs the ray extra).",
        rich_help_panel=EXECUTOR,
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        metavar="ADDR",
        help="Ray cluster to run on, as ray.init takes it (HOST:PORT, auto) "
        "(default: start a Ray on this machine for the run).",
        rich_help_panel=EXECUTOR,
    ),
]
Shards = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        min=1,
        help="Split the documents into N shards (default: the cluster's CPUs). Keep it the "
        "same across reruns: finished shards are then skipped.",
        rich_help_panel=EXECUTOR,
    ),
]
ShardRetries = Annotated[
    int,
    typer.Option(
        metavar="N",
        min=0,
        help="Times Ray runs a shard again whose worker died.",
        rich_help_panel=EXECUTOR,
    ),
]


def executor_settings(
    kind: ExecutorChoice, address: str | None, shards: int | None, retries: int
) -> ExecutorSettings:
    from dscall.errors import UsageError

    if kind == "local" and (address is not None or shards is not None):
        raise UsageError("--ray-address and --shards need --executor ray")
    return ExecutorSettings(kind, address, shards, retries)
