"""The result cache: round trips, isolation, permissions, corruption, crashes and two processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import diskcache
import pytest

from dscall.calls.cache import ResultCache
from dscall.calls.cache_maintenance import cache_stats, clear_cache, list_namespaces
from dscall.calls.cache_store import namespace_dirname, namespace_path
from dscall.errors import UsageError
from dscall.types import CallResponse, Usage

RESPONSE = CallResponse(
    output="Résumé: 三つの文。 \x1b[31m kept as data",
    finish_reason="stop",
    response_model="deepseek-flash-2026",
    usage=Usage(
        prompt_tokens=900, completion_tokens=120, cache_hit_tokens=640, cache_miss_tokens=260
    ),
    reasoning=None,
    status=200,
)
REPO = Path(__file__).resolve().parents[2]


def key(i: int) -> str:
    return f"{i:064x}"


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def cache(cache_dir: Path) -> Iterator[ResultCache]:
    with ResultCache(cache_dir, "default") as opened:
        yield opened


def raw_store(cache_dir: Path, namespace: str = "default") -> diskcache.Cache:
    """The same sqlite store opened with plain diskcache (pickle and all), to plant entries."""
    return diskcache.Cache(str(namespace_path(cache_dir, namespace)))


def test_round_trip_and_miss(cache: ResultCache) -> None:
    assert cache.get(key(1)) is None
    cache.put(key(1), RESPONSE)
    assert cache.get(key(1)) == RESPONSE
    with_reasoning = CallResponse(
        "o", "length", "m", Usage(1, 2, 0, 1), reasoning="why", status=200
    )
    cache.put(key(2), with_reasoning)
    assert cache.get(key(2)) == with_reasoning
    assert len(cache) == 2
    assert cache.errors == 0


def test_value_is_json_not_pickle(cache: ResultCache, cache_dir: Path) -> None:
    cache.put(key(1), RESPONSE)
    con = sqlite3.connect(namespace_path(cache_dir, "default") / "cache.db")
    try:
        ((mode, value, filename),) = con.execute("SELECT mode, value, filename FROM Cache")
    finally:
        con.close()
    assert mode == 1  # diskcache MODE_RAW: bytes as given, never pickled
    assert filename is None  # inside cache.db, not a separate file
    assert bytes(value).startswith(b'{"v":1,')


def test_entries_survive_reopen(cache_dir: Path) -> None:
    with ResultCache(cache_dir, "default") as first:
        first.put(key(1), RESPONSE)
    with ResultCache(cache_dir, "default") as second:
        assert second.get(key(1)) == RESPONSE


def test_namespaces_never_share(cache_dir: Path) -> None:
    with ResultCache(cache_dir, "alice") as alice, ResultCache(cache_dir, "bob") as bob:
        alice.put(key(1), RESPONSE)
        assert bob.get(key(1)) is None
        assert alice.get(key(1)) == RESPONSE
    assert list_namespaces(cache_dir) == ["alice", "bob"]


@pytest.mark.parametrize(
    "namespace", ["../x", "../../etc", "/abs/path", "a/b", ".hidden", "x" * 300]
)
def test_namespace_cannot_escape(cache_dir: Path, namespace: str) -> None:
    with ResultCache(cache_dir, namespace) as opened:
        opened.put(key(1), RESPONSE)
        assert opened.path.parent == cache_dir
        assert not opened.path.name.startswith(".")
    assert list_namespaces(cache_dir) == [namespace]
    assert [p.parent for p in cache_dir.parent.rglob("cache.db")] == [opened.path]


def test_similar_namespaces_get_distinct_stores() -> None:
    assert namespace_dirname("a/b") != namespace_dirname("a_b")
    assert namespace_dirname("A") != namespace_dirname("a")


def test_empty_namespace_is_a_usage_error(cache_dir: Path) -> None:
    with pytest.raises(UsageError, match="namespace"):
        ResultCache(cache_dir, "")


def test_private_permissions_despite_loose_umask(cache_dir: Path) -> None:
    old = os.umask(0)
    try:
        with ResultCache(cache_dir, "default") as opened:
            opened.put(key(1), RESPONSE)
            files = [p for p in opened.path.iterdir() if p.is_file()]
            names = {p.name for p in files}
            assert {"cache.db", "cache.db-wal", "namespace.txt"} <= names
            for path in files:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            assert stat.S_IMODE(opened.path.stat().st_mode) == 0o700
            assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    finally:
        os.umask(old)


def test_garbage_entry_is_a_miss_and_deleted(cache: ResultCache, cache_dir: Path) -> None:
    store = raw_store(cache_dir)
    store.set(key(1), b"\x00not json")
    store.set(key(2), b'{"v": 1, "output": 3}')  # JSON, wrong shape
    store.set(key(3), b"[1, 2]")
    store.set(key(4), "a str, not bytes")
    store.close()
    for i in (1, 2, 3, 4):
        assert cache.get(key(i)) is None
    assert len(cache) == 0


class Booby:
    """Unpickling this would create a file: proof of code execution."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.target, "w"))


