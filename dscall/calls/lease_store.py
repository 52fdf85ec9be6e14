"""The lease records of the cross-process single flight (see ``leases``): who holds a lease
(``LeaseHolder``, with what it takes to tell that a holder on this machine is gone) and the few
statements over the store that diskcache has no public form for (``Cache._sql``: bulk reads,
the lease count, and clearing answers while live leases stay).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import diskcache

from dscall import jsonio
from dscall.types import CallResponse

LEASE_PREFIX = "lease:"
_LEASE_END = "lease;"  # the first key after every "lease:..." one (';' follows ':')
_FORMAT = 1
_SQL_VARIABLES = 500  # hashes per query, well under the 999 of old sqlite builds
_CLEAR_BATCH = 1000  # rows per delete transaction: a run sharing the store is never held long
STORE_ERRORS = (sqlite3.Error, OSError, diskcache.Timeout)

StopCheck = Callable[[], BaseException | None]


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Who holds a lease: enough to tell whether that process still lives."""

    pid: int
    host: str
    ns: str | None  # pid namespace: a pid of another container means nothing here
    start: str | None  # the process's start time (Linux), to tell a reused pid apart
    owner: str  # one per cache handle: two handles in one process are two holders
    run_id: str | None
    since: float  # epoch seconds the lease was taken

    def as_json(self) -> dict[str, Any]:
        return {
            "v": _FORMAT,
            "pid": self.pid,
            "host": self.host,
            "ns": self.ns,
            "start": self.start,
            "owner": self.owner,
            "run_id": self.run_id,
            "since": self.since,
        }

    def encode(self) -> bytes:
        return jsonio.dumps(self.as_json())

    @staticmethod
    def decode(data: object) -> LeaseHolder | None:
        """The holder stored in ``data``; None for anything that is not a lease we can read
        (such a lease protects nothing: it is taken over)."""
        if type(data) is not bytes:
            return None
        try:
            doc = jsonio.loads(data)
        except ValueError:
            return None
        if type(doc) is not dict or doc.get("v") != _FORMAT:
            return None
        pid, host, owner, since = (doc.get(name) for name in ("pid", "host", "owner", "since"))
        ns, start, run_id = (doc.get(name) for name in ("ns", "start", "run_id"))
        if type(pid) is not int or type(host) is not str or type(owner) is not str:
            return None
        if not isinstance(since, (int, float)) or not all(
            value is None or type(value) is str for value in (ns, start, run_id)
        ):
            return None
        return LeaseHolder(pid, host, ns, start, owner, run_id, float(since))

    def describe(self) -> str:
        run = f", run {self.run_id}" if self.run_id else ""
        return f"pid {self.pid} on {self.host}{run}"


Claim = CallResponse | LeaseHolder | None


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of ``pid`` from /proc; None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            data = file.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()  # the command name may hold spaces and ')'
    if len(fields) < 20:
        return None
    return fields[0].decode("ascii", "replace"), fields[19].decode("ascii", "replace")


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def this_process(run_id: str | None = None) -> LeaseHolder:
    """This process as a lease holder (a new owner each call; ``since`` 0)."""
    stat = _proc_stat(os.getpid())
    return LeaseHolder(
        pid=os.getpid(),
        host=socket.gethostname(),
        ns=_pid_namespace(),
        start=stat[1] if stat else None,
        owner=uuid.uuid4().hex,
        run_id=run_id,
        since=0.0,
    )


def holder_gone(holder: LeaseHolder, me: LeaseHolder) -> bool:
    """True when ``holder`` ran on this machine and its process no longer does; False when it
    lives or when this machine cannot tell (another host: its lease expires instead)."""
    if holder.host != me.host or holder.ns != me.ns:
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: alive, another user's
        pass
    stat = _proc_stat(holder.pid)
    if stat is None:
        return False
    state, start = stat
    return state == "Z" or (holder.start is not None and start != holder.start)


# --- the statements diskcache has no public form for ------------------------------------------
def store_sql(store: Any) -> Callable[..., sqlite3.Cursor]:
    execute: Callable[..., sqlite3.Cursor] = store._sql
    return execute


def _in_batches(keys: list[str]) -> list[list[str]]:
    return [keys[i : i + _SQL_VARIABLES] for i in range(0, len(keys), _SQL_VARIABLES)]


def existing_answers(store: Any, request_hashes: list[str]) -> set[str]:
    """Which of ``request_hashes`` have a stored answer (answers never expire)."""
    found: set[str] = set()
    sql = store_sql(store)
    for part in _in_batches(request_hashes):
        marks = ",".join("?" * len(part))
        rows = sql(f"SELECT key FROM Cache WHERE raw = 1 AND key IN ({marks})", part)  # noqa: S608
        found.update(key for (key,) in rows.fetchall())
    return found


def live_leases(store: Any, request_hashes: list[str], now: float) -> dict[str, bytes]:
    """Request hash -> stored value, for those of ``request_hashes`` with an unexpired lease."""
    found: dict[str, bytes] = {}
    sql = store_sql(store)
    start = len(LEASE_PREFIX)
    for part in _in_batches(request_hashes):
        marks = ",".join("?" * len(part))
        rows = sql(
            f"SELECT key, value FROM Cache WHERE raw = 1 AND key IN ({marks})"  # noqa: S608
            " AND expire_time > ?",
            [LEASE_PREFIX + h for h in part] + [now],
        )
        found.update((key[start:], value) for key, value in rows.fetchall())
    return found


def count_leases(store: Any) -> int:
    """Lease rows, live or left behind by killed runs: they are not cache entries."""
    ((count,),) = store_sql(store)(
        "SELECT COUNT(*) FROM Cache WHERE raw = 1 AND key >= ? AND key < ?",
        (LEASE_PREFIX, _LEASE_END),
    ).fetchall()
    return int(count)


def clear_answers(store: Any) -> int:
    """Delete every entry except the live leases, whose runs would otherwise lose their single
    flight and let a third run pay again; returns how many answers went."""
    sql = store_sql(store)
    removed = 0
    while True:
        with store.transact():
            rows = sql(
                "SELECT rowid, filename, raw = 1 AND key >= ? AND key < ? FROM Cache"
                " WHERE NOT (raw = 1 AND key >= ? AND key < ? AND COALESCE(expire_time, 0) > ?)"
                " LIMIT ?",
                (LEASE_PREFIX, _LEASE_END, LEASE_PREFIX, _LEASE_END, time.time(), _CLEAR_BATCH),
            ).fetchall()
            if not rows:
                return removed
            sql(f"DELETE FROM Cache WHERE rowid IN ({','.join(str(row[0]) for row in rows)})")  # noqa: S608
        removed += sum(1 for row in rows if not row[2])
        for row in rows:
            if row[1] is not None:  # a value file: never ours, but not left behind either
                store.disk.remove(row[1])
