"""The audit log: one JSON line per HTTP attempt, appended, never rewritten (SPEC §7).

Lines accumulate in memory and go out in ONE ``os.write`` of whole lines on an ``O_APPEND``
descriptor, when ~64 KB wait, when ``AUDIT_FLUSH_INTERVAL_S`` has passed since the last write
(checked in ``record``, so an idle run writes at its next attempt or at close), and at close. On
a local file system an append of that size is atomic, so two dscall processes sharing a log
never interleave or tear each other's lines. A process killed with -9 loses at most the last
interval's lines, never a part of one.

A line holds who, what and how it went; never the API key, never the document or output text::

    {"timestamp": "2026-11-05T10:11:12.345Z", "run_id": "...", "caller": "ann@host",
     "namespace": "default", "request_hash": "ab12...", "doc_path": "a/b.pdf",
     "chunk_index": 0, "step": "map", "reask": 0, "model": "deepseek-flash",
     "endpoint": "api.deepseek.com", "endpoint_host": "api.deepseek.com",
     "status": 200, "attempt": 1, "latency_ms": 812.5, "prompt_tokens": 900,
     "completion_tokens": 120, "cached": false, "error_type": null}
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from dscall import jsonio
from dscall.config import AUDIT_BUFFER_BYTES, AUDIT_FLUSH_INTERVAL_S
from dscall.errors import UsageError


def default_caller() -> str:
    """``user@host`` of this process (the audit log's caller when ``--caller`` is not given)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container uid with no passwd entry and no $USER
        user = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname() or 'localhost'}"


class AuditLog:
    """Appends attempt lines to ``path``. Use from one thread (the event loop's)."""

    def __init__(
        self,
        path: Path,
        run_id: str,
        caller: str,
        namespace: str,
        endpoint_host: str,
        *,
        flush_interval_s: float = AUDIT_FLUSH_INTERVAL_S,
        buffer_bytes: int = AUDIT_BUFFER_BYTES,
    ) -> None:
        self.path = Path(path)
        self._run_id = run_id
        self._caller = caller
        self._namespace = namespace
        self._host = endpoint_host
        self._interval = flush_interval_s
        self._limit = buffer_bytes
        self._lines: list[bytes] = []
        self._size = 0
        self._last_flush = time.monotonic()
        self.lines_written = 0
        self.lines_lost = 0
        self._error: str | None = None
        self._stamp_second = -1
        self._stamp_prefix = ""
        self._fd: int | None = self._open(self.path)

    @staticmethod
    def _open(path: Path) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            existed = path.exists()
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            raise UsageError(f"cannot write the audit log {path}: {exc.strerror or exc}") from exc
        if not existed:
            # Exact 0600 whatever the umask; may fail when another user created it just now.
            with contextlib.suppress(OSError):
                os.fchmod(fd, 0o600)
        return fd

    def record(
        self,
        *,
        request_hash: str,
        doc_path: str,
        chunk_index: int | None,
        model: str,
        status: int | None,
        attempt: int,
        latency_ms: float,
        prompt_tokens: int,
        completion_tokens: int,
        cached: bool,
        error_type: str | None,
        step: str = "map",
        reask: int = 0,
        endpoint: str | None = None,
        endpoint_host: str | None = None,
    ) -> None:
        """Queue one attempt's line; writes when the buffer is full or the interval passed.
        ``endpoint``/``endpoint_host``: where it went (default: the run's one endpoint)."""
        now = time.time()
        second = int(now)
        if second != self._stamp_second:
            # strftime costs microseconds: format the date and time once per second.
            self._stamp_second = second
            self._stamp_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        line = jsonio.dumps(
            {
                "timestamp": f"{self._stamp_prefix}.{int((now - second) * 1000):03d}Z",
                "run_id": self._run_id,
                "caller": self._caller,
                "namespace": self._namespace,
                "request_hash": request_hash,
                "doc_path": doc_path,
                "chunk_index": chunk_index,
                "step": step,
                "reask": reask,
                "model": model,
                "endpoint": endpoint or self._host,
                "endpoint_host": endpoint_host or self._host,
                "status": status,
                "attempt": attempt,
                "latency_ms": int(latency_ms * 1000) / 1000,  # round() is 5x slower
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "cached": cached,
                "error_type": error_type,
            }
        )
        self._lines.append(line + b"\n")
        self._size += len(line) + 1
        if self._size >= self._limit or time.monotonic() - self._last_flush >= self._interval:
            self.flush()

    def flush(self) -> None:
        """Write every queued line now, in one append.

        A failed write (disk full, file gone read-only) does not disturb the run it audits:
        the lines are counted as lost and ``close`` raises ``UsageError`` saying so.
        """
        self._last_flush = time.monotonic()
        if not self._lines:
            return
        data = b"".join(self._lines)
        count = len(self._lines)
        self._lines.clear()
        self._size = 0
        if self._fd is None:
            self.lines_lost += count
            return
        try:
            view = memoryview(data)
            while view:
                # A short write needs a signal or a full disk; finishing it is the best left.
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            self.lines_lost += count
            if self._error is None:
                self._error = exc.strerror or str(exc)
            return
        self.lines_written += count

    def close(self) -> None:
        """Write what is queued and close; raises ``UsageError`` if any line could not be
        written."""
        if self._fd is None:
            return
        try:
            self.flush()
            # fsync is a courtesy: pipes and some network file systems refuse it.
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = None
        if self.lines_lost:
            raise UsageError(
                f"audit log {self.path}: {self.lines_lost} line(s) could not be written "
                f"({self._error})"
            )

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
