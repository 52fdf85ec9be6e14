"""Shared machinery of the benchmarks: the simulator in a pinned subprocess, measured runs of a
command (CPU of the whole process tree, wall time, peak memory), and the PASS/FAIL table.

CPU accounting: this process becomes a child subreaper (``PR_SET_CHILD_SUBREAPER``), so every
descendant of a measured command that outlives its parent (multiprocessing's fork server, say)
is re-parented here and reaped before the figure is read. The delta of
``getrusage(RUSAGE_CHILDREN)`` across one run is then the user+sys CPU of the command and all
its descendants, and nothing else (the simulator is only reaped when it stops).

Memory: ``/proc/PID/status`` ``VmHWM`` (the kernel's own high-water mark of resident memory) of
the command and of each descendant, sampled while it runs. A high-water mark only grows, so
sampling loses at most what the peak gained in the last interval before exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / ".work"
BENCH_KEY = "sk-bench-not-a-secret"
_PR_SET_CHILD_SUBREAPER = 36
_SAMPLE_INTERVAL_S = 0.2
_SERVER_START_TIMEOUT_S = 60.0


# --- cores --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CpuLayout:
    """Which cores the simulator and the client under test may use."""

    server: frozenset[int]
    client: frozenset[int]

    @property
    def shared(self) -> bool:
        return bool(self.server & self.client)


def cpu_layout() -> CpuLayout:
    """The simulator on the first core, the client on the others (all on one if there is one)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return CpuLayout(frozenset(cpus), frozenset(cpus))
    return CpuLayout(frozenset(cpus[:1]), frozenset(cpus[1:]))


@contextlib.contextmanager
def pinned_to(cpus: frozenset[int]) -> Iterator[None]:
    """Run this process (the orchestrator) on ``cpus`` for a while, then restore its affinity."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _child_setup(cpus: frozenset[int] | None) -> None:
    # Runs in the child between fork and exec: only async-signal-safe-ish calls.
    if cpus:
        os.sched_setaffinity(0, cpus)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def become_subreaper() -> bool:
    """Adopt orphaned descendants so their CPU time is counted (Linux only)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def stop_on_sigterm() -> None:
    """Let SIGTERM unwind like Ctrl-C, so that the simulator and the command under test (each
    in its own session, out of reach of the terminal's signals) are stopped on the way out."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of every command under test: a dummy key, no proxy to talk through."""
    env = dict(os.environ)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["DEEPSEEK_API_KEY"] = BENCH_KEY
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def dscall_command() -> list[str]:
    """The installed ``dscall`` script beside this interpreter (what users run), else -m."""
    script = Path(sys.executable).parent / "dscall"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dscall"]


