"""`dscall cache stats|clear` end to end: the real CLI, a real cache folder, a real terminal."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dscall.calls.cache import ResultCache
from dscall.calls.cache_maintenance import cache_stats
from dscall.cli import app
from dscall.config import default_cache_dir
from dscall.types import CallResponse, Usage

REPO = Path(__file__).resolve().parents[2]
DSCALL = [sys.executable, "-m", "dscall"]
ANSWER = CallResponse("an answer", "stop", "deepseek-flash", Usage(10, 5, 0, 10))


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # tables are not squeezed to 80 columns


def fill(directory: Path, namespace: str, n: int) -> None:
    with ResultCache(directory, namespace) as cache:
        for i in range(n):
            cache.put(f"{namespace}-{i}", ANSWER)


def entries(directory: Path) -> dict[str, int]:
    return {item.namespace: item.entries for item in cache_stats(directory)}


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["cache", *args])
    return result.exit_code, result.stdout, result.stderr


def test_stats_of_an_empty_cache(tmp_path: Path) -> None:
    code, out, _ = invoke("stats", "--cache-dir", str(tmp_path / "none"))
    assert code == 0
    assert "no cache for any namespace" in out


def test_stats_lists_every_namespace(tmp_path: Path) -> None:
    fill(tmp_path, "alice", 5)
    fill(tmp_path, "bob", 2)
    code, out, _ = invoke("stats", "--cache-dir", str(tmp_path))
    assert code == 0
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    assert " 5 " in rows["alice"]
    assert " 2 " in rows["bob"]
    assert " 7 " in rows["total"]
    assert "KiB" in rows["alice"]


def test_stats_of_one_namespace(tmp_path: Path) -> None:
    fill(tmp_path, "alice", 5)
    fill(tmp_path, "bob", 2)
    code, out, _ = invoke("stats", "--cache-dir", str(tmp_path), "--namespace", "bob")
    assert code == 0
    assert "bob" in out
    assert "alice" not in out
    code, out, _ = invoke("stats", "--cache-dir", str(tmp_path), "--namespace", "carol")
    assert code == 0
    assert "no cache for namespace 'carol'" in out


def test_default_cache_dir_is_the_user_cache(isolated_env: Path) -> None:
    directory = default_cache_dir()
    assert directory.is_relative_to(isolated_env)  # conftest points XDG_CACHE_HOME there
    fill(directory, "default", 3)
    code, out, _ = invoke("stats")
    assert code == 0
    assert "default" in out
    assert " 3 " in out


def test_names_with_escape_sequences_are_shown_escaped(tmp_path: Path) -> None:
    fill(tmp_path, "\x1b[2Jwipe[bold]", 1)
    code, out, _ = invoke("stats", "--cache-dir", str(tmp_path))
    assert code == 0
    assert "\x1b" not in out
    assert "\\x1b[2Jwipe" in out


def test_clear_needs_to_be_told_what(tmp_path: Path) -> None:
    fill(tmp_path, "alice", 2)
    code, _, err = invoke("clear", "--cache-dir", str(tmp_path), "--yes")
    assert code == 2
    assert "--namespace NS or --all" in err
    code, _, err = invoke("clear", "--cache-dir", str(tmp_path), "--all", "--namespace", "x")
    assert code == 2
    assert entries(tmp_path) == {"alice": 2}


def test_clear_refuses_without_a_terminal(tmp_path: Path) -> None:
    fill(tmp_path, "alice", 2)
    code, _, err = invoke("clear", "--cache-dir", str(tmp_path), "--all")
    assert code == 2
    assert "stdin is not a terminal" in err
    assert "--yes" in err
    assert len(err.strip().splitlines()) == 1  # one line, no traceback
    assert entries(tmp_path) == {"alice": 2}


def test_clear_one_namespace(tmp_path: Path) -> None:
    fill(tmp_path, "alice", 3)
    fill(tmp_path, "bob", 2)
    code, out, _ = invoke("clear", "--cache-dir", str(tmp_path), "--namespace", "bob", "--yes")
    assert code == 0
    assert "removed 2 cached entries" in out
    assert entries(tmp_path) == {"alice": 3, "bob": 0}


def test_clear_all(tmp_path: Path) -> None:
    fill(tmp_path, "alice", 3)
    fill(tmp_path, "bob", 2)
    code, out, _ = invoke("clear", "--cache-dir", str(tmp_path), "--all", "-y")
    assert code == 0
    assert "removed 5 cached entries (every namespace)" in out
    assert entries(tmp_path) == {"alice": 0, "bob": 0}


def test_clear_with_nothing_cached(tmp_path: Path) -> None:
    code, out, _ = invoke("clear", "--cache-dir", str(tmp_path), "--all")
    assert code == 0  # nothing to confirm, so no terminal needed
    assert "nothing to clear" in out


def test_cache_dir_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = invoke("stats", "--cache-dir", str(blocker))
    assert code == 2
    assert err.startswith("error: cannot read the cache folder")


def test_every_option_has_help() -> None:
    result = CliRunner().invoke(app, ["cache", "clear", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for text in (
        "Result cache folder (default: $XDG_CACHE_HOME/dscall, else ~/.cache/dscall).",
        "Remove the entries of this namespace.",
        "Remove the entries of every namespace,",
        "Do not ask for confirmation",
    ):
        assert text in result.stdout
    result = CliRunner().invoke(app, ["cache", "stats", "--help"], env={"COLUMNS": "200"})
    assert "Show only this namespace" in result.stdout


def run_on_terminal(args: list[str], answer: bytes) -> tuple[int, str]:
    """Run dscall with a pseudo-terminal as stdin/stdout/stderr and type ``answer``."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [*DSCALL, *args], cwd=REPO, stdin=slave, stdout=slave, stderr=slave, close_fds=True
    )
    os.close(slave)
    shown = b""
    answered = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                shown += data
                if not answered and b"?" in shown:
                    os.write(master, answer)
                    answered = True
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, shown.decode("utf-8", "replace")


def test_confirm_on_a_terminal_yes(tmp_path: Path) -> None:
    fill(tmp_path, "alice", 4)
    code, shown = run_on_terminal(["cache", "clear", "--cache-dir", str(tmp_path), "--all"], b"y\n")
    assert "Remove 4 cached entries (every namespace)" in shown
    assert code == 0, shown
    assert "removed 4 cached entries" in shown
    assert entries(tmp_path) == {"alice": 0}


def test_confirm_on_a_terminal_no(tmp_path: Path) -> None:
    fill(tmp_path, "alice", 4)
    code, shown = run_on_terminal(
        ["cache", "clear", "--cache-dir", str(tmp_path), "--namespace", "alice"], b"n\n"
    )
    assert code == 1, shown
    assert "nothing removed" in shown
    assert entries(tmp_path) == {"alice": 4}
