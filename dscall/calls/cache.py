"""The result cache: one diskcache store per namespace, and the run's checkpoint (SPEC §5).

Every successful answer is written the moment it arrives, in its own sqlite transaction (WAL
journal, ``synchronous=NORMAL``): a committed entry survives kill -9 of the process, so rerunning
the same command pays only for chunks that never finished. Failures are never stored.

Values are JSON, never pickle: diskcache unpickles whatever its sqlite file says is a pickle, so
a store that someone else could write would be a code-execution vector. ``_JsonOnlyDisk``
refuses pickled keys and values (and value files) on read; such an entry counts as corrupt.

Layout under the cache folder (0700 folders, 0600 files, whatever the umask)::

    <dir>/<sanitised namespace>-<sha256(namespace)[:12]>/cache.db (+ -wal, -shm)
                                                        /namespace.txt   the exact name

The hash suffix means "../x" cannot escape the folder and two namespaces never share a store.

A store that cannot be opened is a ``UsageError`` (exit 2) before any request is paid for. Once
the run is going, a failed read is a miss and a failed write loses only that checkpoint: the
answer still reaches the output, so neither stops the run; they are counted in ``errors`` and
the first one is reported through ``on_error``.

The store also holds the leases of cross-process single flight (``dscall.calls.leases``): keys
``lease:<hash>``, which are not answers: never counted as entries, and kept by ``clear_cache``
while they are live.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import diskcache
from diskcache.core import MODE_RAW

from dscall import jsonio
from dscall.calls.lease_store import (
    STORE_ERRORS,
    Claim,
    StopCheck,
    clear_answers,
    count_leases,
)
from dscall.calls.leases import Leases
from dscall.config import CACHE_LEASE_POLL_S, CACHE_LEASE_S, CACHE_LOCK_TIMEOUT_S
from dscall.errors import UsageError, one_line
from dscall.types import CallResponse, Usage

_FORMAT = 1  # the "v" of every stored value; a newer dscall may write a higher one
_DB_NAME = "cache.db"  # diskcache's file name
_MARKER = "namespace.txt"
_STORE_ERRORS = STORE_ERRORS
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


class _UnsafeEntry(Exception):
    """A stored key or value that is not raw JSON bytes (a pickle, or a value file)."""


class _JsonOnlyDisk(diskcache.Disk):  # type: ignore[misc]  # diskcache ships no types
    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise _UnsafeEntry("pickled key")
        return super().get(key, raw)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode != MODE_RAW or filename is not None:
            raise _UnsafeEntry(f"stored mode {mode}")
        return super().fetch(mode, filename, value, read)


class _Corrupt(Exception):
    pass


def namespace_dirname(namespace: str) -> str:
    """The store folder's name: readable, unique per namespace, and never a path."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", namespace).strip("._-")[:40] or "ns"
    digest = hashlib.sha256(namespace.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{safe}-{digest}"


def namespace_path(directory: Path, namespace: str) -> Path:
    if not namespace:
        raise UsageError("the cache namespace must not be empty")
    return Path(directory) / namespace_dirname(namespace)


def _encode(response: CallResponse) -> bytes:
    usage = response.usage
    return jsonio.dumps(
        {
            "v": _FORMAT,
            "output": response.output,
            "finish_reason": response.finish_reason,
            "response_model": response.response_model,
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cache_hit_tokens": usage.cache_hit_tokens,
                "cache_miss_tokens": usage.cache_miss_tokens,
            },
            "reasoning": response.reasoning,
            "status": response.status,
        }
    )


def _field(doc: dict[str, Any], key: str, kind: type) -> Any:
    value = doc.get(key)
    if type(value) is not kind:
        raise _Corrupt(key)
    return value


def _decode(data: object) -> CallResponse | None:
    """The stored response; None for a format from a newer dscall; ``_Corrupt`` otherwise."""
    if type(data) is not bytes:
        raise _Corrupt("not bytes")
    try:
        doc = jsonio.loads(data)
    except ValueError as exc:
        raise _Corrupt("not JSON") from exc
    if type(doc) is not dict:
        raise _Corrupt("not an object")
    version = doc.get("v")
    if type(version) is int and version > _FORMAT:
        return None
    if version != _FORMAT:
        raise _Corrupt("version")
    usage = _field(doc, "usage", dict)
    reasoning = doc.get("reasoning")
    if reasoning is not None and type(reasoning) is not str:
        raise _Corrupt("reasoning")
    return CallResponse(
        output=_field(doc, "output", str),
        finish_reason=_field(doc, "finish_reason", str),
        response_model=_field(doc, "response_model", str),
        usage=Usage(
            _field(usage, "prompt_tokens", int),
            _field(usage, "completion_tokens", int),
            _field(usage, "cache_hit_tokens", int),
            _field(usage, "cache_miss_tokens", int),
        ),
        reasoning=reasoning,
        status=_field(doc, "status", int),
    )


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


