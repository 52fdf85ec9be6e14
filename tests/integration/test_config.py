"""Settings files and DSCALL_* variables end to end (SPEC §12): each level overrides the one
below (default < user file < project file < environment < flag), in what a run does and in
what `dscall config show` says, with the source of each value."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import TEST_API_KEY
from tests.integration.conftest import invoke

LEVELS = ["default", "user", "project", "env", "flag"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> Path:
    """A project folder as the working directory, with settings files read (the suite's
    DSCALL_NO_CONFIG off), a one-document corpus in it."""
    monkeypatch.delenv("DSCALL_NO_CONFIG")
    folder = tmp_path / "project"
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "a.txt").write_text("One sentence here. " * 40, encoding="utf-8")
    monkeypatch.chdir(folder)
    return folder


def user_file(home: Path, text: str) -> Path:
    path = home / ".config" / "dscall" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("level", LEVELS)
def test_each_level_overrides_the_ones_below_in_a_run(
    project: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch, level: str
) -> None:
    """`chunks` writes its --out where the highest level set says (every level below is set
    too, to another file), and `config show` names that level."""
    upto = LEVELS.index(level)
    if upto >= LEVELS.index("user"):
        user_file(isolated_env, 'out = "user.parquet"\n')
    if upto >= LEVELS.index("project"):
        Path("dscall.toml").write_text('[chunks]\nout = "project.parquet"\n', encoding="utf-8")
    if upto >= LEVELS.index("env"):
        monkeypatch.setenv("DSCALL_OUT", "env.parquet")
    flag = ["--out", "flag.parquet"] if level == "flag" else []
    result = invoke(["chunks", "docs", "--workers", "1", "--tokenizer", "estimate", *flag])
    assert result.exit_code == 0, result.output
    # A relative path in a file is relative to that file's folder.
    candidates = {
        "default": project / "chunks.parquet",
        "user": isolated_env / ".config" / "dscall" / "user.parquet",
        "project": project / "project.parquet",
        "env": project / "env.parquet",
        "flag": project / "flag.parquet",
    }
    assert [name for name, path in candidates.items() if path.exists()] == [level]
    assert pq.read_table(candidates[level]).num_rows >= 1
    lines = show(["config", "show"])
    source = {
        "default": "default",
        "user": "~/.config/dscall/config.toml:1",
        "project": "./dscall.toml:2",
        "env": "env DSCALL_OUT",
    }
    if level != "flag":  # config show takes no flags of the commands
        # chunks shows what differs from process: a top-level key applies to both.
        shown = lines["chunks"].get("out") or lines["process"]["out"]
        assert shown[1] == source[level]


def show(args: list[str]) -> dict[str, dict[str, tuple[str, str]]]:
    """`config show`'s plain output: command -> key -> (value, source)."""
    result = invoke(args)
    assert result.exit_code == 0, result.output
    sections: dict[str, dict[str, tuple[str, str]]] = {}
    current: dict[str, tuple[str, str]] = {}
    for line in result.stdout.splitlines():
        if line.startswith("["):
            current = sections.setdefault(line[1 : line.index("]")], {})
        elif " = " in line:
            key, _, rest = line.partition(" = ")
            value, _, source = rest.rpartition("  # ")
            current[key] = (value.strip(), source)
    return sections


