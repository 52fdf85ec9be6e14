"""One writer per output path (SPEC §6): a run holds a lock on each file it writes until the end.

    results.parquet              the output (published by rename at the end)
    .results.parquet.lock        the lock: ``filelock.FileLock``, flock(2) on Linux and macOS
    .results.parquet.lock.json   who holds it: {"pid", "host", "since", "run_id"}

flock belongs to the open file: the kernel lets go the moment the holder exits, kill -9
included, so a lock never outlives its run and needs no lease or expiry. It is advisory, and
only as good as the filesystem's flock (NFS: local to one client on old kernels).

The holder goes to a file of its own: the lock file's content is filelock's (its soft fallback
writes a record there, and filelock 3.x opened it with O_TRUNC, emptying it at every try). It
is written after the lock is taken and removed before it is let go.

Both files are removed on release, while the lock is still held, so a finished run leaves
nothing beside its output. That is safe only because filelock 4 refuses a lock whose inode was
unlinked meanwhile (``st_nlink == 0`` after flock: a waiter that opened the old file tries the
path again) -- without it, a waiter on the old inode and a newcomer on a new file would both
hold "the" lock. Hence ``filelock>=4.3``. A run killed with -9 leaves both files behind; the
next run over that output takes the lock (the kernel freed it), overwrites them and removes
them when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

import filelock

from dscall.config import OUTPUT_LOCK_POLL_S
from dscall.errors import UsageError


def lock_path(output: Path) -> Path:
    return output.parent / f".{output.name}.lock"


def holder_path(output: Path) -> Path:
    return output.parent / f".{output.name}.lock.json"


def describe_holder(output: Path) -> str:
    """'another dscall run (pid N, since T)', as far as the holder file tells."""
    try:
        doc = json.loads(holder_path(output).read_text(encoding="utf-8"))
        pid, host, since = int(doc["pid"]), str(doc["host"]), str(doc["since"])
    except (OSError, ValueError, KeyError, TypeError):
        return "another dscall run"  # it has the lock but has not said who it is yet
    where = "" if host == socket.gethostname() else f" on {host}"
    return f"another dscall run (pid {pid}{where}, since {since})"


class OutputLock:
    """Hold the lock of every path in ``paths``: ``acquire``/``release``, or a context manager
    (sync, or async: the async one waits without blocking the event loop).

    Held by another run: ``UsageError`` (exit 2), or with ``wait`` one line through ``notify``
    and a wait until it is free. The locks are taken in sorted order, so two waiting runs with
    crossed ``--out``/``--documents-out`` cannot deadlock; a refused run holds none.
    """

    def __init__(
        self,
        paths: Iterable[Path],
        *,
        wait: bool = False,
        notify: Callable[[str], None] | None = None,
        run_id: str | None = None,
        poll_s: float = OUTPUT_LOCK_POLL_S,
    ) -> None:
        self._outputs = sorted({_absolute(Path(path)) for path in paths})
        self._wait = wait
        self._notify = notify
        self._run_id = run_id
        self._poll_s = poll_s
        self._held: list[tuple[Path, filelock.BaseFileLock]] = []
        self._told: set[Path] = set()

    def acquire(self) -> OutputLock:
        while (busy := self._take_free()) is not None:
            self._waiting(busy)
            time.sleep(self._poll_s)
        return self

    async def acquire_async(self) -> OutputLock:
        # Ctrl-C cancels the main task: the wait ends at once, holding nothing.
        try:
            while (busy := self._take_free()) is not None:
                self._waiting(busy)
                await asyncio.sleep(self._poll_s)
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        while self._held:
            output, lock = self._held.pop()
            try:
                for path in (holder_path(output), lock_path(output)):  # still ours: see above
                    with contextlib.suppress(OSError):
                        path.unlink()
            finally:
                lock.release()

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def __aenter__(self) -> OutputLock:
        return await self.acquire_async()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _take_free(self) -> Path | None:
        """Take the locks not held yet, in order: the first one another run holds, or None."""
        for output in self._outputs[len(self._held) :]:
            try:
                output.parent.mkdir(parents=True, exist_ok=True)
                lock = filelock.FileLock(str(lock_path(output)))
                try:
                    lock.acquire(timeout=0)
                except filelock.Timeout:
                    # Once more at once: the holder may have just let go of a file it unlinked.
                    lock.acquire(timeout=0)
            except filelock.Timeout:
                return output
            except OSError as exc:
                self.release()
                raise UsageError(f"cannot lock {output}: {exc.strerror or exc}") from exc
            self._held.append((output, lock))
            self._write_holder(output)
        return None

    def _waiting(self, output: Path) -> None:
        holder = describe_holder(output)
        if not self._wait:
            self.release()
            raise UsageError(f"{holder} is writing {output}; pass --wait-lock to wait for it")
        if output not in self._told and self._notify is not None:
            self._notify(f"waiting for {holder}, which is writing {output}")
        self._told.add(output)

    def _write_holder(self, output: Path) -> None:
        since = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        doc = {"pid": os.getpid(), "host": socket.gethostname(), "since": since}
        doc["run_id"] = self._run_id or ""
        target = holder_path(output)
        temp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        try:
            temp.write_text(json.dumps(doc), encoding="utf-8")
            os.replace(temp, target)  # a reader sees one holder or the next, never half of one
        except OSError:  # only the message loses the pid: the lock is what guards the output
            with contextlib.suppress(OSError):
                temp.unlink()


def _absolute(path: Path) -> Path:
    """One spelling per file, whatever the working folder or a symlinked parent folder."""
    path = Path(os.path.abspath(path))
    with contextlib.suppress(OSError):
        path = path.parent.resolve() / path.name
    return path
