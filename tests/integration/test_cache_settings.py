"""`dscall cache stats|clear` with the settings process reads and the stores beside the result
cache: cache-dir and cache-url from the settings files and DSCALL_* (each level overriding the
one below), the manifest of incremental reruns, and dscall's keys in a real redis-server (only
them: another program's keys in the same database stay)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dscall.calls.cache_maintenance import cache_stats
from dscall.calls.redis_scripts import ANSWER_PREFIX, LEASE_PREFIX
from dscall.cli import app
from dscall.config import default_cache_dir
from dscall.documents.manifest import MANIFEST_NAME
from dscall.simulator import SimulatorThread
from tests.integration.conftest import Workspace, read_rows
from tests.integration.test_cache_cli import fill
from tests.redis_server import RedisServer, running_redis

LEVELS = ["default", "user", "project", "env", "flag"]
PASSWORD = "cache-cli-redis-secret"


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # tables are not squeezed to 80 columns


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with running_redis(password=PASSWORD) as server:
        yield server


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["cache", *args])
    return result.exit_code, result.stdout, result.stderr


def namespaces_shown(out: str) -> set[str]:
    return {line.split("│")[1].strip() for line in out.splitlines() if "│" in line} - {
        "namespace",
        "total",
    }


@pytest.mark.parametrize("level", LEVELS)
def test_cache_dir_comes_from_the_highest_level_set(
    project: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch, level: str
) -> None:
    """Each level names its own cache folder holding a namespace of its name; stats shows the
    highest level's, and clear empties that one only."""
    folders = {
        "default": default_cache_dir(),
        "user": isolated_env / ".config" / "dscall" / "user-cache",  # relative to its file
        "project": project / "project-cache",
        "env": project / "env-cache",
        "flag": project / "flag-cache",
    }
    for name, folder in folders.items():
        fill(folder, name, 2)
    upto = LEVELS.index(level)
    if upto >= LEVELS.index("user"):
        user = isolated_env / ".config" / "dscall" / "config.toml"
        user.parent.mkdir(parents=True, exist_ok=True)
        user.write_text('cache-dir = "user-cache"\n', encoding="utf-8")
    if upto >= LEVELS.index("project"):
        # The [cache] table over a top-level key of the same file.
        text = 'cache_dir = "nowhere"\n[cache]\ncache-dir = "project-cache"\n'
        Path("dscall.toml").write_text(text, encoding="utf-8")
    if upto >= LEVELS.index("env"):
        monkeypatch.setenv("DSCALL_CACHE_DIR", "env-cache")
    flag = ["--cache-dir", "flag-cache"] if level == "flag" else []
    code, out, err = invoke("stats", *flag)
    assert code == 0, err
    assert namespaces_shown(out) == {level}
    code, out, err = invoke("clear", "--all", "--yes", *flag)
    assert code == 0, err
    assert "removed 2 cached entries" in out
    left = {name for name, folder in folders.items() if sum(i.entries for i in cache_stats(folder))}
    assert left == set(LEVELS) - {level}


def test_config_file_names_the_cache_and_its_errors_are_one_line(
    project: Path, tmp_path: Path
) -> None:
    fill(tmp_path / "elsewhere", "alice", 3)
    settings = tmp_path / "settings.toml"
    settings.write_text(f'cache-dir = "{tmp_path / "elsewhere"}"\n', encoding="utf-8")
    code, out, err = invoke("stats", "--config", str(settings))
    assert code == 0, err
    assert namespaces_shown(out) == {"alice"}
    # What to clear is said on the command line only: no namespace from a file for cache.
    settings.write_text('[cache]\nnamespace = "alice"\n', encoding="utf-8")
    code, _, err = invoke("clear", "--all", "--yes", "--config", str(settings))
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: {settings}:2: unknown key 'namespace' for cache (an option of process, compare)"
    ]
    assert sum(i.entries for i in cache_stats(tmp_path / "elsewhere")) == 3
    code, _, err = invoke("stats", "--config", str(tmp_path / "missing.toml"))
    assert code == 2
    assert err.strip() == f"error: --config {tmp_path / 'missing.toml'} does not exist"


