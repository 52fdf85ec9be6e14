"""A bad settings file stops every command with one line that says which file and line, and
what is wrong (SPEC §12), exit 2, before anything is read or sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dscall.simulator import SimulatorThread

REPO = Path(__file__).resolve().parents[2]
DSCALL = [sys.executable, "-m", "dscall"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> Path:
    monkeypatch.delenv("DSCALL_NO_CONFIG")
    folder = tmp_path / "project"
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "a.txt").write_text("Some words here. " * 30, encoding="utf-8")
    return folder


def run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [*DSCALL, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=60
    )


BAD_FILES = [
    (
        "max-concurency = 64\n",
        "./dscall.toml:1: unknown key 'max-concurency' (did you mean 'max-concurrency'?)",
    ),
    (
        "# spelled as in Python\nmax_concurency = 64\n",
        "./dscall.toml:2: unknown key 'max_concurency' (did you mean 'max_concurrency'?)",
    ),
    (
        '[process]\nmax-concurrency = "64"\n',
        "./dscall.toml:2: 'max-concurrency' must be an integer, not a string",
    ),
    (
        "[chunks]\nno-text = 1\n",
        "./dscall.toml:2: 'no-text' must be a boolean, not an integer",
    ),
    (
        'tokenizer = "fast"\n',
        "./dscall.toml:1: 'tokenizer' must be one of auto, exact, estimate, not 'fast'",
    ),
    ("chunk-tokens = 4\n", "./dscall.toml:1: 'chunk-tokens' must be at least 16, not 4"),
    ('include = "*.pdf"\n', "./dscall.toml:1: 'include' must be an array of strings, not a string"),
    (
        "[process]\nsample = 3\n",
        "./dscall.toml:2: unknown key 'sample' for process (an option of compare)",
    ),
    ('[proces]\nmodel = "x"\n', "./dscall.toml:1: unknown key 'proces' (did you mean 'process'?)"),
    ("process = 3\n", "./dscall.toml:1: 'process' must be a table"),
    (
        '[endpoints]\nname = "a"\n',
        "./dscall.toml:1: 'endpoints' must be an array of tables ([[endpoints]])",
    ),
    (
        "workers = 1\nworkers = 2\n",
        "./dscall.toml:2: not valid TOML: Cannot overwrite a value (column 12)",
    ),
    (
        "chunk_tokens = 64\nchunk-tokens = 64\n",
        "./dscall.toml:2: 'chunk-tokens' is set twice (also as 'chunk_tokens')",
    ),
    (
        'model = "x"\napi_key = "sk-live-0123456789abcdef"\n',
        "./dscall.toml:2: 'api_key' looks like a secret, and keys are never read from files: "
        'name the environment variable that holds it instead (api_key_env = "MY_VAR")',
    ),
    (
        'api_key_env = "sk-live-0123456789abcdef"\n',
        "./dscall.toml:1: the value of 'api_key_env' looks like a key, and keys are never read "
        "from files: put it in an environment variable and name that instead",
    ),
    (
        'api_key_env = "my key"\n',
        "./dscall.toml:1: 'api_key_env' must be the name of an environment variable (letters, "
        'digits and _, e.g. "DEEPSEEK_API_KEY"), never the key itself',
    ),
]


# Every case with chunks; process and compare read the same files the same way.
CASES = [("chunks", *case) for case in BAD_FILES] + [
    (command, *BAD_FILES[0]) for command in ("process", "compare")
]


@pytest.mark.parametrize(("command", "text", "message"), CASES)
def test_a_bad_project_file_is_one_line_with_file_and_line(
    project: Path, command: str, text: str, message: str
) -> None:
    (project / "dscall.toml").write_text(text, encoding="utf-8")
    result = run(project, command, "docs", "--dry-run" if command != "chunks" else "--quiet")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {message}"]
    assert "sk-live" not in result.stderr
    assert list(project.glob("*.parquet")) == []  # nothing written


def test_a_bad_user_file_names_it(project: Path, isolated_env: Path) -> None:
    user = isolated_env / ".config" / "dscall" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text("\n\nworkers = -1\n", encoding="utf-8")
    result = run(project, "chunks", "docs")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: ~/.config/dscall/config.toml:3: 'workers' must be at least 0, not -1"
    ]


def test_a_syntax_error_in_a_config_file_names_it(project: Path, tmp_path: Path) -> None:
    broken = tmp_path / "nightly.toml"
    broken.write_text('model = "x"\n[process\n', encoding="utf-8")
    result = run(project, "process", "docs", "--config", str(broken))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {broken}:2: not valid TOML: ")


def test_a_missing_config_file_is_an_error(project: Path) -> None:
    result = run(project, "compare", "docs", "--config", "nightly.toml")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: --config nightly.toml does not exist"]


def test_a_missing_project_or_user_file_is_not_used(project: Path) -> None:
    result = run(project, "chunks", "docs", "--quiet", "--tokenizer", "estimate")
    assert result.returncode == 0, result.stderr
    assert (project / "chunks.parquet").exists()


def test_nothing_is_sent_when_the_file_is_bad(
    project: Path, sim: SimulatorThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "dscall.toml").write_text(
        f'base-url = "{sim.base_url}"\n[process]\nmodle = "deepseek-flash"\n', encoding="utf-8"
    )
    result = run(project, "process", "docs")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: ./dscall.toml:3: unknown key 'modle' (did you mean 'model'?)"
    ]
    assert sim.stats()["requests_received"] == 0
    assert sim.stats()["other_requests"] == 0  # not even the pre-flight