def _open_store(path: Path, namespace: str | None, timeout_s: float) -> Any:
    """Open (creating if needed) the store at ``path``; ``namespace`` None: an existing store
    found by listing, whose marker is not checked."""
    try:
        _private_dir(path.parent, parents=True)
        _private_dir(path)
        # sqlite gives the -wal and -shm files the mode of the database file, so creating it
        # 0600 first makes every file of the store owner-only.
        _private_file(path / _DB_NAME)
        if namespace is not None and not _private_file(
            path / _MARKER, namespace.encode("utf-8", "surrogatepass")
        ):
            stored = _read_marker(path)
            if stored and stored != namespace:  # empty: another process is writing it now
                raise UsageError(f"cache folder {path} belongs to namespace {stored!r}")
        return diskcache.Cache(str(path), timeout=timeout_s, disk=_JsonOnlyDisk, **_SETTINGS)
    except _STORE_ERRORS as exc:
        raise UsageError(f"cannot open the result cache at {path}: {_reason(exc)}") from exc


def _read_marker(path: Path) -> str | None:
    try:
        return (path / _MARKER).read_bytes().decode("utf-8", "surrogatepass")
    except (OSError, UnicodeDecodeError):
        return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, diskcache.Timeout):
        return "the cache is locked by another process"
    return str(exc) or type(exc).__name__


