"""Managing the result cache's stores from outside a run: ``dscall cache stats|clear``.

Stores are found by listing the cache folder (see ``cache_store`` for its layout). Leases of
cross-process single flight (``lease:<hash>`` keys) are not answers: they are never counted as
entries, and ``clear_cache`` keeps those that are live.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dscall.calls.cache_store import (
    DB_NAME,
    namespace_dirname,
    open_store,
    read_marker,
    store_reason,
)
from dscall.calls.lease_store import STORE_ERRORS, clear_answers, count_leases
from dscall.config import CACHE_LOCK_TIMEOUT_S
from dscall.errors import UsageError


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
        raise UsageError(f"cannot read the cache folder {directory}: {store_reason(exc)}") from exc
    for child in children:
        if not (child / DB_NAME).is_file():
            continue
        name = read_marker(child)
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
        store = open_store(path, None, CACHE_LOCK_TIMEOUT_S)
        try:
            entries = len(store) - count_leases(store)
        except STORE_ERRORS as exc:
            raise UsageError(f"cannot read the cache at {path}: {store_reason(exc)}") from exc
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
        store = open_store(path, None, CACHE_LOCK_TIMEOUT_S)
        try:
            removed += clear_answers(store)
        except STORE_ERRORS as exc:
            raise UsageError(f"cannot clear the cache at {path}: {store_reason(exc)}") from exc
        finally:
            store.close()
    return removed