def test_config_show_names_the_source_of_every_setting(
    project: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_file(isolated_env, "overlap-tokens = 10\nchunk-tokens = 100\n")
    Path("dscall.toml").write_text(
        'chunk_tokens = 200\n\n[process]\nmodel = "from-project"\n\n[compare]\nsample = 3\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("DSCALL_MAX_RETRIES", "2")
    lines = show(["config", "show"])
    process = lines["process"]
    assert process["overlap-tokens"] == ("10", "~/.config/dscall/config.toml:1")
    assert process["chunk-tokens"] == ("200", "./dscall.toml:1")  # chunk_tokens: the same key
    assert process["model"] == ('"from-project"', "./dscall.toml:4")
    assert process["max-retries"] == ("2", "env DSCALL_MAX_RETRIES")
    assert process["max-tokens"] == ("1024", "default")
    assert process["rpm"] == ("(not set)", "default")
    assert process["base-url"][1] == "default"
    assert process["api-key-env"] == ('"DEEPSEEK_API_KEY"', "default")
    assert process["api-key"] == ("(set)", "env DEEPSEEK_API_KEY")
    compare = lines["compare"]
    assert compare["sample"] == ("3", "./dscall.toml:7")
    assert compare["model"] == ('"deepseek-flash"', "default")  # [process] is process's own
    assert "chunk-tokens" not in compare  # the same as process's
    assert set(lines["chunks"]) == {"out"}


def test_config_show_never_shows_the_key(project: Path) -> None:
    result = invoke(["config", "show"])
    assert TEST_API_KEY not in result.stdout
    assert "(set)" in result.stdout


def test_the_key_is_read_from_the_variable_a_file_names(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("dscall.toml").write_text('api_key_env = "WORK_DEEPSEEK_KEY"\n', encoding="utf-8")
    monkeypatch.delenv("DEEPSEEK_API_KEY")
    process = show(["config", "show"])["process"]
    assert process["api-key-env"] == ('"WORK_DEEPSEEK_KEY"', "./dscall.toml:1")
    assert process["api-key"] == ("(not set)", "env WORK_DEEPSEEK_KEY")
    monkeypatch.setenv("WORK_DEEPSEEK_KEY", "sk-work-0123456789")
    assert show(["config", "show"])["process"]["api-key"] == ("(set)", "env WORK_DEEPSEEK_KEY")
    monkeypatch.setenv("DSCALL_API_KEY_ENV", "OTHER_KEY")  # the environment over the file
    process = show(["config", "show"])["process"]
    assert process["api-key-env"] == ('"OTHER_KEY"', "env DSCALL_API_KEY_ENV")
    assert process["api-key"] == ("(not set)", "env OTHER_KEY")


def test_flags_and_lists_from_the_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "docs" / "b.md").write_text("Other words. " * 20, encoding="utf-8")
    monkeypatch.setenv("DSCALL_NO_TEXT", "1")
    monkeypatch.setenv("DSCALL_INCLUDE", "*.md *.rst")
    monkeypatch.setenv("DSCALL_TOKENIZER", "estimate")
    result = invoke(["chunks", "docs", "--workers", "1"])
    assert result.exit_code == 0, result.output
    table = pq.read_table(project / "chunks.parquet")
    assert "chunk_text" not in table.column_names
    assert set(table.column("doc_path").to_pylist()) == {"b.md"}
    # A flag set in a file is turned off from the environment.
    Path("dscall.toml").write_text("no-text = true\n", encoding="utf-8")
    monkeypatch.setenv("DSCALL_NO_TEXT", "0")
    result = invoke(["chunks", "docs", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "chunk_text" in pq.read_table(project / "chunks.parquet").column_names


def test_config_show_is_a_table_on_a_terminal(project: Path) -> None:
    import os
    import select
    import subprocess
    import sys

    Path("dscall.toml").write_text("[process]\nworkers = 3\n", encoding="utf-8")
    master, slave = os.openpty()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.update(COLUMNS="100", TERM="xterm")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dscall", "config", "show"],
        stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    shown = b""
    while select.select([master], [], [], 30)[0]:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        shown += data
    assert proc.wait(timeout=30) == 0
    os.close(master)
    text = shown.decode("utf-8", "replace")
    assert "setting" in text  # the table's header
    assert "source" in text
    assert "┃" in text or "│" in text  # box drawing: rich, not the plain lines
    row = next(line for line in text.splitlines() if "workers" in line and "dscall.toml" in line)
    assert "./dscall.toml:2" in row
    assert TEST_API_KEY not in text


def test_help_shows_each_option_s_variable() -> None:
    from typer.testing import CliRunner

    from dscall.cli import app

    def help_text(command: str) -> str:
        result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return str(result.stdout)

    process = help_text("process")
    for name in ("DSCALL_MAX_CONCURRENCY", "DSCALL_NO_TEXT", "DSCALL_CONFIG", "DEEPSEEK_API_KEY"):
        assert name in process
    assert "DSCALL_CHUNK_TOKENS" in help_text("chunks")
    assert "DSCALL_SAMPLE" in help_text("compare")


def test_every_option_has_a_key_and_one_meaning_per_key() -> None:
    """Options added later get a key and a variable too; a key shared by commands must take
    the same kind of value in each, or a top-level key could not suit them all."""
    import typer

    from dscall.cli import app
    from dscall.cli.config_keys import COMMANDS, settings_params, value_problem

    group = typer.main.get_command(app)
    kinds: dict[str, set[str]] = {}
    for name in COMMANDS:
        command = group.commands[name]  # type: ignore[attr-defined]
        options = [p for p in command.params if p.param_type_name == "option" and p.expose_value]
        keyed = settings_params(command)
        assert {p.name for p in options} - {p.name for p in keyed.values()} <= {"help", "api_key"}
        for key, param in keyed.items():
            assert param.envvar, key
            # The kind of value the key takes, as value_problem words it for a table.
            kinds.setdefault(key, set()).add(str(value_problem(param, {})))
    assert {key: found for key, found in kinds.items() if len(found) > 1} == {}
