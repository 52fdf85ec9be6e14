"""The stores `dscall cache stats|clear` knows besides the result cache's namespaces: the
manifest of incremental reruns (``<cache-dir>/manifest.db``, ``documents/manifest.py``) and the
shared Redis tier (``--cache-url``, ``calls/redis_tier.py``).

Choices made where the SPEC is silent:

- The manifest holds chunks, not answers, and is shared by every namespace: it is counted on
  its own line, and removed only by ``clear --all`` (its loss costs a re-extraction, never a
  call). Its WAL and shared-memory files go with it.
- Redis keys name a request hash only, and the hash covers the namespace: which namespace an
  answer belongs to cannot be told, so Redis is counted as a whole and cleared only by
  ``clear --all``. Only dscall's answer keys (``ANSWER_PREFIX``) are deleted, found with SCAN
  by that prefix (never KEYS, never FLUSHDB: the database may hold others' keys); leases stay,
  as the local clear keeps them: a run in progress on another host goes on with its single
  flight, and a lease left by a dead one expires by its TTL. Sizes are the values' bytes
  (STRLEN), which every Redis-compatible server answers, unlike MEMORY USAGE.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dscall.calls.redis_scripts import ANSWER_PREFIX, LEASE_PREFIX
from dscall.config import REDIS_BATCH, REDIS_TIMEOUT_S
from dscall.documents.manifest import MANIFEST_NAME
from dscall.errors import UsageError, one_line, register_secret
from dscall.secret_urls import public_url, url_secrets

_MANIFEST_FILES = ("", "-wal", "-shm")  # sqlite's WAL mode keeps two files beside the db


@dataclass(frozen=True, slots=True)
class StoreStats:
    name: str  # as the stats table shows it
    entries: int
    bytes: int
    where: str  # its file, or the Redis URL without its password


def manifest_stats(directory: Path) -> StoreStats | None:
    """The manifest's documents and size on disk, or None when there is none."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        return None
    size = sum(
        extra.stat().st_size
        for extra in (path.with_name(path.name + end) for end in _MANIFEST_FILES)
        if extra.is_file()
    )
    try:
        # Read only (mode=ro): looking must not create or change anything.
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            (entries,) = db.execute("SELECT count(*) FROM documents").fetchone()
    except sqlite3.Error as exc:
        raise UsageError(f"cannot read the manifest {path}: {exc}") from exc
    return StoreStats("manifest", int(entries), size, path.name)


def clear_manifest(directory: Path) -> int:
    """Remove the manifest (and its WAL files); returns how many documents it held."""
    found = manifest_stats(directory)
    if found is None:
        return 0
    path = Path(directory) / MANIFEST_NAME
    for end in _MANIFEST_FILES:
        try:
            path.with_name(path.name + end).unlink(missing_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot remove the manifest {path}{end}: {exc}") from exc
    return found.entries


@contextlib.contextmanager
def _redis(url: str) -> Iterator[Any]:
    """A synchronous client of ``url``; any failure a one-line UsageError without the
    password."""
    for secret in url_secrets(url):
        register_secret(secret)
    shown = public_url(url)
    try:
        import redis
    except ImportError as exc:
        raise UsageError("--cache-url needs the redis client: pip install 'dscall[redis]'") from exc
    try:
        client = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
    except ValueError as exc:
        raise UsageError(f"--cache-url {shown}: {one_line(str(exc))}") from exc
    try:
        yield client
    except (redis.RedisError, OSError) as exc:
        reason = one_line(str(exc) or type(exc).__name__, 160)
        raise UsageError(f"cannot reach the shared cache at {shown}: {reason}") from exc
    finally:
        client.close()


def _scan(client: Any, prefix: str) -> Iterator[list[bytes]]:
    """dscall's keys under ``prefix``, a batch at a time (SCAN: never blocks the server)."""
    batch: list[bytes] = []
    for key in client.scan_iter(match=prefix + "*", count=REDIS_BATCH):
        batch.append(key)
        if len(batch) >= REDIS_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def redis_stats(url: str) -> list[StoreStats]:
    """dscall's answers and leases in Redis: how many and their bytes."""
    found = []
    with _redis(url) as client:
        for name, prefix in (("redis answers", ANSWER_PREFIX), ("redis leases", LEASE_PREFIX)):
            entries = size = 0
            for batch in _scan(client, prefix):
                pipe = client.pipeline(transaction=False)
                for key in batch:
                    pipe.strlen(key)
                sizes = pipe.execute()
                entries += len(batch)
                size += sum(int(n) for n in sizes) + sum(len(key) for key in batch)
            found.append(StoreStats(name, entries, size, public_url(url)))
    return found


def clear_redis(url: str) -> int:
    """Delete dscall's answers from Redis (not its live leases, not anyone else's keys);
    returns how many went."""
    removed = 0
    with _redis(url) as client:
        for batch in _scan(client, ANSWER_PREFIX):
            removed += int(client.unlink(*batch))
    return removed
