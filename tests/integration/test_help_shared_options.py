"""`process` and `chunks` declare their shared options once (cli/options.py): same help."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dscall.cli import app

SHARED = [
    "--include",
    "--exclude",
    "--hidden",
    "--chunk-tokens",
    "--overlap-tokens",
    "--tokenizer",
    "--pdf-backend",
    "--extract-timeout",
    "--workers",
]


def _help_rows(command: str) -> dict[str, str]:
    """Each option's row of ``--help``, by its first flag, with the table's padding gone."""
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    rows = {}
    for line in result.stdout.splitlines():
        words = line.strip("│ ").split()
        if words and words[0].startswith("--"):
            rows[words[0]] = " ".join(words)
    return rows


@pytest.fixture(scope="module")
def rows() -> dict[str, dict[str, str]]:
    return {command: _help_rows(command) for command in ("process", "chunks")}


@pytest.mark.parametrize("flag", SHARED)
def test_a_shared_option_reads_the_same_in_both_commands(
    rows: dict[str, dict[str, str]], flag: str
) -> None:
    assert rows["process"][flag] == rows["chunks"][flag]


def test_force_and_quiet_say_what_each_command_does(rows: dict[str, dict[str, str]]) -> None:
    assert "Replace output files that dscall did not write" in rows["process"]["--force"]
    assert "Replace an --out file that dscall did not write" in rows["chunks"]["--force"]
    assert rows["process"]["--quiet"].startswith("--quiet -q No progress, notes or summary")
    assert rows["chunks"]["--quiet"].startswith("--quiet -q No notes or summary")


def test_help_text_in_square_brackets_is_not_lost_as_markup(
    rows: dict[str, dict[str, str]],
) -> None:
    assert "exact needs the tokenizer extra; auto uses it" in rows["process"]["--tokenizer"]