def run_process(workspace: Workspace, sim: SimulatorThread, *extra: str) -> None:
    result = CliRunner().invoke(app, workspace.args(sim, "--quiet", *extra))
    assert result.exit_code == 0, result.stderr


def test_stats_and_clear_know_the_manifest(workspace: Workspace, sim: SimulatorThread) -> None:
    for path in workspace.corpus.iterdir():  # not just written: the manifest remembers it
        os.utime(path, (time.time() - 60, time.time() - 60))
    run_process(workspace, sim)
    manifest = workspace.cache / MANIFEST_NAME
    assert manifest.is_file()
    code, out, _ = invoke("stats", "--cache-dir", str(workspace.cache))
    assert code == 0
    (line,) = [line for line in out.splitlines() if "(manifest)" in line]
    cells = [cell.strip() for cell in line.split("│")[1:-1]]
    assert cells[0] == "(manifest)"
    assert cells[1] == "12"  # one entry per document of the corpus
    assert cells[3] == MANIFEST_NAME
    # One namespace: its entries are kept, and so is the manifest all namespaces share.
    code, out, _ = invoke(
        "clear", "--namespace", "default", "--yes", "--cache-dir", str(workspace.cache)
    )
    assert code == 0
    assert "manifest" not in out
    assert manifest.is_file()
    code, out, _ = invoke("clear", "--all", "--yes", "--cache-dir", str(workspace.cache))
    assert code == 0
    assert "the manifest (12 documents)" in out
    assert not [p for p in workspace.cache.iterdir() if p.name.startswith(MANIFEST_NAME)]
    code, out, _ = invoke("stats", "--cache-dir", str(workspace.cache))
    assert "(manifest)" not in out


def test_stats_and_clear_know_dscall_s_keys_in_redis(
    workspace: Workspace,
    sim: SimulatorThread,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = redis_server.url
    run_process(workspace, sim, "--cache-url", url)
    answers = len({row["request_hash"] for row in read_rows(workspace.out)})
    client = redis_server.client()
    client.set(b"someone-else:key", b"theirs")  # type: ignore[attr-defined]
    client.set(LEASE_PREFIX.encode() + b"live", b"a holder", px=60_000)  # type: ignore[attr-defined]
    # The URL from the environment, as process reads it.
    monkeypatch.setenv("DSCALL_CACHE_URL", url)
    code, out, err = invoke("stats", "--cache-dir", str(workspace.cache))
    assert code == 0, err
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    stored = sum(
        len(v) + len(k)
        for k, v in redis_server.items().items()
        if k.startswith(ANSWER_PREFIX.encode())
    )
    assert f" {answers} " in rows["(redis answers)"]
    assert " 1 " in rows["(redis leases)"]
    assert "redis://:***@127.0.0.1" in rows["(redis answers)"]
    assert PASSWORD not in out + err
    assert stored > 1024  # shown in KiB: the values and keys of every answer
    assert f"{stored / 1024:,.1f} KiB" in rows["(redis answers)"]
    # --namespace leaves Redis alone (its keys do not say their namespace), with a note.
    code, out, err = invoke(
        "clear", "--namespace", "default", "--yes", "--cache-dir", str(workspace.cache)
    )
    assert code == 0, err
    assert "Redis keeps its answers" in err
    assert sum(k.startswith(ANSWER_PREFIX.encode()) for k in redis_server.items()) == answers
    code, out, err = invoke("clear", "--all", "--yes", "--cache-dir", str(workspace.cache))
    assert code == 0, err
    assert f"{answers} answers in redis://:***@127.0.0.1" in out
    assert PASSWORD not in out + err
    left = redis_server.items()
    assert set(left) == {b"someone-else:key", LEASE_PREFIX.encode() + b"live"}
    # A rerun pays again: nothing of it is cached anywhere.
    sim.reset_stats()
    run_process(workspace, sim, "--cache-url", url)
    assert sim.stats()["requests_received"] == answers


def test_an_unreachable_redis_is_one_line_without_its_password(tmp_path: Path) -> None:
    with running_redis(password=PASSWORD) as server:
        url = server.url
    code, _, err = invoke("stats", "--cache-dir", str(tmp_path), "--cache-url", url)
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("error: cannot reach the shared cache at redis://:***@127.0.0.1")
    assert PASSWORD not in err