class ResultCache:
    """The answers of one namespace, keyed by ``CallRequest.request_hash``.

    Synchronous by design: a read is a ~10 µs indexed sqlite lookup and a write one short
    transaction, cheaper than handing either to a thread. Use from one thread (the event loop's).

    Inside a running event loop, answers that arrive in the same loop iteration are committed
    together, in one transaction, at the end of that iteration (``loop.call_soon``): the
    transaction's BEGIN/COMMIT is most of a put's cost, and the answers are on disk before the
    loop does anything else. Outside a loop, ``put`` commits before it returns. Leases
    (``acquire``, ``release``) are written in that same transaction: an answer and the release
    of its lease commit together, and taking a lease costs no transaction of its own.
    """

    def __init__(
        self,
        directory: Path,
        namespace: str,
        *,
        on_error: Callable[[str], None] | None = None,
        timeout_s: float = CACHE_LOCK_TIMEOUT_S,
        run_id: str | None = None,
        on_notice: Callable[[str], None] | None = None,
        lease_s: float = CACHE_LEASE_S,
        lease_poll_s: float = CACHE_LEASE_POLL_S,
    ) -> None:
        self.path = namespace_path(directory, namespace)
        self.namespace = namespace
        self.errors = 0  # reads and writes that failed (misses and lost checkpoints)
        self._on_error = on_error
        self._store = _open_store(self.path, namespace, timeout_s)
        self._pending: dict[str, bytes] = {}  # answers waiting for this iteration's commit
        self._flush_scheduled = False
        self.leases = Leases(
            self._store,
            answer=self.get,
            schedule=self._schedule,
            failed=self._failed,
            notify=on_notice,
            run_id=run_id,
            lease_s=lease_s,
            poll_s=lease_poll_s,
        )

    def get(self, request_hash: str) -> CallResponse | None:
        """The stored answer, or None. A corrupt entry is deleted and counts as a miss."""
        try:
            data = self._pending.get(request_hash) or self._store.get(request_hash)
        except _UnsafeEntry:
            self._discard(request_hash)
            return None
        except _STORE_ERRORS as exc:
            self._failed("read", exc)
            return None
        if data is None:
            return None
        try:
            return _decode(data)
        except _Corrupt:
            self._discard(request_hash)
            return None

    def put(self, request_hash: str, response: CallResponse) -> None:
        """Store ``response`` and release our lease on it, in one transaction: committed before
        this returns, or, inside an event loop, at the end of the current loop iteration
        together with everything else written in that iteration."""
        self._pending[request_hash] = _encode(response)
        self.leases.release(request_hash)
        self._schedule()

    async def acquire(self, request_hash: str, *, check_answer: bool = True) -> Claim:
        """Take the cross-process lease on ``request_hash``, at the end of this loop iteration.
        None: ours, send the request. A response: another run stored the answer meanwhile
        (looked for only with ``check_answer``). A ``LeaseHolder``: another live process has
        the request in flight; ``wait`` for it."""
        return await self.leases.take(request_hash, check_answer)

    def release(self, request_hash: str) -> None:
        """Give up our lease on ``request_hash`` (its call ended without an answer), if held."""
        if self.leases.release(request_hash):
            self._schedule()

    async def wait(self, request_hash: str, stop: StopCheck) -> CallResponse | None:
        """Wait while another process holds the lease: the answer it stored, or None once the
        lease is free to ``acquire`` again. Raises ``stop()``'s reason once it gives one."""
        return await self.leases.wait(request_hash, stop)

    def _schedule(self) -> None:
        """Write at the end of this loop iteration; outside a loop, now."""
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Commit what waits for the end of this loop iteration (answers, lease releases and
        takes) in one transaction."""
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        batch = self.leases.batch()
        if not pending and batch is None:
            return
        store = self._store
        committed = False
        try:
            with store.transact():
                for request_hash, data in pending.items():
                    store.set(request_hash, data)
                if batch is not None:
                    batch.write()
            committed = True
        except _STORE_ERRORS as exc:
            self._failed("write", exc)
        if batch is not None:
            batch.settle(committed)  # every claim is answered, written or not

    def __len__(self) -> int:
        """Stored answers (leases are not entries)."""
        self.flush()
        return len(self._store) - count_leases(self._store)

    def _discard(self, request_hash: str) -> None:
        try:
            self._store.delete(request_hash)
        except _STORE_ERRORS as exc:
            self._failed("cleanup", exc)

    def _failed(self, action: str, exc: BaseException) -> None:
        self.errors += 1
        if self.errors == 1 and self._on_error is not None:
            self._on_error(
                one_line(
                    f"result cache {action} failed at {self.path} ({type(exc).__name__}: "
                    f"{_reason(exc)}); answers are still written to the output, but this run "
                    "may not be fully checkpointed"
                )
            )

    def close(self) -> None:
        """Commit what is pending, give back every lease still held, and close the store."""
        self.leases.close()  # takes still queued are cancelled: they take nothing
        self.leases.release_all()  # none after a normal run: each call released its own
        self.flush()
        self._store.close()

    def __enter__(self) -> ResultCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- managing stores: `dscall cache stats|clear` ---------------------------------------------


@dataclass(frozen=True, slots=True)
class NamespaceStats:
    namespace: str
    path: Path
    entries: int
    bytes: int  # size on disk of the store's files


def _stores(directory: Path) -> dict[str, Path]:
    """Namespace name -> store folder, for every store under ``directory``."""
    found: dict[str, Path] = {}
    try:
        children = sorted(Path(directory).iterdir())
    except FileNotFoundError:
        return found
    except OSError as exc:
        raise UsageError(f"cannot read the cache folder {directory}: {_reason(exc)}") from exc
    for child in children:
        if not (child / _DB_NAME).is_file():
            continue
        name = _read_marker(child)
        # A marker that does not hash to its folder was edited or misplaced: show the folder.
        if not name or namespace_dirname(name) != child.name:
            name = child.name
        found[name] = child
    return found


def list_namespaces(directory: Path) -> list[str]:
    """The namespaces that have a store under ``directory``, sorted."""
    return sorted(_stores(directory))


def _targets(directory: Path, namespace: str | None) -> dict[str, Path]:
    stores = _stores(directory)
    if namespace is None:
        return stores
    return {namespace: stores[namespace]} if namespace in stores else {}


def _size_on_disk(path: Path) -> int:
    total = 0
    for child in path.iterdir():
        try:
            if child.is_file():
                total += child.stat().st_size
        except OSError:  # a -wal file checkpointed away between listing and stat
            continue
    return total


def cache_stats(directory: Path, namespace: str | None = None) -> list[NamespaceStats]:
    """Entries and bytes per namespace (only ``namespace`` if given; [] when it has no store)."""
    result = []
    for name, path in sorted(_targets(directory, namespace).items()):
        store = _open_store(path, None, CACHE_LOCK_TIMEOUT_S)
        try:
            entries = len(store) - count_leases(store)
        except _STORE_ERRORS as exc:
            raise UsageError(f"cannot read the cache at {path}: {_reason(exc)}") from exc
        finally:
            store.close()
        result.append(NamespaceStats(name, path, entries, _size_on_disk(path)))
    return result


def clear_cache(directory: Path, namespace: str | None = None) -> int:
    """Remove every entry of ``namespace`` (all namespaces if None); returns how many.

    Entries are deleted through sqlite, so a run using the store at the same time is safe; the
    folders stay. With sqlite's auto-vacuum the file shrinks as rows go. The leases of runs in
    progress stay (their single flight goes on); those left by killed runs go.
    """
    removed = 0
    for _, path in sorted(_targets(directory, namespace).items()):
        store = _open_store(path, None, CACHE_LOCK_TIMEOUT_S)
        try:
            removed += clear_answers(store)
        except _STORE_ERRORS as exc:
            raise UsageError(f"cannot clear the cache at {path}: {_reason(exc)}") from exc
        finally:
            store.close()
    return removed
