"""Inputs -> shards, deterministically, and the settings each shard runs with.

A document's shard is ``sha256(doc_path) mod world_size``: stable across reruns, independent
of the order files are listed in and of which other files exist, so a folder that grows keeps
every old document in its shard (SPEC §14). Discovery runs once, on the driver; each shard is
handed its share in input order.

Each shard gets a static share of the limits that the SPEC says hold for the whole run
(``--max-concurrency``, ``--concurrency``, ``--rpm``, ``--tpm``, ``--budget-usd``, and an
endpoint's own limits): their sum over the shards never exceeds what was asked. A shared,
leased pool (a Ray actor) that lets a busy shard use an idle one's share is the next step.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from dscall.config import CallSettings, EndpointSettings, ProcessSettings
from dscall.documents.discover import discover
from dscall.types import SkippedFile, SourceFile

Notify = Callable[[str], None]


def shard_of(doc_path: str, world_size: int) -> int:
    """The rank of the shard that reads the document whose relative path is ``doc_path``."""
    digest = hashlib.sha256(doc_path.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % world_size


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """The documents of one shard, in input order, and a digest of what they were when listed
    (path, size, mtime): a completion marker holds only while the digest is the same."""

    rank: int
    world_size: int
    sources: tuple[SourceFile, ...]
    inputs_digest: str


@dataclass(frozen=True, slots=True)
class Plan:
    shards: tuple[ShardPlan, ...]
    skipped: tuple[SkippedFile, ...]  # what discovery passed over (reported by the driver)

    @property
    def documents(self) -> int:
        return sum(len(shard.sources) for shard in self.shards)


def plan_shards(settings: ProcessSettings, world_size: int) -> Plan:
    """Discover the inputs once and split them into ``world_size`` shards."""
    by_rank: list[list[SourceFile]] = [[] for _ in range(world_size)]
    skipped: list[SkippedFile] = []
    for found in discover(settings.inputs, settings.discovery):
        if isinstance(found, SkippedFile):
            skipped.append(found)
        else:
            by_rank[shard_of(found.rel_path, world_size)].append(found)
    shards = tuple(
        ShardPlan(rank, world_size, tuple(sources), inputs_digest(sources))
        for rank, sources in enumerate(by_rank)
    )
    return Plan(shards, tuple(skipped))


def inputs_digest(sources: Iterable[SourceFile]) -> str:
    """sha256 over each document's (doc_path, size, mtime_ns), in order: a file added, removed
    or changed makes it differ."""
    digest = hashlib.sha256()
    for source in sources:
        try:
            mtime_ns = os.stat(source.path).st_mtime_ns
        except OSError:  # gone since it was listed: the shard will report it
            mtime_ns = -1
        line = f"{source.rel_path}\0{source.size}\0{mtime_ns}\n"
        digest.update(line.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def settings_fingerprint(settings: ProcessSettings) -> str:
    """sha256 of the settings that decide a shard's rows: the inputs, how they are read and
    chunked, the prompts and steps, the endpoints (the answer source), the namespace, the
    columns. Not the limits, retries, timeouts, output paths or audit log: changing those does
    not change the rows, so it does not make a finished shard run again."""
    call = settings.call
    chosen: dict[str, Any] = {
        "inputs": list(settings.inputs),
        "discovery": asdict(settings.discovery),
        "extract": asdict(replace(settings.extract, workers=0)),
        "chunk": asdict(settings.chunk),
        "prompt": asdict(settings.prompt),
        "steps": [asdict(step) for step in settings.steps],
        "allow_partial": settings.allow_partial,
        "call": {
            "base_url": call.base_url,
            "provider": call.provider,
            "endpoints": [asdict(endpoint) for endpoint in call.endpoints],
        },
        "namespace": settings.cache.namespace,
        "cache": settings.cache.enabled,
        "include_text": settings.output.include_text,
        "prices_file": str(settings.prices_file) if settings.prices_file else None,
        "mock": settings.mock,
    }
    text = json.dumps(chosen, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def part_name(rank: int, world_size: int) -> str:
    return f"part-{rank:05d}-of-{world_size:05d}.parquet"


def marker_name(rank: int) -> str:
    return f"_SHARD-{rank:05d}.json"


def shard_settings(
    settings: ProcessSettings, rank: int, world_size: int, held: bool = False
) -> ProcessSettings:
    """``settings`` as shard ``rank`` of ``world_size`` runs them: its own part of ``--out``
    (a folder), its share of the limits, one extraction worker (a shard is one CPU's task), no
    summary or metrics files of its own (the driver writes them for the whole run), and its rank
    in the audit log's caller.

    ``held``: the run's limit board (``executors.limit_board``) holds the limits for all
    shards and moves each one's share as it runs. The limits are then kept whole here (its
    connection pool and windows can grow to what it borrows); the board sets the shard's
    share before its first call. Only ``--concurrency``, where its limiter starts, is split."""
    out = settings.output
    folder = out.out
    from dscall.output.audit import default_caller

    caller = f"{settings.caller or default_caller()}/shard-{rank:05d}"
    extract = settings.extract
    if extract.workers == 0:
        extract = replace(extract, workers=1)
    return replace(
        settings,
        output=replace(
            out,
            out=folder / part_name(rank, world_size),
            summary_json=None,
            metrics_port=None,
            metrics_textfile=None,
        ),
        call=_started_call(settings.call, world_size)
        if held
        else _shared_call(settings.call, world_size),
        extract=extract,
        budget_usd=None if settings.budget_usd is None else settings.budget_usd / world_size,
        caller=caller,
    )


def _share(value: int, world_size: int) -> int:
    return max(1, value // world_size)


def _share_or_none(value: int | None, world_size: int) -> int | None:
    return None if value is None else _share(value, world_size)


def _started_call(call: CallSettings, world_size: int) -> CallSettings:
    return replace(call, concurrency=max(1, math.ceil(call.concurrency / world_size)))


def _shared_call(call: CallSettings, world_size: int) -> CallSettings:
    max_concurrency = _share(call.max_concurrency, world_size)
    return replace(
        call,
        concurrency=min(max_concurrency, max(1, math.ceil(call.concurrency / world_size))),
        max_concurrency=max_concurrency,
        rpm=_share_or_none(call.rpm, world_size),
        tpm=_share_or_none(call.tpm, world_size),
        endpoints=tuple(_shared_endpoint(e, world_size) for e in call.endpoints),
    )


def _shared_endpoint(endpoint: EndpointSettings, world_size: int) -> EndpointSettings:
    return replace(
        endpoint,
        max_concurrency=_share_or_none(endpoint.max_concurrency, world_size),
        rpm=_share_or_none(endpoint.rpm, world_size),
        tpm=_share_or_none(endpoint.tpm, world_size),
    )
