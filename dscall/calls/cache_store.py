"""Where and how a namespace's result cache lives on disk: its folder, its private files, and
the diskcache store opened over them (used by ``ResultCache`` and ``cache_maintenance``).

Layout under the cache folder (0700 folders, 0600 files, whatever the umask)::

    <dir>/<sanitised namespace>-<sha256(namespace)[:12]>/cache.db (+ -wal, -shm)
                                                        /namespace.txt   the exact name

The hash suffix means "../x" cannot escape the folder and two namespaces never share a store.

Values are JSON, never pickle: diskcache unpickles whatever its sqlite file says is a pickle, so
a store that someone else could write would be a code-execution vector. ``_JsonOnlyDisk``
refuses pickled keys and values (and value files) on read with ``UnsafeEntry``; such an entry
counts as corrupt.

A store that cannot be opened is a ``UsageError`` (exit 2) before any request is paid for.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import MODE_RAW

from dscall.calls.lease_store import STORE_ERRORS
from dscall.errors import UsageError

DB_NAME = "cache.db"  # diskcache's file name
_MARKER = "namespace.txt"
_SETTINGS: dict[str, Any] = {
    # The cache is the checkpoint: evicting entries behind the user's back would make a rerun
    # pay again. `dscall cache clear` is how space comes back.
    "eviction_policy": "none",
    "cull_limit": 0,  # nothing expires either: skip the per-put expiry query
    "statistics": 0,  # hit counting would turn every read into a write transaction
    "tag_index": 0,
    # Keep every value inside cache.db: separate value files would be created with the umask's
    # mode, and a read of them could be swapped for a pickle.
    "disk_min_file_size": 2**30,
    "sqlite_journal_mode": "wal",
    "sqlite_synchronous": 1,  # NORMAL: committed = survives a process crash, no fsync per put
    # Memory must not follow the size of cache.db: diskcache's defaults map 64 MB of it and keep
    # 32 MB of pages, which a 100,000-chunk run fills (+66 MB between 10,000 and 100,000
    # chunks). Entries are read once a run, by key: the index pages are what a cache keeps.
    "sqlite_mmap_size": 0,
    "sqlite_cache_size": 4096,  # pages of 4 KB: the key index of 100,000 entries
}


class UnsafeEntry(Exception):
    """A stored key or value that is not raw JSON bytes (a pickle, or a value file)."""


class _JsonOnlyDisk(diskcache.Disk):  # type: ignore[misc]  # diskcache ships no types
    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise UnsafeEntry("pickled key")
        return super().get(key, raw)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode != MODE_RAW or filename is not None:
            raise UnsafeEntry(f"stored mode {mode}")
        return super().fetch(mode, filename, value, read)


def namespace_dirname(namespace: str) -> str:
    """The store folder's name: readable, unique per namespace, and never a path."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", namespace).strip("._-")[:40] or "ns"
    digest = hashlib.sha256(namespace.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{safe}-{digest}"


def namespace_path(directory: Path, namespace: str) -> Path:
    if not namespace:
        raise UsageError("the cache namespace must not be empty")
    return Path(directory) / namespace_dirname(namespace)


def _private_dir(path: Path, parents: bool = False) -> None:
    """Create ``path`` as 0700 (an existing folder is left as its owner set it)."""
    if path.is_dir():
        return
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if not path.is_dir():
            raise
        return
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask; this is exact


def _private_file(path: Path, content: bytes = b"") -> bool:
    """Create ``path`` as 0600 with ``content``; False if it already existed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, 0o600)
        if content:
            os.write(fd, content)
    finally:
        os.close(fd)
    return True


def open_store(path: Path, namespace: str | None, timeout_s: float) -> Any:
    """Open (creating if needed) the store at ``path``; ``namespace`` None: an existing store
    found by listing, whose marker is not checked."""
    try:
        _private_dir(path.parent, parents=True)
        _private_dir(path)
        # sqlite gives the -wal and -shm files the mode of the database file, so creating it
        # 0600 first makes every file of the store owner-only.
        _private_file(path / DB_NAME)
        if namespace is not None and not _private_file(
            path / _MARKER, namespace.encode("utf-8", "surrogatepass")
        ):
            stored = read_marker(path)
            if stored and stored != namespace:  # empty: another process is writing it now
                raise UsageError(f"cache folder {path} belongs to namespace {stored!r}")
        return diskcache.Cache(str(path), timeout=timeout_s, disk=_JsonOnlyDisk, **_SETTINGS)
    except STORE_ERRORS as exc:
        raise UsageError(f"cannot open the result cache at {path}: {store_reason(exc)}") from exc


def read_marker(path: Path) -> str | None:
    """The exact namespace name kept in the store folder ``path``, if it can be read."""
    try:
        return (path / _MARKER).read_bytes().decode("utf-8", "surrogatepass")
    except (OSError, UnicodeDecodeError):
        return None


def store_reason(exc: BaseException) -> str:
    """A store error in a few words, for a message."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, diskcache.Timeout):
        return "the cache is locked by another process"
    return str(exc) or type(exc).__name__