def test_pickled_entry_is_never_unpickled(cache: ResultCache, cache_dir: Path) -> None:
    target = cache_dir.parent / "pwned"
    store = raw_store(cache_dir)
    store.set(key(1), Booby(str(target)))  # stored as a pickle by plain diskcache
    store.set(("tuple", "key"), b"x")  # a pickled key
    store.close()
    assert cache.get(key(1)) is None
    assert not target.exists()
    assert len(cache) == 1  # the pickled value is gone; the foreign key is left alone


def test_entry_from_a_newer_format_is_a_miss_but_kept(cache: ResultCache, cache_dir: Path) -> None:
    store = raw_store(cache_dir)
    store.set(key(1), b'{"v": 99, "whatever": true}')
    store.close()
    assert cache.get(key(1)) is None
    assert len(cache) == 1


def test_unopenable_cache_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(UsageError, match="cannot open the result cache"):
        ResultCache(blocker, "default")
    with pytest.raises(UsageError, match="cannot open the result cache"):
        ResultCache(blocker / "below", "default")


def test_corrupt_database_file_is_a_usage_error(cache_dir: Path) -> None:
    path = namespace_path(cache_dir, "default")
    path.mkdir(parents=True)
    (path / "cache.db").write_bytes(b"this is not an sqlite database" * 100)
    with pytest.raises(UsageError, match="cannot open the result cache"):
        ResultCache(cache_dir, "default")


def test_folder_of_another_namespace_is_refused(cache_dir: Path) -> None:
    with ResultCache(cache_dir, "default"):
        pass
    marker = namespace_path(cache_dir, "default") / "namespace.txt"
    marker.write_text("someone-else")
    with pytest.raises(UsageError, match="belongs to namespace"):
        ResultCache(cache_dir, "default")


