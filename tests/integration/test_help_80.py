"""Every command's ``--help`` reads at 80 columns: option names whole, metavars that say what
to type rather than Python types, env vars shown, brackets in help text not eaten as markup."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from dscall.cli import app

PYTHON_TYPES = ("<bool>", "<int", "<float", "<str>", "<text>", "<path>", "<list[", "range>")


def _command_paths(command: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _command_paths(sub, (*path, name))


COMMANDS = list(_command_paths(typer.main.get_command(app)))


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def test_every_command_is_covered() -> None:
    names = {" ".join(path) for path in COMMANDS}
    assert {"", "process", "chunks", "compare", "show", "export", "cache stats"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "dscall")
def test_help_fits_80_columns_without_cuts_or_python_types(path: tuple[str, ...]) -> None:
    text = _help(path)
    for line in text.splitlines():
        assert len(line) <= 80, line
        assert not re.search(r"-[\w-]*…", line), f"an option name is cut: {line}"
        assert "…" not in line, f"text is cut: {line}"
        for shown in PYTHON_TYPES:
            assert shown not in line, f"{shown} in: {line}"


@pytest.mark.parametrize("command", ["process", "compare"])
def test_the_env_var_of_base_url_is_shown(command: str) -> None:
    assert "DSCALL_BASE_URL" in _help((command,))


def test_brackets_in_help_text_are_shown_as_written() -> None:
    assert "[[steps]]" in _help(("process",))


def test_version_has_a_short_form() -> None:
    result = CliRunner().invoke(app, ["-V"])
    assert result.exit_code == 0
    assert result.stdout.startswith("dscall ")


def test_completion_options_are_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    # Typer's own switch for tests: `--show-completion SHELL` instead of finding the shell in
    # the process tree (there is none in a detached CI job).
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    text = _help(())
    assert "--install-completion" in text
    assert "--show-completion" in text
    result = CliRunner().invoke(app, ["--show-completion", "bash"])
    assert result.exit_code == 0, result.output
    assert "complete" in result.stdout
