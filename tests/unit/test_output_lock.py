"""The output lock, held by real processes: refusal names the holder, kill -9 frees it, and
--wait-lock waits, then goes on."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dscall.errors import EXIT_USAGE, UsageError
from dscall.output.lock import OutputLock, lock_path

REPO = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from pathlib import Path
from dscall.output.lock import OutputLock
with OutputLock([Path(p) for p in sys.argv[2:]], run_id="holder-run"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[1]))
print("released", flush=True)
"""


@contextlib.contextmanager
def holder(*paths: Path, hold_s: float = 3600.0) -> Iterator[subprocess.Popen[bytes]]:
    """Another process holding the lock of ``paths`` for ``hold_s`` (SIGKILLed on exit)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), str(hold_s), *map(str, paths)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == b"locked\n", (line, proc.stderr.read() if proc.stderr else b"")
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out" / "results.parquet"


def test_second_run_is_refused_with_the_holder_s_pid_and_the_path(out: Path) -> None:
    with holder(out) as proc, pytest.raises(UsageError) as refused:
        OutputLock([out]).acquire()
    message = str(refused.value)
    assert refused.value.exit_code == EXIT_USAGE
    assert "\n" not in message
    assert f"another dscall run (pid {proc.pid}, since " in message
    assert " UTC) is writing " in message
    assert str(out) in message
    assert message.endswith("; pass --wait-lock to wait for it")


def test_a_killed_holder_frees_the_lock(out: Path) -> None:
    with holder(out) as proc:
        proc.send_signal(signal.SIGKILL)  # no release, no cleanup: the kernel drops the flock
        proc.wait(timeout=30)
        with OutputLock([out], run_id="mine"):
            assert lock_path(out).exists()
            sidecar = lock_path(out).with_name(".results.parquet.lock.json")
            assert f'"pid": {os.getpid()}' in sidecar.read_text()


def test_wait_lock_waits_for_the_holder_then_goes_on(out: Path) -> None:
    notes: list[str] = []
    with holder(out, hold_s=1.0) as proc:
        began = time.monotonic()
        with OutputLock([out], wait=True, notify=notes.append, poll_s=0.05):
            waited = time.monotonic() - began
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"released\n"  # it let go before we got in
    assert 0.5 < waited < 10
    assert len(notes) == 1  # said once, not per poll
    assert f"waiting for another dscall run (pid {proc.pid}, since " in notes[0]
    assert str(out) in notes[0]


async def test_async_wait_does_not_block_the_loop(out: Path) -> None:
    import asyncio

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    with holder(out, hold_s=0.5):
        task = asyncio.ensure_future(ticker())
        try:
            async with OutputLock([out], wait=True, poll_s=0.05):
                pass
        finally:
            task.cancel()
    assert ticks > 10


def test_every_output_is_locked_and_released(tmp_path: Path, out: Path) -> None:
    docs = tmp_path / "docs.parquet"
    with holder(docs) as proc, pytest.raises(UsageError, match=f"pid {proc.pid}.*docs.parquet"):
        OutputLock([out, docs]).acquire()
    # The refused run held nothing afterwards: another run takes both at once.
    with OutputLock([out, docs]):
        for path in (out, docs):
            assert lock_path(path).name == f".{path.name}.lock"
            with pytest.raises(UsageError):
                OutputLock([path]).acquire()
    # Nothing left beside the outputs: lock and holder files go on release.
    assert list(out.parent.iterdir()) == []
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".docs")]
    for path in (out, docs):
        with OutputLock([path]):
            pass


def test_same_output_spelled_twice_is_one_lock(tmp_path: Path, out: Path) -> None:
    out.parent.mkdir(parents=True)
    (tmp_path / "link").symlink_to(out.parent)
    with OutputLock([out, tmp_path / "link" / out.name]), pytest.raises(UsageError):
        OutputLock([tmp_path / "link" / out.name]).acquire()


def test_unwritable_folder_is_a_usage_error(tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions
            pytest.skip("running as root")
        with pytest.raises(UsageError, match="cannot lock"):
            OutputLock([locked / "results.parquet"]).acquire()
    finally:
        locked.chmod(0o700)


def test_output_under_a_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("not a folder")
    with pytest.raises(UsageError, match="cannot lock"):
        OutputLock([tmp_path / "plain" / "results.parquet"]).acquire()


CONTENDER = """
import os, sys
from pathlib import Path
from dscall.output.lock import OutputLock
out, inside = Path(sys.argv[1]), Path(sys.argv[2])
for _ in range(int(sys.argv[3])):
    with OutputLock([out], wait=True, poll_s=0.001):
        fd = os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # fails if another is in
        os.close(fd)
        os.unlink(inside)
"""


def test_removing_the_lock_file_on_release_never_lets_two_in(tmp_path: Path, out: Path) -> None:
    """Release unlinks the lock file while holding it: a waiter that opened the old file must
    try again, never hold the lock beside a newcomer that created a new one."""
    inside = tmp_path / "inside"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CONTENDER), str(out), str(inside), "400"],
            cwd=REPO,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=25)
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    assert list(out.parent.iterdir()) == []