def test_locked_store_degrades_without_raising(cache_dir: Path) -> None:
    notes: list[str] = []
    with ResultCache(cache_dir, "default", on_error=notes.append, timeout_s=0.05) as opened:
        opened.put(key(1), RESPONSE)
        blocker = sqlite3.connect(opened.path / "cache.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        try:
            opened.put(key(2), RESPONSE)  # gives up after the timeout
            opened.put(key(3), RESPONSE)
            assert opened.get(key(1)) == RESPONSE  # WAL: reads go on during a write
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert opened.errors == 2
        assert len(notes) == 1  # reported once, not per failure
        assert "result cache write failed" in notes[0]
        assert opened.get(key(2)) is None
        opened.put(key(2), RESPONSE)
        assert opened.get(key(2)) == RESPONSE


def run_python(code: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_put_survives_kill_9(cache_dir: Path) -> None:
    proc = run_python(
        """
        import os, signal, sys
        from pathlib import Path
        from dscall.calls.cache import ResultCache
        from dscall.types import CallResponse, Usage
        cache = ResultCache(Path(sys.argv[1]), "default")
        for i in range(50):
            cache.put(f"{i:064x}", CallResponse(f"answer {i}", "stop", "m", Usage(i, i, 0, i)))
        os.kill(os.getpid(), signal.SIGKILL)  # no close, no flush, no atexit
        """,
        str(cache_dir),
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    with ResultCache(cache_dir, "default") as reopened:
        for i in range(50):
            got = reopened.get(key(i))
            assert got is not None
            assert got.output == f"answer {i}"


WORKER = """
import sys
import time
from pathlib import Path
from dscall.calls.cache import ResultCache
from dscall.types import CallResponse, Usage
directory, me, other, n = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
seen_other = 0
# Start together: both are up and importing done before either writes.
(directory.parent / f"ready-{me}").touch()
deadline = time.monotonic() + 60
while not (directory.parent / f"ready-{other}").exists():
    if time.monotonic() > deadline:
        sys.exit("the other worker never started")
    time.sleep(0.001)
with ResultCache(directory, "shared") as cache:
    for i in range(n):
        cache.put(f"{me}-{i}", CallResponse(f"{me} says {i}" * 20, "stop", "m", Usage(i, 1, 0, i)))
        cache.put(f"both-{i}", CallResponse(f"both {i}", "stop", "m", Usage(i, 1, 0, i)))
        got = cache.get(f"{other}-{i}")
        if got is not None:
            assert got.output == f"{other} says {i}" * 20, got
            seen_other += 1
        mine = cache.get(f"{me}-{i}")
        assert mine is not None and mine.output.startswith(f"{me} says {i}")
    assert cache.errors == 0, cache.errors
print(seen_other)
"""


def test_two_processes_share_a_store_safely(cache_dir: Path) -> None:
    n = 400
    procs = [
        run_python(WORKER, str(cache_dir), "a", "b", str(n)),
        run_python(WORKER, str(cache_dir), "b", "a", str(n)),
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=100)
        assert proc.returncode == 0, err.decode()
    with ResultCache(cache_dir, "shared") as cache:
        assert len(cache) == 3 * n
        for i in range(n):
            for who in ("a", "b"):
                got = cache.get(f"{who}-{i}")
                assert got is not None
                assert got.output == f"{who} says {i}" * 20
            both = cache.get(f"both-{i}")
            assert both is not None
            assert both.output == f"both {i}"
        assert cache.errors == 0


def test_stats_and_clear(cache_dir: Path) -> None:
    assert cache_stats(cache_dir) == []
    assert list_namespaces(cache_dir) == []
    assert clear_cache(cache_dir) == 0
    with ResultCache(cache_dir, "alice") as alice, ResultCache(cache_dir, "bob") as bob:
        for i in range(5):
            alice.put(key(i), RESPONSE)
        for i in range(3):
            bob.put(key(i), RESPONSE)
    found = {s.namespace: s for s in cache_stats(cache_dir)}
    assert {name: s.entries for name, s in found.items()} == {"alice": 5, "bob": 3}
    assert all(s.bytes > 0 for s in found.values())
    assert [s.entries for s in cache_stats(cache_dir, "bob")] == [3]
    assert cache_stats(cache_dir, "nobody") == []
    assert clear_cache(cache_dir, "bob") == 3
    assert {s.namespace: s.entries for s in cache_stats(cache_dir)} == {"alice": 5, "bob": 0}
    assert clear_cache(cache_dir, None) == 5
    with ResultCache(cache_dir, "alice") as alice:
        assert alice.get(key(0)) is None


def test_clear_while_another_handle_is_open(cache: ResultCache, cache_dir: Path) -> None:
    cache.put(key(1), RESPONSE)
    assert clear_cache(cache_dir, "default") == 1
    assert cache.get(key(1)) is None
    cache.put(key(2), RESPONSE)  # the open handle keeps working after a clear
    assert cache.get(key(2)) == RESPONSE


def test_listing_shows_folder_name_for_a_tampered_marker(cache_dir: Path) -> None:
    with ResultCache(cache_dir, "default") as opened:
        opened.put(key(1), RESPONSE)
    (opened.path / "namespace.txt").write_text("forged")
    assert list_namespaces(cache_dir) == [opened.path.name]
    assert [s.entries for s in cache_stats(cache_dir)] == [1]


async def test_answers_of_one_loop_iteration_commit_together_at_its_end(cache_dir: Path) -> None:
    writer = ResultCache(cache_dir, "default")
    reader = ResultCache(cache_dir, "default")  # another connection: sees committed data only
    try:
        for i in range(5):
            writer.put(key(i), RESPONSE)
        assert writer.get(key(3)) == RESPONSE  # the writer sees its own pending answers
        assert reader.get(key(3)) is None  # not committed yet: still this iteration
        await asyncio.sleep(0)  # the iteration ends; the batch commits
        assert [reader.get(key(i)) for i in range(5)] == [RESPONSE] * 5
    finally:
        writer.close()
        reader.close()