# --- the simulator ------------------------------------------------------------------------
class MockServer:
    """`dscall mock-server --port 0 FLAGS` in its own process group, pinned to ``cpus``."""

    def __init__(self, *flags: str, cpus: frozenset[int] | None = None) -> None:
        self.flags = flags
        self.cpus = cpus
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> MockServer:
        command = [*dscall_command(), "mock-server", "--port", "0", *self.flags]
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=bench_env(),
            start_new_session=True,
            preexec_fn=lambda: _child_setup(self.cpus),
        )
        try:
            self.url = _first_line(self._process, _SERVER_START_TIMEOUT_S).split()[-1]
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def stats(self, bodies: bool = False) -> dict[str, Any]:
        return self._call("GET", "/stats?bodies=1" if bodies else "/stats")

    def reset(self) -> dict[str, Any]:
        return self._call("POST", "/stats/reset")

    def _call(self, method: str, path: str) -> dict[str, Any]:
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            connection.request(method, path, headers={"Authorization": f"Bearer {BENCH_KEY}"})
            answer: dict[str, Any] = json.loads(connection.getresponse().read())
            return answer
        finally:
            connection.close()

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line of ``process`` (its listening address), or an error."""
    stdout = process.stdout
    assert stdout is not None
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not box or "listening on" not in box[0]:
        raise RuntimeError(f"mock-server did not start: {box[0] if box else 'no output'!r}")
    return box[0].strip()


# --- measured runs ------------------------------------------------------------------------
@dataclass
class Measured:
    """One run of a command: what it cost and what it said."""

    command: list[str]
    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float  # the command's own process
    worker_peak_rss_mb: float  # its largest descendant (0 when it started none)
    descendants: int
    stdout: str
    stderr: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    def check(self, what: str) -> Measured:
        if self.returncode != 0:
            tail = self.stderr.strip().splitlines()[-5:]
            raise RuntimeError(f"{what} exited {self.returncode}: {' / '.join(tail)}")
        return self

    def figures(self) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "user_s": round(self.user_s, 3),
            "sys_s": round(self.sys_s, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "worker_peak_rss_mb": round(self.worker_peak_rss_mb, 1),
            "descendants": self.descendants,
            "returncode": self.returncode,
        }


def _vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _reap_orphans(keep: set[int]) -> None:
    """Wait for adopted descendants of a finished command (they exit once their parent has)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            orphans = [c.pid for c in psutil.Process().children() if c.pid not in keep]
        except psutil.Error:
            return
        if not orphans:
            return
        for pid in orphans:
            with contextlib.suppress(ChildProcessError):
                done, _ = os.waitpid(pid, os.WNOHANG if time.monotonic() < deadline else 0)
                if not done and time.monotonic() >= deadline:
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def run_measured(
    command: Sequence[str],
    *,
    cpus: frozenset[int] | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 900.0,
    keep: set[int] | None = None,
    on_sample: Any = None,
) -> Measured:
    """Run ``command`` to completion on ``cpus``; measure its tree's CPU, wall and memory.

    ``keep``: pids of this process's own long-lived children (the simulator), never reaped
    here. ``on_sample(elapsed_s)`` is called at every sampling tick (e.g. to poll /stats).
    """
    become_subreaper()
    keep = set(keep or ())
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env or bench_env(),
        start_new_session=True,
        preexec_fn=lambda: _child_setup(cpus),
    )
    outputs: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=lambda n=n, s=s: outputs.__setitem__(n, s.read()), daemon=True)
        for n, s in (("out", process.stdout), ("err", process.stderr))
    ]
    for reader in readers:
        reader.start()
    main_kb = 0
    worker_kb: dict[int, int] = {}
    try:
        while process.poll() is None:
            elapsed = time.perf_counter() - started
            if elapsed > timeout_s:
                raise TimeoutError(f"{command[0]} ran past {timeout_s:.0f} s")
            main_kb = max(main_kb, _vm_hwm_kb(process.pid))
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(process.pid).children(recursive=True):
                    worker_kb[child.pid] = max(worker_kb.get(child.pid, 0), _vm_hwm_kb(child.pid))
            if on_sample is not None:
                on_sample(elapsed)
            time.sleep(_SAMPLE_INTERVAL_S)
        wall = time.perf_counter() - started
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    finally:
        for reader in readers:
            reader.join(30)
        _reap_orphans(keep)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Measured(
        command=list(command),
        returncode=process.returncode,
        wall_s=wall,
        user_s=after.ru_utime - before.ru_utime,
        sys_s=after.ru_stime - before.ru_stime,
        peak_rss_mb=main_kb / 1024,
        worker_peak_rss_mb=max(worker_kb.values(), default=0) / 1024,
        descendants=len(worker_kb),
        stdout=outputs.get("out", b"").decode(errors="replace"),
        stderr=outputs.get("err", b"").decode(errors="replace"),
    )


# --- files and figures --------------------------------------------------------------------
def fresh_dir(name: str) -> Path:
    """An empty folder under bench/.work/runs (emptied if it was there)."""
    path = WORK_DIR / "runs" / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


@dataclass
class Row:
    """One line of the final table."""

    item: str
    figure: str
    measured: str
    target: str
    ok: bool | None  # None: printed for information, no target

    def as_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "figure": self.figure,
            "measured": self.measured,
            "target": self.target,
            "pass": self.ok,
        }


def print_table(rows: Sequence[Row], out: Any = None) -> None:
    out = out or sys.stdout
    headers = ("item", "figure", "measured", "target", "")
    cells = [headers] + [(r.item, r.figure, r.measured, r.target, verdict(r.ok)) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(headers))]
    rule = "-+-".join("-" * w for w in widths)
    for index, cell in enumerate(cells):
        print(" | ".join(v.ljust(w) for v, w in zip(cell, widths, strict=True)), file=out)
        if index == 0:
            print(rule, file=out)
